"""The OpenAI Realtime API over a WebSocket: speech in, speech out, tools and barge-in.

Protocol (GA): connect to ``wss://api.openai.com/v1/realtime?model=...`` with
``Authorization: Bearer <key>``; the server greets with ``session.created``; the client sends
``session.update`` (instructions, tools, voice, 24 kHz PCM audio, turn detection) and waits for
``session.updated``. User audio goes up as base64 PCM16 in ``input_audio_buffer.append``;
the model's speech comes down in ``response.output_audio.delta``. Beta event names
(``response.audio.delta`` ...) are understood too.

Turn detection is the server's VAD (``"server_vad"``, ``"semantic_vad"`` or a config dict),
or ours: ``turn_detection=None`` with a Parley ``vad=`` makes the session send speech to the
model only while the VAD hears it, commit the buffer when it ends and ask for a response.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected
from parley.frames import AudioFrame
from parley.llm import Usage
from parley.realtime import Realtime, RealtimeCapabilities, RealtimeEvent, RealtimeSession
from parley.tools import FunctionTool
from parley.vad import VAD

from parley_openai._client import resolve_api_key, resolve_base_url
from parley_openai._messages import realtime_items, realtime_tools
from parley_openai.realtime_config import (
    DEFAULT_TRANSCRIPTION_MODEL,
    DEFAULT_VOICE,
    OpenAIRealtimeConfig,
)

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection
    from websockets.exceptions import ConnectionClosed

logger = logging.getLogger("parley.openai")

DEFAULT_MODEL = "gpt-realtime-2.1"
SAMPLE_RATE = 24000  # audio/pcm in the Realtime API is always 24 kHz mono PCM16
_MAX_RETRY_DELAY = 30.0
# Close codes that end a session on purpose (bad request, bad data, policy): not a disconnect.
_REFUSED_CLOSE = frozenset({1003, 1007, 1008})
# Asking to cancel a response that has just finished: expected in a race, not a problem.
_BENIGN_ERRORS = frozenset({"response_cancel_not_active"})

_AUDIO_DELTA = ("response.output_audio.delta", "response.audio.delta")
_TRANSCRIPT_DELTA = (
    "response.output_audio_transcript.delta",
    "response.audio_transcript.delta",
    "response.output_text.delta",
    "response.text.delta",
)
_TRANSCRIPT_DONE = (
    "response.output_audio_transcript.done",
    "response.audio_transcript.done",
    "response.output_text.done",
    "response.text.done",
)


class RealtimeAPIError(Exception):
    """An error the Realtime API reported (an ``error`` event or a refused connection)."""

    def __init__(
        self,
        message: str,
        *,
        type: str = "",
        code: str | None = None,
        param: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.type = type
        self.code = code
        self.param = param
        self.status = status

    @classmethod
    def from_event(cls, error: Mapping[str, Any]) -> RealtimeAPIError:
        message = str(error.get("message") or "unknown error")
        code = error.get("code")
        detail = f" ({code})" if code else ""
        return cls(
            f"OpenAI Realtime error{detail}: {message}",
            type=str(error.get("type") or ""),
            code=code,
            param=error.get("param"),
        )


class OpenAIRealtime(Realtime):
    """OpenAI's speech-to-speech models through the Realtime WebSocket API.

    ``base_url`` (http(s) or ws(s)) points it elsewhere, e.g. at a local fake in tests.
    ``session_options`` are merged into every ``session.update`` (e.g.
    ``{"audio": {"output": {"speed": 1.1}}}``). ``input_transcription`` names the model that
    transcribes the user (``None`` turns it off). Timeouts: ``connect_timeout`` for the
    handshake (retried ``connect_retries`` times with backoff, honouring ``Retry-After``),
    ``setup_timeout`` for the session to be confirmed, ``idle_timeout`` for silence from the
    server while a response is under way. ``config`` (an `OpenAIRealtimeConfig`, as in
    VideoSDK programs) sets the voice, turn detection, transcription and tool choice.
    """

    # The defaults; an instance without server turn detection sets server_vad=False.
    capabilities = RealtimeCapabilities(
        input_sample_rate=SAMPLE_RATE, output_sample_rate=SAMPLE_RATE, server_vad=True, tools=True
    )

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        voice: str = DEFAULT_VOICE,
        api_key: str | None = None,
        base_url: str | None = None,
        turn_detection: str | Mapping[str, Any] | None = "server_vad",
        vad: VAD | None = None,
        input_transcription: str | None = DEFAULT_TRANSCRIPTION_MODEL,
        session_options: Mapping[str, Any] | None = None,
        connect_timeout: float = 10.0,
        setup_timeout: float = 10.0,
        idle_timeout: float = 20.0,
        connect_retries: int = 2,
        retry_backoff: float = 0.5,
        config: OpenAIRealtimeConfig | None = None,
    ) -> None:
        if config is not None:  # VideoSDK's settings object: it sets these four
            voice = config.voice
            turn_detection = config.turn_detection
            input_transcription = config.transcription_model
            session_options = {**config.session_options(), **(session_options or {})}
        if turn_detection is not None and vad is not None:
            raise ValueError(
                "vad= is Parley's own turn detection and needs turn_detection=None; "
                "with server turn detection leave vad out"
            )
        base = resolve_base_url(base_url)
        self.model = model
        self.voice = voice
        self.url = realtime_url(base, model)
        self._api_key = resolve_api_key(api_key, base, "openai.Realtime")
        self.turn_detection = turn_detection
        self.vad = vad
        self.input_transcription = input_transcription
        self.session_options = dict(session_options or {})
        self.connect_timeout = connect_timeout
        self.setup_timeout = setup_timeout
        self.idle_timeout = idle_timeout
        self.connect_retries = connect_retries
        self.retry_backoff = retry_backoff
        self.capabilities = RealtimeCapabilities(
            input_sample_rate=SAMPLE_RATE,
            output_sample_rate=SAMPLE_RATE,
            video=False,
            server_vad=turn_detection is not None,
            tools=True,
        )

    @property
    def interrupts_itself(self) -> bool:
        """Whether the server cancels its response when the user starts speaking."""
        td = self.turn_detection
        if td is None:
            return False
        return not isinstance(td, Mapping) or bool(td.get("interrupt_response", True))

    def session_config(self, instructions: str, tools: Sequence[FunctionTool]) -> dict[str, Any]:
        """The ``session`` object of ``session.update``."""
        pcm = {"type": "audio/pcm", "rate": SAMPLE_RATE}
        td = self.turn_detection
        audio_input: dict[str, Any] = {
            "format": pcm,
            "turn_detection": {"type": td} if isinstance(td, str) else (dict(td) if td else None),
        }
        if self.input_transcription:
            audio_input["transcription"] = {"model": self.input_transcription}
        session: dict[str, Any] = {
            "type": "realtime",
            "instructions": instructions,
            "output_modalities": ["audio"],
            "audio": {"input": audio_input, "output": {"format": pcm, "voice": self.voice}},
            "tools": realtime_tools(tools),
            "tool_choice": "auto",
        }
        return _merged(session, self.session_options)

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] = (),
        chat_ctx: ChatContext | None = None,
    ) -> OpenAIRealtimeSession:
        ws = await self._open()
        try:
            await self._set_up(ws, instructions, tools, chat_ctx)
        except BaseException:
            await ws.close()
            raise
        session = OpenAIRealtimeSession(self, ws)
        session.start()
        return session

    async def _open(self) -> ClientConnection:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus

        headers = {"Authorization": f"Bearer {self._api_key}"}
        for attempt in range(self.connect_retries + 1):
            last = attempt == self.connect_retries
            delay = self.retry_backoff * 2**attempt
            try:
                return await connect(
                    self.url,
                    additional_headers=headers,
                    open_timeout=self.connect_timeout,
                    max_size=None,  # audio deltas can be large; the server is trusted
                )
            except InvalidStatus as exc:
                status = exc.response.status_code
                if status in (401, 403):
                    raise RealtimeAPIError(
                        f"OpenAI Realtime refused the key (HTTP {status}); check OPENAI_API_KEY "
                        "or the api_key you passed",
                        status=status,
                    ) from exc
                if last or (status != 429 and status < 500):
                    raise RealtimeAPIError(
                        f"OpenAI Realtime refused the connection to {self.url} (HTTP {status})",
                        status=status,
                    ) from exc
                delay = _retry_after(exc.response.headers.get("Retry-After")) or delay
            except (OSError, TimeoutError) as exc:
                if last:
                    raise ConnectionError(
                        f"cannot connect to OpenAI Realtime at {self.url} after "
                        f"{attempt + 1} attempts: {exc}"
                    ) from exc
            logger.info("OpenAI Realtime connect attempt %d failed; retrying", attempt + 1)
            await asyncio.sleep(min(delay, _MAX_RETRY_DELAY))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _set_up(
        self,
        ws: ClientConnection,
        instructions: str,
        tools: Sequence[FunctionTool],
        chat_ctx: ChatContext | None,
    ) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async with asyncio.timeout(self.setup_timeout):
                await _expect(ws, "session.created")
                session = self.session_config(instructions, tools)
                await ws.send(json.dumps({"type": "session.update", "session": session}))
                await _expect(ws, "session.updated")
                for item in realtime_items(chat_ctx or ChatContext(), instructions):
                    await ws.send(json.dumps({"type": "conversation.item.create", "item": item}))
        except TimeoutError as exc:
            raise TimeoutError(
                f"OpenAI Realtime did not confirm the session within {self.setup_timeout:g} s"
            ) from exc
        except ConnectionClosed as exc:
            raise ConnectionError(
                f"OpenAI Realtime closed the connection during setup: {exc}"
            ) from exc


@dataclass(slots=True)
class _AudioItem:
    item_id: str
    ms: float = 0.0  # audio received for this item, in milliseconds


class OpenAIRealtimeSession(RealtimeSession):
    """One live Realtime conversation. Iterate it for events; see `OpenAIRealtime`.

    ``usage`` adds up every response's tokens, cancelled ones included.
    """

    def __init__(self, owner: OpenAIRealtime, ws: ClientConnection, *, pre_roll: float = 0.3):
        super().__init__()
        self.owner = owner
        self.usage = Usage()
        self._ws = ws
        self._reader: asyncio.Task[None] | None = None
        self._response_id: str | None = None  # between response.created and response.done
        self._response_requested = False  # response.create sent, not yet created
        self._respond_when_done = False
        self._cancelled: set[str] = set()  # responses whose late output is dropped
        self._audio_items: list[_AudioItem] = []  # the latest spoken response, for truncation
        self._audio_response: str | None = None
        self._audio_clock = 0.0
        self._seen_calls: set[str] = set()
        self._pending_calls: set[str] = set()
        self._calls_interrupted = False
        # Parley's own turn detection: audio is held back until the VAD hears speech.
        self._vad = owner.vad.stream() if owner.vad is not None else None
        self._pre_roll: deque[AudioFrame] = deque()
        self._pre_roll_seconds = pre_roll

    def start(self) -> None:
        self._reader = asyncio.create_task(self._read(), name="parley-openai-realtime")

    # --- input -------------------------------------------------------------------------------

    async def push_audio(self, frame: AudioFrame) -> None:
        if frame.sample_rate != SAMPLE_RATE:
            raise ValueError(
                f"OpenAI Realtime takes {SAMPLE_RATE} Hz audio, got {frame.sample_rate} Hz; "
                "resample first (parley.audio.AudioResampler)"
            )
        frame = frame.to_mono()
        if self._vad is None:
            await self._append(frame)
            return
        events = self._vad.push(frame)
        if self._vad.speaking or events:
            for held in self._pre_roll:
                await self._append(held)
            self._pre_roll.clear()
            await self._append(frame)
        else:
            self._hold(frame)
        for event in events:
            if event.type == "speech_started":
                await self._user_started_speaking()
            else:
                await self._send({"type": "input_audio_buffer.commit"})
                await self._emit(RealtimeEvent("user_speech_stopped"))
                await self._request_response()

    async def push_text(self, text: str, *, respond: bool = True) -> None:
        content = [{"type": "input_text", "text": text}]
        item = {"type": "message", "role": "user", "content": content}
        await self._send({"type": "conversation.item.create", "item": item})
        if respond:
            await self._request_response()

    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        self._respond_when_done = False  # a queued answer is as stale as the current one
        await self._cancel_response()
        if self._pending_calls:
            self._calls_interrupted = True  # their results must not start a new answer
        if played_seconds is not None:
            await self._truncate(played_seconds)

    async def send_tool_result(self, call: ToolCall, output: str) -> None:
        item = {"type": "function_call_output", "call_id": call.id, "output": output}
        await self._send({"type": "conversation.item.create", "item": item})
        self._pending_calls.discard(call.id)
        if not self._pending_calls and not self._calls_interrupted:
            await self._request_response()

    async def aclose(self) -> None:
        if self._closed:
            return
        await super().aclose()
        reader = self._reader
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        await self._ws.close()

    # --- output ------------------------------------------------------------------------------

    async def _send(self, event: dict[str, Any]) -> None:
        from websockets.exceptions import ConnectionClosed

        if self._closed:
            return
        try:
            await self._ws.send(json.dumps(event))
        except ConnectionClosed:
            pass  # the reader sees the same closed connection and reports it as an error event

    async def _append(self, frame: AudioFrame) -> None:
        audio = base64.b64encode(frame.to_pcm16()).decode("ascii")
        await self._send({"type": "input_audio_buffer.append", "audio": audio})

    def _hold(self, frame: AudioFrame) -> None:
        self._pre_roll.append(frame)
        held = sum(f.duration for f in self._pre_roll)
        while self._pre_roll and held - self._pre_roll[0].duration >= self._pre_roll_seconds:
            held -= self._pre_roll.popleft().duration

    async def _request_response(self) -> None:
        if self._response_id is not None or self._response_requested:
            self._respond_when_done = True  # one response at a time: ask again when it ends
            return
        self._response_requested = True
        await self._send({"type": "response.create"})

    async def _cancel_response(self) -> None:
        response = self._response_id
        if response is not None and response not in self._cancelled:
            self._cancelled.add(response)
            await self._send({"type": "response.cancel"})

    async def _truncate(self, played_seconds: float) -> None:
        """Cut the server's memory of the spoken reply to what the user heard."""
        remaining = max(0.0, played_seconds * 1000.0)
        for item in self._audio_items:
            if remaining < item.ms:
                await self._send(
                    {
                        "type": "conversation.item.truncate",
                        "item_id": item.item_id,
                        "content_index": 0,
                        "audio_end_ms": int(remaining),
                    }
                )
                break
            remaining -= item.ms
        self._audio_items = []

    async def _user_started_speaking(self) -> None:
        await self._emit(RealtimeEvent("user_speech_started"))
        if self.owner.turn_detection is None:
            await self._cancel_response()  # our VAD heard a barge-in: stop the model now

    # --- events from the server --------------------------------------------------------------

    async def _read(self) -> None:
        from websockets.exceptions import ConnectionClosed

        scope = asyncio.timeout(None)
        try:
            while True:
                busy = self._response_id is not None or self._response_requested
                scope = asyncio.timeout(self.owner.idle_timeout if busy else None)
                async with scope:
                    raw = await self._ws.recv()
                await self._handle(json.loads(raw))
        except ConnectionClosed as exc:
            if not self._closed:
                await self._fail(_lost(exc))
        except Exception as exc:  # reported, never lost with the task
            if isinstance(exc, TimeoutError) and scope.expired():
                seconds = self.owner.idle_timeout
                exc = TimeoutError(f"OpenAI Realtime sent nothing for {seconds:g} s mid-response")
            elif isinstance(exc, ValueError | KeyError | TypeError):
                exc = RealtimeAPIError(f"OpenAI Realtime sent a malformed event: {exc!r}")
            await self._fail(exc)

    async def _fail(self, error: Exception) -> None:
        await self._emit(RealtimeEvent("error", error=error, recoverable=False))
        await self.aclose()

    async def _handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type", "")
        response = event.get("response_id")
        if response is not None and response in self._cancelled and kind != "response.done":
            return  # late output of a response the user interrupted
        if kind in _AUDIO_DELTA:
            await self._on_audio(event)
        elif kind in _TRANSCRIPT_DELTA:
            if delta := event.get("delta"):
                await self._emit(RealtimeEvent("agent_transcript", text=delta, final=False))
        elif kind in _TRANSCRIPT_DONE:
            text = event.get("transcript", event.get("text")) or ""
            await self._emit(RealtimeEvent("agent_transcript", text=text, final=True))
        elif kind == "input_audio_buffer.speech_started":
            if self.owner.interrupts_itself and self._response_id is not None:
                self._cancelled.add(self._response_id)  # the server cancels it by itself
            await self._emit(RealtimeEvent("user_speech_started"))
        elif kind == "input_audio_buffer.speech_stopped":
            await self._emit(RealtimeEvent("user_speech_stopped"))
        elif kind == "conversation.item.input_audio_transcription.delta":
            if event.get("delta"):
                await self._emit(RealtimeEvent("user_transcript", text=event["delta"], final=False))
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = str(event.get("transcript") or "").strip()
            await self._emit(RealtimeEvent("user_transcript", text=text, final=True))
        elif kind == "conversation.item.input_audio_transcription.failed":
            error = RealtimeAPIError.from_event(event.get("error") or {})
            await self._emit(RealtimeEvent("error", error=error, recoverable=True))
        elif kind == "response.created":
            self._response_id = event["response"]["id"]
            self._response_requested = False
            await self._emit(RealtimeEvent("response_started"))
        elif kind == "response.function_call_arguments.done":
            if event.get("name"):  # GA names the function here; beta only in the output item
                await self._on_call(event["call_id"], event["name"], event.get("arguments"))
        elif kind == "response.output_item.done":
            item = event.get("item") or {}
            if item.get("type") == "function_call" and item.get("status") != "incomplete":
                await self._on_call(item["call_id"], item["name"], item.get("arguments"))
        elif kind == "response.done":
            await self._on_response_done(event["response"])
        elif kind == "error":
            await self._on_error(event.get("error") or {})

    async def _on_audio(self, event: dict[str, Any]) -> None:
        pcm = base64.b64decode(event["delta"])
        if len(pcm) % 2:
            pcm = pcm[:-1]
        response = event.get("response_id")
        if response != self._audio_response:  # a new spoken reply: forget the last one's items
            self._audio_response = response
            self._audio_items = []
            self._audio_clock = 0.0
        item_id = str(event.get("item_id") or "")
        if not self._audio_items or self._audio_items[-1].item_id != item_id:
            self._audio_items.append(_AudioItem(item_id))
        frame = AudioFrame.from_pcm16(pcm, SAMPLE_RATE, timestamp=self._audio_clock)
        self._audio_clock += frame.duration
        self._audio_items[-1].ms += frame.duration * 1000.0
        await self._emit(RealtimeEvent("audio", audio=frame))

    async def _on_call(self, call_id: str, name: str, arguments: str | None) -> None:
        if call_id in self._seen_calls:
            return  # announced by both arguments.done and output_item.done
        self._seen_calls.add(call_id)
        if not self._pending_calls:
            self._calls_interrupted = False
        self._pending_calls.add(call_id)
        call = ToolCall(name, arguments or "{}", id=call_id)
        await self._emit(RealtimeEvent("tool_call", tool_call=call))

    async def _on_response_done(self, response: Mapping[str, Any]) -> None:
        response_id = response.get("id")
        usage = _usage(response.get("usage"))
        if usage is not None:
            self.usage = self.usage + usage
        if response_id == self._response_id:
            self._response_id = None
        self._response_requested = False
        self._cancelled.discard(response_id)
        # Also after a cancel: it ends a reply the engine may still be playing.
        await self._emit(RealtimeEvent("response_done", usage=usage))
        if response.get("status") == "failed":
            details = response.get("status_details") or {}
            error = RealtimeAPIError.from_event(details.get("error") or {"message": "failed"})
            await self._emit(RealtimeEvent("error", error=error, recoverable=True))
        if self._respond_when_done and not self._pending_calls:
            self._respond_when_done = False
            await self._request_response()

    async def _on_error(self, error: Mapping[str, Any]) -> None:
        if error.get("code") in _BENIGN_ERRORS:
            logger.debug("OpenAI Realtime: %s", error.get("message"))
            return
        self._response_requested = False  # a refused response.create will not be answered
        await self._emit(
            RealtimeEvent("error", error=RealtimeAPIError.from_event(error), recoverable=True)
        )


# --- helpers ---------------------------------------------------------------------------------


def realtime_url(base_url: str, model: str) -> str:
    """``https://api.openai.com/v1`` -> ``wss://api.openai.com/v1/realtime?model=...``."""
    parts = urlsplit(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    path = parts.path.rstrip("/") + "/realtime"
    query = "&".join(q for q in (parts.query, urlencode({"model": model})) if q)
    return urlunsplit((scheme, parts.netloc, path, query, ""))


async def _expect(ws: ClientConnection, kind: str) -> dict[str, Any]:
    """Read events until one of type ``kind``; an ``error`` event raises."""
    while True:
        event = json.loads(await ws.recv())
        if event.get("type") == kind:
            return dict(event)
        if event.get("type") == "error":
            raise RealtimeAPIError.from_event(event.get("error") or {})


def _lost(exc: ConnectionClosed) -> Exception:
    """The error a connection closed mid-session ends it with: `ProviderDisconnected` (the
    close chained) unless the server closed it cleanly (1000) or refused to go on (1003,
    1007, 1008), which stay a plain `ConnectionError`."""
    from websockets.exceptions import ConnectionClosedOK

    frame = exc.rcvd
    why = f"code {frame.code} {frame.reason!r}" if frame else "no close frame"
    code = frame.code if frame else 1006
    if (isinstance(exc, ConnectionClosedOK) and code == 1000) or code in _REFUSED_CLOSE:
        error: Exception = ConnectionError(f"OpenAI Realtime connection lost ({why})")
    else:
        error = ProviderDisconnected("OpenAI Realtime", f"connection lost ({why})", status=code)
    error.__cause__ = exc
    return error


def _usage(usage: Mapping[str, Any] | None) -> Usage | None:
    if not usage:
        return None
    details = usage.get("input_token_details") or {}
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
    )


def _retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
    return seconds if seconds is not None and seconds >= 0 else None


def _merged(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``extra`` layered over ``base``, merging nested dicts."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out
