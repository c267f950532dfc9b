"""Gemini Live as a Parley realtime model: the BidiGenerateContent WebSocket, spoken directly.

One connection per session. The first message is ``setup`` (model, system instruction, tools,
AUDIO responses, transcription of both sides); the server answers ``setupComplete``. Then the
client streams ``realtimeInput`` (16 kHz PCM16 audio, JPEG video frames), ``clientContent``
(typed turns) and ``toolResponse``; the server streams ``serverContent`` (24 kHz PCM16 audio in
``modelTurn``, transcriptions, ``interrupted``, ``turnComplete``), ``toolCall`` and
``usageMetadata``. The server detects turns itself (server VAD).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import websockets
from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected, ProviderError
from parley.frames import AudioFrame, VideoFrame
from parley.llm import Usage
from parley.providers import with_scheme
from parley.realtime import Realtime, RealtimeCapabilities, RealtimeEvent, RealtimeSession
from parley.tools import FunctionTool
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus

from parley_gemini._convert import function_declarations, jpeg_bytes
from parley_gemini.errors import GeminiError, api_key_from, http_error, retry_delay

logger = logging.getLogger("parley.gemini")

DEFAULT_URL = "wss://generativelanguage.googleapis.com"
LIVE_PATH = "/ws/google.ai.generativelanguage.v1beta.GenerativeService.BidiGenerateContent"
DEFAULT_MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
# Close codes after which connecting again cannot help: bad request, bad key, policy.
_FATAL_CLOSE = frozenset({1003, 1007, 1008})


class GeminiLive(Realtime):
    """Connect sessions to the Gemini Live API.

    ``voice`` is a prebuilt voice name (e.g. ``"Puck"``, ``"Kore"``); ``language`` a BCP-47
    code for speech. ``transcribe`` asks for transcripts of the user's and the model's speech
    (core records them in the history). Video frames are sent as JPEG at most ``video_fps``
    times a second. ``base_url`` (``wss://`` or ``ws://``, optionally with the full path)
    points at another server, e.g. a test fake.
    """

    capabilities = RealtimeCapabilities(
        input_sample_rate=16000, output_sample_rate=24000, video=True, server_vad=True, tools=True
    )

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        voice: str | None = None,
        language: str | None = None,
        temperature: float | None = None,
        transcribe: bool = True,
        video_fps: float = 1.0,
        jpeg_quality: int = 80,
        connect_timeout: float = 10.0,
        send_timeout: float = 10.0,
        max_retries: int = 2,
        ping_interval: float | None = 20.0,
    ) -> None:
        self.model = model.removeprefix("models/")
        self._key = api_key_from(api_key)
        self.url = _live_url(base_url or DEFAULT_URL)
        self.voice = voice
        self.language = language
        self.temperature = temperature
        self.transcribe = transcribe
        self.video_fps = video_fps
        self.jpeg_quality = jpeg_quality
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.max_retries = max_retries
        self.ping_interval = ping_interval
        self.capabilities = RealtimeCapabilities(
            input_sample_rate=16000,
            output_sample_rate=24000,
            video=True,
            server_vad=True,
            tools=True,
        )

    def __repr__(self) -> str:
        return f"GeminiLive({self.model!r})"

    def setup_message(
        self, instructions: str, tools: Sequence[FunctionTool] = ()
    ) -> dict[str, Any]:
        """The first message of a session (public so it can be inspected)."""
        generation: dict[str, Any] = {"responseModalities": ["AUDIO"]}
        speech: dict[str, Any] = {}
        if self.voice:
            speech["voiceConfig"] = {"prebuiltVoiceConfig": {"voiceName": self.voice}}
        if self.language:
            speech["languageCode"] = self.language
        if speech:
            generation["speechConfig"] = speech
        if self.temperature is not None:
            generation["temperature"] = self.temperature
        setup: dict[str, Any] = {"model": f"models/{self.model}", "generationConfig": generation}
        if instructions:
            setup["systemInstruction"] = {"parts": [{"text": instructions}]}
        if tools:
            setup["tools"] = [{"functionDeclarations": function_declarations(tools)}]
        if self.transcribe:
            setup["inputAudioTranscription"] = {}
            setup["outputAudioTranscription"] = {}
        return {"setup": setup}

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] = (),
        chat_ctx: ChatContext | None = None,
    ) -> GeminiLiveSession:
        setup = json.dumps(self.setup_message(instructions, tools))
        attempt = 0
        while True:
            attempt += 1
            try:
                ws = await self._open(setup)
                break
            except GeminiError as exc:
                if not exc.retryable or attempt > self.max_retries:
                    raise
                delay = retry_delay(attempt, exc.retry_after)
                logger.warning("Gemini Live: %s; connecting again in %.1f s", exc, delay)
                await asyncio.sleep(delay)
        session = GeminiLiveSession(ws, self)
        if chat_ctx is not None:
            await session.seed(chat_ctx)
        return session

    async def _open(self, setup: str) -> ClientConnection:
        """Connect, send ``setup`` and wait for ``setupComplete``."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                ws = await websockets.connect(
                    self.url,
                    additional_headers={"x-goog-api-key": self._key},
                    open_timeout=None,  # the surrounding timeout covers the whole setup
                    ping_interval=self.ping_interval,
                    ping_timeout=self.ping_interval,
                    max_size=None,
                )
                try:
                    await ws.send(setup)
                    reply = _decode(await ws.recv())
                except BaseException:
                    await ws.close()
                    raise
        except TimeoutError:
            raise GeminiError(
                f"Gemini Live did not complete setup within {self.connect_timeout} s",
                retryable=True,
            ) from None
        except InvalidStatus as exc:
            response = exc.response
            raise http_error(
                response.status_code,
                bytes(response.body or b""),
                response.headers.get("retry-after"),
            ) from exc
        except ConnectionClosed as exc:
            raise _closed_error(exc, "during setup") from exc
        except (OSError, websockets.InvalidHandshake) as exc:
            raise GeminiError(
                f"cannot reach Gemini Live at {self.url}: {exc}", retryable=True
            ) from exc
        if "setupComplete" not in reply:
            await ws.close()
            raise GeminiError(f"Gemini Live answered the setup with {str(reply)[:200]}")
        return ws


class GeminiLiveSession(RealtimeSession):
    """One live conversation. Iterate it for events; it ends when the connection closes."""

    def __init__(self, ws: ClientConnection, owner: GeminiLive) -> None:
        super().__init__()
        self._ws = ws
        self._owner = owner
        self._responding = False
        self._muted = False  # dropping the rest of a reply the client interrupted
        self._user_text = ""  # transcript of the user's current turn, sent final at its end
        self._usage: Usage | None = None
        self._last_video = -math.inf
        self._closing = False
        self._failed = False
        self._reader = asyncio.create_task(self._read(), name="parley-gemini-live")

    # --- sending ------------------------------------------------------------------------------

    async def _send(self, message: Mapping[str, Any]) -> None:
        if self._closing or self._closed:
            raise GeminiError("the Gemini Live session is closed")
        try:
            async with asyncio.timeout(self._owner.send_timeout):
                await self._ws.send(json.dumps(message))
        except TimeoutError:
            raise GeminiError(
                f"Gemini Live did not take a message within {self._owner.send_timeout} s"
            ) from None
        except ConnectionClosed as exc:
            raise _closed_error(exc, "while sending", mid_session=True) from exc

    async def seed(self, chat_ctx: ChatContext) -> None:
        """Give the model the conversation so far (text turns only) without asking a reply."""
        turns = [
            {"role": "model" if m.role == "assistant" else "user", "parts": [{"text": m.content}]}
            for m in chat_ctx
            if m.role in ("user", "assistant") and m.content
        ]
        if turns:
            await self._send({"clientContent": {"turns": turns, "turnComplete": False}})

    async def _send_media(self, message: Mapping[str, Any]) -> None:
        """Media goes out from the engine's audio loop: a failure ends this session through an
        error event (as a closed connection does) instead of raising into that loop."""
        if self._closing or self._closed:
            return
        try:
            await self._send(message)
        except ProviderError as exc:  # a GeminiError, or ProviderDisconnected
            await self._fail(exc)

    async def push_audio(self, frame: AudioFrame) -> None:
        pcm = base64.b64encode(frame.to_mono().to_pcm16()).decode("ascii")
        mime = f"audio/pcm;rate={frame.sample_rate}"
        await self._send_media({"realtimeInput": {"audio": {"data": pcm, "mimeType": mime}}})

    async def push_video(self, frame: VideoFrame) -> None:
        now = time.monotonic()
        if self._owner.video_fps <= 0 or now - self._last_video < 1.0 / self._owner.video_fps:
            return  # the model samples video at about 1 fps; more only costs bandwidth
        self._last_video = now
        jpeg = await asyncio.to_thread(jpeg_bytes, frame, quality=self._owner.jpeg_quality)
        data = base64.b64encode(jpeg).decode("ascii")
        await self._send_media(
            {"realtimeInput": {"video": {"data": data, "mimeType": "image/jpeg"}}}
        )

    async def push_text(self, text: str, *, respond: bool = True) -> None:
        turn = {"role": "user", "parts": [{"text": text}]}
        await self._send({"clientContent": {"turns": [turn], "turnComplete": respond}})

    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        # The Live API has no cancel or truncate message: the server stops by itself when it
        # hears the user (``interrupted``). Here the rest of the current reply is dropped, and
        # the model keeps its full reply in memory (``played_seconds`` cannot be honoured).
        if self._responding:
            self._muted = True
            self._responding = False

    async def send_tool_result(self, call: ToolCall, output: str) -> None:
        response = {"id": call.id, "name": call.name, "response": {"result": output}}
        await self._send({"toolResponse": {"functionResponses": [response]}})

    async def aclose(self) -> None:
        if self._closing:
            return
        self._closing = True
        if self._reader is not asyncio.current_task():
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._ws.close()
        await super().aclose()

    # --- receiving ----------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                await self._handle(_decode(raw))
            if not self._closing:
                await self._fail(GeminiError("Gemini Live ended the session"))
        except ConnectionClosed as exc:
            if not self._closing:
                error = _closed_error(exc, "mid-session", mid_session=True)
                error.__cause__ = exc
                await self._fail(error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            await self._fail(exc)

    async def _fail(self, error: Exception) -> None:
        if self._closing or self._failed:
            return  # already failed or closing: one error is enough
        self._failed = True
        await self._emit(RealtimeEvent("error", error=error, recoverable=False))
        await self.aclose()

    async def _handle(self, message: Mapping[str, Any]) -> None:
        content = message.get("serverContent")
        if content:
            await self._server_content(content)
        call = message.get("toolCall")
        if call:
            await self._flush_user()
            for function in call.get("functionCalls") or []:
                call_id = function.get("id") or f"gemini_{uuid.uuid4().hex[:12]}"
                arguments = json.dumps(function.get("args") or {})
                tool_call = ToolCall(function["name"], arguments, call_id)
                await self._emit(RealtimeEvent("tool_call", tool_call=tool_call))
        if message.get("usageMetadata"):
            self._usage = _usage(message["usageMetadata"])
        if message.get("goAway") is not None:
            left = (message["goAway"] or {}).get("timeLeft", "soon")
            error = GeminiError(f"Gemini Live will end this session ({left} left)")
            await self._emit(RealtimeEvent("error", error=error, recoverable=True))
        if message.get("toolCallCancellation"):
            logger.info("Gemini Live cancelled tool calls %s", message["toolCallCancellation"])

    async def _server_content(self, content: Mapping[str, Any]) -> None:
        heard = (content.get("inputTranscription") or {}).get("text")
        if heard:
            self._user_text += heard
            await self._emit(RealtimeEvent("user_transcript", text=self._user_text, final=False))
        if content.get("interrupted"):
            # The server heard the user over its reply: core stops playout (barge-in).
            self._responding = False
            self._muted = False
            await self._emit(RealtimeEvent("user_speech_started"))
        for part in (content.get("modelTurn") or {}).get("parts") or []:
            blob = part.get("inlineData") or {}
            if str(blob.get("mimeType", "")).startswith("audio/") and blob.get("data"):
                if self._muted:
                    continue
                await self._begin_response()
                pcm = base64.b64decode(blob["data"])
                rate = _rate(blob["mimeType"], self._owner.capabilities.output_sample_rate)
                await self._emit(RealtimeEvent("audio", audio=AudioFrame.from_pcm16(pcm, rate)))
            elif part.get("text") and not part.get("thought") and not self._muted:
                await self._begin_response()
                await self._emit(RealtimeEvent("agent_transcript", text=part["text"], final=False))
        said = (content.get("outputTranscription") or {}).get("text")
        if said and not self._muted:
            await self._begin_response()
            await self._emit(RealtimeEvent("agent_transcript", text=said, final=False))
        if content.get("turnComplete"):
            await self._flush_user()
            usage, self._usage = self._usage, None
            self._responding = False
            self._muted = False
            await self._emit(RealtimeEvent("response_done", usage=usage))

    async def _begin_response(self) -> None:
        if not self._responding:
            await self._flush_user()
            self._responding = True
            await self._emit(RealtimeEvent("response_started"))

    async def _flush_user(self) -> None:
        """The model answers: what the user said so far is their whole turn."""
        if self._user_text.strip():
            text, self._user_text = self._user_text.strip(), ""
            await self._emit(RealtimeEvent("user_speech_stopped"))
            await self._emit(RealtimeEvent("user_transcript", text=text, final=True))
        self._user_text = ""


def _live_url(base_url: str) -> str:
    url = with_scheme(base_url, "wss://", "ws://")
    return url if "/ws/" in url else url + LIVE_PATH


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise GeminiError(f"Gemini Live sent an unreadable message: {raw[:200]!r}") from exc
    if not isinstance(message, dict):
        raise GeminiError(f"Gemini Live sent an unexpected message: {raw[:200]!r}")
    return message


def _closed_error(
    exc: ConnectionClosed, when: str, *, mid_session: bool = False
) -> GeminiError | ProviderDisconnected:
    """A clean close (1000) or a refusal (`_FATAL_CLOSE`) is a `GeminiError`; any other close
    of an established session is `ProviderDisconnected` with the close code as ``status``
    (during setup, a retryable `GeminiError`)."""
    close = exc.rcvd
    code = close.code if close is not None else 1006
    reason = (close.reason if close is not None else "") or "no reason given"
    if isinstance(exc, ConnectionClosedOK) and code == 1000:
        return GeminiError(f"Gemini Live closed the connection {when}", status=code)
    if mid_session and code not in _FATAL_CLOSE:
        return ProviderDisconnected("Gemini Live", f"code {code}: {reason}", status=code)
    return GeminiError(
        f"Gemini Live closed the connection {when} (code {code}: {reason})",
        status=code,
        retryable=code not in _FATAL_CLOSE,
    )


def _rate(mime: str, default: int) -> int:
    for piece in mime.split(";"):
        name, _, value = piece.strip().partition("=")
        if name == "rate" and value.isdigit():
            return int(value)
    return default


def _usage(metadata: Mapping[str, Any]) -> Usage:
    output = metadata.get("responseTokenCount", metadata.get("candidatesTokenCount", 0))
    return Usage(
        input_tokens=int(metadata.get("promptTokenCount", 0)),
        output_tokens=int(output) + int(metadata.get("thoughtsTokenCount", 0)),
        cached_tokens=int(metadata.get("cachedContentTokenCount", 0)),
    )
