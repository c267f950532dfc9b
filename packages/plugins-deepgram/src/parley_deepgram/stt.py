"""Deepgram live transcription over its WebSocket, spoken directly.

deepgram-sdk is not used: the engine needs its own deadlines on every network wait, a
reconnect that replays unconfirmed audio, and plain access to every message; the protocol is
small (binary PCM up; JSON results down; ``KeepAlive``, ``Finalize`` and ``CloseStream`` text
messages up).

Two protocols, chosen by the model:

- **Nova** (``/v1/listen``): ``Results`` with ``is_final`` and ``speech_final``,
  ``SpeechStarted`` (``vad_events``) and ``UtteranceEnd`` (``utterance_end_ms``). Interim
  results become ``partial`` events, final ones ``final`` events; ``speech_final`` (Deepgram's
  endpointing) and ``UtteranceEnd`` become ``end_of_turn`` when ``turn_events`` is on.
- **Flux** (``/v2/listen``, models ``flux-*``): one ``TurnInfo`` message per turn event.
  ``StartOfTurn`` -> ``speech_started``; ``Update``/``TurnResumed`` -> ``partial``;
  ``EndOfTurn`` -> ``end_of_turn`` with the turn's text. With ``eager_turn_detection``,
  ``EagerEndOfTurn`` (sent when Flux is fairly, not fully, sure the user is done) becomes a
  ``final`` event: the engine then commits the turn after its own short endpointing delay
  instead of waiting for ``EndOfTurn``. Core has no speculative reply to cancel, so if Flux
  then reports ``TurnResumed``, the words that follow arrive as a new turn (the engine treats
  the user's continuation like a barge-in). That is the honest price of the lower latency.

Resilience: the handshake is retried with backoff (Retry-After on 429); a dropped connection
is reopened and the audio sent since the last final result is sent again, so no words are
lost; ``KeepAlive`` is sent whenever no audio went out for ``keepalive_interval`` seconds; an
error Deepgram will not recover from (bad key, bad audio) ends the stream with a
`DeepgramError`, which the engine reports. A connection that keeps breaking (``max_retries``
reconnects in a row without a message) ends it with `parley.ProviderDisconnected`, the last
close chained.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import websockets
from parley.errors import ProviderDisconnected, ProviderError
from parley.frames import AudioFrame
from parley.providers import find_api_key, retry_delay, with_scheme
from parley.stt import STT, STTCapabilities, STTEvent, STTStream
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus

from parley_deepgram.errors import DeepgramError, http_error

logger = logging.getLogger("parley.deepgram")

DEFAULT_URL = "wss://api.deepgram.com"
# 1008: DATA-0000, audio Deepgram cannot decode; sending it again would fail again.
_FATAL_CLOSE = frozenset({1003, 1007, 1008})

Param = str | int | float | bool


class DeepgramSTT(STT):
    """Deepgram streaming speech-to-text.

    ``model`` defaults to ``"nova-3"``, or ``"flux-general-en"`` with ``eager_turn_detection``
    (a Flux feature). ``eager_turn_detection`` is ``True`` (threshold 0.5) or Flux's
    ``eager_eot_threshold`` itself (0.3-0.9); ``eot_threshold`` and ``eot_timeout_ms`` tune
    Flux's end of turn. ``endpointing`` (ms of silence, or False), ``utterance_end_ms``,
    ``vad_events``, ``smart_format``, ``punctuate`` and ``keyterms`` are Nova's options;
    ``extra_params`` passes any other query parameter. ``turn_events=False`` leaves turn
    decisions to the engine's VAD and turn detector.
    """

    # The defaults (Nova, interim results, turn events); an instance adjusts to its options.
    capabilities = STTCapabilities(interim_results=True, turn_detection=True, sample_rate=16000)

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        language: str = "en",
        sample_rate: int = 16000,
        interim_results: bool = True,
        endpointing: int | bool = 300,
        utterance_end_ms: int | None = 1000,
        vad_events: bool = True,
        smart_format: bool = True,
        punctuate: bool = True,
        keyterms: Sequence[str] = (),
        turn_events: bool = True,
        eager_turn_detection: bool | float = False,
        eot_threshold: float | None = None,
        eot_timeout_ms: int | None = None,
        keepalive_interval: float = 5.0,
        connect_timeout: float = 10.0,
        send_timeout: float = 5.0,
        close_timeout: float = 3.0,
        max_retries: int = 3,
        replay_seconds: float = 30.0,
        extra_params: Mapping[str, Param] | None = None,
    ) -> None:
        if model is None:
            model = "flux-general-en" if eager_turn_detection else "nova-3"
        self.flux = model.startswith("flux")
        if eager_turn_detection and not self.flux:
            raise ValueError(
                f"eager_turn_detection is a Deepgram Flux feature; model {model!r} is not a Flux "
                "model: use model='flux-general-en' or leave model unset"
            )
        eager = 0.5 if eager_turn_detection is True else float(eager_turn_detection or 0.0)
        if eager and not 0.3 <= eager <= 0.9:
            raise ValueError(f"eager_turn_detection threshold must be 0.3-0.9, got {eager}")
        self.model = model
        self._key = find_api_key(
            api_key, "DEEPGRAM_API_KEY", part="Deepgram", signup="https://console.deepgram.com"
        )
        self.base_url = with_scheme(base_url or DEFAULT_URL, "wss://", "ws://")
        self.language = language
        self.sample_rate = sample_rate
        self.interim_results = interim_results
        self.endpointing = endpointing
        self.utterance_end_ms = utterance_end_ms
        self.vad_events = vad_events
        self.smart_format = smart_format
        self.punctuate = punctuate
        self.keyterms = tuple(keyterms)
        self.turn_events = turn_events
        self.eager_threshold = eager or None
        self.eot_threshold = eot_threshold
        self.eot_timeout_ms = eot_timeout_ms
        self.keepalive_interval = keepalive_interval
        self.connect_timeout = connect_timeout
        self.send_timeout = send_timeout
        self.close_timeout = close_timeout
        self.max_retries = max_retries
        self.replay_seconds = replay_seconds
        self.extra_params = dict(extra_params or {})
        self.capabilities = STTCapabilities(
            streaming=True,
            interim_results=interim_results or self.flux,
            turn_detection=turn_events,
            sample_rate=sample_rate,
            languages=(language,),
        )

    def __repr__(self) -> str:
        return f"DeepgramSTT({self.model!r})"

    def listen_url(self, language: str | None = None) -> str:
        """The WebSocket URL with every option as a query parameter."""
        params: list[tuple[str, Param]] = [
            ("model", self.model),
            ("encoding", "linear16"),
            ("sample_rate", self.sample_rate),
        ]
        if self.flux:
            path = "/v2/listen"
            for name, value in (
                ("eot_threshold", self.eot_threshold),
                ("eager_eot_threshold", self.eager_threshold),
                ("eot_timeout_ms", self.eot_timeout_ms),
            ):
                if value is not None:
                    params.append((name, value))
        else:
            path = "/v1/listen"
            params += [
                ("channels", 1),
                ("language", language or self.language),
                ("interim_results", self.interim_results),
                ("endpointing", self.endpointing),
                ("vad_events", self.vad_events),
                ("smart_format", self.smart_format),
                ("punctuate", self.punctuate),
            ]
            if self.utterance_end_ms and self.interim_results:  # Deepgram requires both
                params.append(("utterance_end_ms", self.utterance_end_ms))
        params += [("keyterm", term) for term in self.keyterms]
        params += list(self.extra_params.items())
        query = urlencode([(k, str(v).lower() if isinstance(v, bool) else v) for k, v in params])
        return f"{self.base_url}{path}?{query}"

    def stream(self, *, language: str | None = None) -> DeepgramSTTStream:
        return DeepgramSTTStream(self, self.listen_url(language), language or self.language)

    async def connect(self, url: str) -> ClientConnection:
        """Open the WebSocket (one attempt); failures become `DeepgramError`."""
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await websockets.connect(
                    url,
                    additional_headers={"Authorization": f"Token {self._key}"},
                    open_timeout=None,  # the surrounding timeout covers it
                    ping_interval=10.0,
                    ping_timeout=10.0,
                    max_size=None,
                )
        except TimeoutError:
            raise DeepgramError(
                f"Deepgram did not accept the connection within {self.connect_timeout} s",
                retryable=True,
            ) from None
        except InvalidStatus as exc:
            response = exc.response
            raise http_error(
                response.status_code,
                bytes(response.body or b""),
                response.headers.get("dg-error"),
                response.headers.get("retry-after"),
            ) from exc
        except (OSError, websockets.InvalidHandshake) as exc:
            raise DeepgramError(
                f"cannot reach Deepgram at {self.base_url}: {exc}", retryable=True
            ) from exc


class _Chunk:
    __slots__ = ("end", "pcm", "start")

    def __init__(self, start: float, end: float, pcm: bytes) -> None:
        self.start = start
        self.end = end
        self.pcm = pcm


class DeepgramSTTStream(STTStream):
    """One live transcription: push 16-bit mono frames, read `STTEvent`s."""

    def __init__(self, stt: DeepgramSTT, url: str, language: str) -> None:
        super().__init__()
        self._stt = stt
        self._url = url
        self._language = language
        self._ws: ClientConnection | None = None
        self._pending: deque[_Chunk] = deque()  # audio not yet covered by a final result
        self._pushed = 0.0  # seconds of audio pushed into this stream
        self._origin = 0.0  # stream time where the current connection's audio begins
        self._committed = 0.0  # stream time covered by final results
        self._unreported = 0.0  # audio seconds not yet reported on a final event
        self._last_sent = time.monotonic()
        self._turn_has_text = False
        self._eager_words = 0  # words of this turn already sent as final (Flux eager mode)
        self._error: BaseException | None = None
        self._closing = False
        self._finalize_pending = False
        self.connections = 0  # how many times the socket was opened (reconnects show here)
        self._task = asyncio.create_task(self._run(), name="parley-deepgram")

    @property
    def closing(self) -> bool:
        """`aclose` has begun (it may change while the reader awaits the network)."""
        return self._closing

    # --- input --------------------------------------------------------------------------------

    async def push(self, frame: AudioFrame) -> None:
        # After a failure the frame is dropped, not raised: the error reaches the engine
        # through the event iteration, and the engine opens a new stream.
        if self._error is not None or self._closing or self._closed:
            return
        if frame.sample_rate != self._stt.sample_rate or frame.channels != 1:
            raise ValueError(
                f"Deepgram stream expects {self._stt.sample_rate} Hz mono audio, got {frame!r}"
            )
        start = self._pushed
        self._pushed += frame.duration
        chunk = _Chunk(start, self._pushed, frame.to_pcm16())
        self._pending.append(chunk)
        # Bound the replay buffer: audio older than replay_seconds is not sent again.
        while self._pending and self._pending[0].end < self._pushed - self._stt.replay_seconds:
            self._pending.popleft()
        ws = self._ws
        if ws is None:
            return  # (re)connecting: the chunk goes out with the replay
        try:
            async with asyncio.timeout(self._stt.send_timeout):
                await ws.send(chunk.pcm)
            self._last_sent = time.monotonic()
        except (ConnectionClosed, TimeoutError):
            pass  # the reader notices, reconnects and replays this chunk

    async def flush(self) -> None:
        """Ask Deepgram to finalize what it heard now (Nova's ``Finalize``; Flux has none)."""
        if self._stt.flux:
            return
        ws = self._ws
        if ws is None:
            self._finalize_pending = True  # sent right after the (re)connection's replay
            return
        try:
            async with asyncio.timeout(self._stt.send_timeout):
                await ws.send(json.dumps({"type": "Finalize"}))
        except (ConnectionClosed, TimeoutError):
            pass

    async def aclose(self) -> None:
        """Send ``CloseStream``, read the last results (bounded by ``close_timeout``), close."""
        if self._closing:
            return
        self._closing = True
        ws = self._ws
        if ws is not None and not self._task.done():
            try:
                async with asyncio.timeout(self._stt.send_timeout):
                    await ws.send(json.dumps({"type": "CloseStream"}))
                await asyncio.wait([self._task], timeout=self._stt.close_timeout)
            except (ConnectionClosed, TimeoutError):
                pass
        if not self._task.done():
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        if ws is not None:
            await ws.close()
        await super().aclose()

    async def _iterate(self) -> AsyncIterator[STTEvent]:
        async for event in super()._iterate():
            yield event
        if self._error is not None:
            raise self._error  # the engine reports it and may open a new stream

    # --- connection ---------------------------------------------------------------------------

    async def _run(self) -> None:
        failures = 0
        try:
            while not self._closing:
                try:
                    ws = await self._stt.connect(self._url)
                except DeepgramError as exc:
                    failures += 1
                    if not exc.retryable or failures > self._stt.max_retries:
                        raise
                    await self._backoff(failures, exc)
                    continue
                self.connections += 1
                keepalive = asyncio.create_task(self._keepalive(ws))
                cause: BaseException | None = None
                error: ProviderError
                try:
                    await self._replay(ws)
                    self._ws = ws
                    if self._finalize_pending:
                        self._finalize_pending = False
                        await ws.send(json.dumps({"type": "Finalize"}))
                    async for raw in ws:
                        failures = 0  # the connection works
                        await self._handle(raw)
                    if self.closing:
                        return
                    error = DeepgramError("Deepgram closed the stream", retryable=True)
                except (ConnectionClosed, TimeoutError) as exc:
                    if self.closing:
                        return
                    if isinstance(exc, TimeoutError):
                        error = DeepgramError("Deepgram did not take audio in time", retryable=True)
                    else:
                        error = _closed_error(exc)
                    cause = exc
                    if not error.retryable:
                        raise error from exc
                finally:
                    self._ws = None
                    keepalive.cancel()
                failures += 1
                if failures > self._stt.max_retries:
                    raise error from cause
                await self._backoff(failures, error)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._error = exc
            await STTStream.aclose(self)

    async def _backoff(self, failures: int, error: ProviderError) -> None:
        delay = retry_delay(failures, error.retry_after)
        logger.warning("Deepgram: %s; reconnecting in %.2f s", error, delay)
        await asyncio.sleep(delay)

    async def _replay(self, ws: ClientConnection) -> None:
        """Send the audio no final result covers yet, including what arrives meanwhile."""
        self._origin = self._pending[0].start if self._pending else self._pushed
        self._committed = max(self._committed, self._origin)
        self._eager_words = 0
        sent_until = self._origin
        while True:
            batch = [c for c in self._pending if c.start >= sent_until]
            if not batch:
                return
            for chunk in batch:
                async with asyncio.timeout(self._stt.send_timeout):
                    await ws.send(chunk.pcm)
                sent_until = chunk.end
            self._last_sent = time.monotonic()

    async def _keepalive(self, ws: ClientConnection) -> None:
        """Deepgram closes a stream that gets nothing for 10 s (NET-0001)."""
        interval = self._stt.keepalive_interval
        try:
            while True:
                await asyncio.sleep(interval / 2)
                if time.monotonic() - self._last_sent >= interval and not self._stt.flux:
                    await ws.send(json.dumps({"type": "KeepAlive"}))
                    self._last_sent = time.monotonic()
        except ConnectionClosed:
            return

    def _commit(self, end: float) -> float:
        """Audio up to stream time ``end`` is final: forget it; return its seconds for usage."""
        covered = max(0.0, end - self._committed) + self._unreported
        self._committed = max(self._committed, end)
        self._unreported = 0.0
        while self._pending and self._pending[0].end <= self._committed + 1e-6:
            self._pending.popleft()
        return covered

    # --- messages -----------------------------------------------------------------------------

    async def _handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            logger.warning("Deepgram sent an unreadable message: %r", raw[:200])
            return
        kind = message.get("type")
        if kind in ("Error", "FatalError"):
            detail = message.get("description") or message.get("message") or message
            raise DeepgramError(f"Deepgram reported an error: {detail}")
        if kind == "TurnInfo":
            await self._turn_info(message)
        elif kind == "Results":
            await self._results(message)
        elif kind == "SpeechStarted":
            await self._emit(STTEvent("speech_started", language=self._language))
        elif kind == "UtteranceEnd":
            await self._end_of_turn()

    async def _results(self, message: Mapping[str, Any]) -> None:
        alternative = ((message.get("channel") or {}).get("alternatives") or [{}])[0]
        text = str(alternative.get("transcript") or "").strip()
        confidence = float(alternative.get("confidence") or 1.0)
        if not message.get("is_final"):
            if text:
                await self._emit(STTEvent("partial", text, confidence, self._language))
            return
        end = self._origin + float(message.get("start", 0.0)) + float(message.get("duration", 0.0))
        covered = self._commit(end)
        if text:
            self._turn_has_text = True
            await self._emit(STTEvent("final", text, confidence, self._language, covered))
        else:
            self._unreported += covered  # reported with the next final
        if message.get("speech_final"):
            await self._end_of_turn()

    async def _end_of_turn(self) -> None:
        if self._stt.turn_events and self._turn_has_text:
            self._turn_has_text = False
            await self._emit(STTEvent("end_of_turn", language=self._language))

    async def _turn_info(self, message: Mapping[str, Any]) -> None:
        event = message.get("event")
        text = str(message.get("transcript") or "").strip()
        words = text.split()
        confidence = _mean_confidence(message.get("words") or [])
        if event == "StartOfTurn":
            await self._emit(STTEvent("speech_started", language=self._language))
            if text:
                await self._emit(STTEvent("partial", text, confidence, self._language))
        elif event in ("Update", "TurnResumed"):
            if text:
                await self._emit(STTEvent("partial", text, confidence, self._language))
        elif event == "EagerEndOfTurn" and self._stt.eager_threshold:
            new = " ".join(words[self._eager_words :])
            if new:
                self._eager_words = len(words)
                await self._emit(STTEvent("final", new, confidence, self._language))
        elif event == "EndOfTurn":
            end = self._origin + float(message.get("audio_window_end", 0.0))
            covered = self._commit(end)
            rest = " ".join(words[self._eager_words :])
            had_text = bool(words)
            self._eager_words = 0
            if not had_text:
                self._unreported += covered
                return
            if not self._stt.turn_events:
                if rest:
                    await self._emit(STTEvent("final", rest, confidence, self._language, covered))
                return
            await self._emit(STTEvent("end_of_turn", rest, confidence, self._language, covered))


def _mean_confidence(words: Sequence[Mapping[str, Any]]) -> float:
    values = [float(w["confidence"]) for w in words if "confidence" in w]
    return sum(values) / len(values) if values else 1.0


def _closed_error(exc: ConnectionClosed) -> DeepgramError | ProviderDisconnected:
    """A clean close (1000) or a refusal (`_FATAL_CLOSE`) is a `DeepgramError`; any other
    close of the stream is `ProviderDisconnected`, with the close code as ``status``. Both
    but the refusals are retryable: the stream reconnects."""
    close = exc.rcvd
    code = close.code if close is not None else 1006
    reason = (close.reason if close is not None else "") or "no reason given"
    if (isinstance(exc, ConnectionClosedOK) and code == 1000) or code in _FATAL_CLOSE:
        return DeepgramError(
            f"Deepgram closed the stream (code {code}: {reason})",
            status=code,
            retryable=code not in _FATAL_CLOSE,
        )
    return ProviderDisconnected("Deepgram STT", f"code {code}: {reason}", status=code)
