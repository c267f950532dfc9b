"""ElevenLabs text-to-speech: the stream-input WebSocket, with HTTP streaming as a fallback.

The elevenlabs SDK is not used: its WebSocket helper is synchronous, and the engine needs a
deadline on every read and control over falling back. Per sentence (the engine feeds TTS a
sentence at a time) the socket carries a begin-of-stream message (``{"text": " "}`` with
``voice_settings``, ``generation_config`` and ``xi_api_key``), the text with ``flush`` so it
is spoken at once, and the end-of-stream ``{"text": ""}``; the server answers with base64
``audio`` chunks (``pcm_24000``: 16-bit mono at 24 kHz) and ``isFinal``.

When the socket cannot be opened or breaks before any audio, the sentence is spoken through
``POST /v1/text-to-speech/{voice_id}/stream`` instead, and the socket is not tried again for
``fallback_cooldown`` seconds. A refusal (bad key, unknown voice, quota) is raised, not
retried over HTTP, since it would be refused there too. A connection (socket or HTTP) that
breaks after audio was heard raises `parley.ProviderDisconnected`, never repeated over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack
from typing import Any, Literal
from urllib.parse import urlencode

import httpx
import websockets
from parley.audio import PCM16Stream
from parley.errors import ProviderDisconnected
from parley.frames import AudioFrame
from parley.providers import find_api_key, retry_delay, with_scheme
from parley.tts import TTS, TTSCapabilities
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK, InvalidStatus
from websockets.protocol import State

from parley_elevenlabs.errors import ElevenLabsError, http_error

logger = logging.getLogger("parley.elevenlabs")

DEFAULT_URL = "https://api.elevenlabs.io"
DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb"  # "George", a premade voice every account has
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
# ElevenLabs closes a socket that gets no text for 20 s; a spare older than this is replaced.
_SPARE_MAX_AGE = 15.0
# Close codes that mean "refused": falling back to HTTP cannot help.
_REFUSED_CLOSE = frozenset({1003, 1007, 1008})


class _SocketFailure(Exception):
    """The WebSocket path failed for a reason HTTP may not share (network, server)."""


class _SocketClosed(_SocketFailure):
    """The socket closed abnormally (the `ConnectionClosed` is the ``__cause__``)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ElevenLabsTTS(TTS):
    """Speak with an ElevenLabs voice.

    ``voice`` is a voice id; ``model`` e.g. ``"eleven_flash_v2_5"`` (lowest latency) or
    ``"eleven_multilingual_v2"``; ``language`` an ISO 639-1 code for models that take one.
    ``stability``, ``similarity_boost``, ``style``, ``speed`` and ``use_speaker_boost`` are
    the voice settings (unset: the voice's own). ``transport="http"`` skips the WebSocket.
    ``timeout`` bounds every wait for audio; ``max_retries`` retries a refused HTTP request
    (429, 5xx) before any audio. ``prewarm`` keeps the next sentence's socket open ahead of
    time (opened by `warm_up` and whenever a sentence starts), so no sentence but the first
    waits for a handshake.
    """

    capabilities = TTSCapabilities(streaming=True, sample_rate=24000)  # per instance: sample_rate

    def __init__(
        self,
        voice: str = DEFAULT_VOICE,
        *,
        model: str = "eleven_flash_v2_5",
        api_key: str | None = None,
        base_url: str | None = None,
        ws_url: str | None = None,
        sample_rate: int = 24000,
        language: str | None = None,
        stability: float | None = None,
        similarity_boost: float | None = None,
        style: float | None = None,
        speed: float | None = None,
        use_speaker_boost: bool | None = None,
        transport: Literal["websocket", "http"] = "websocket",
        connect_timeout: float = 5.0,
        timeout: float = 10.0,
        max_retries: int = 1,
        fallback_cooldown: float = 30.0,
        prewarm: bool = True,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        if sample_rate not in PCM_RATES:
            raise ValueError(f"ElevenLabs PCM output supports {PCM_RATES} Hz, not {sample_rate}")
        if transport not in ("websocket", "http"):
            raise ValueError(f"transport must be 'websocket' or 'http', got {transport!r}")
        self.voice = voice
        self.model = model
        self._key = find_api_key(
            api_key,
            "ELEVENLABS_API_KEY",
            part="ElevenLabs",
            signup="https://elevenlabs.io/app/settings/api-keys",
        )
        self.base_url = (base_url or DEFAULT_URL).rstrip("/")
        self.ws_url = (ws_url or with_scheme(self.base_url, "wss://", "ws://")).rstrip("/")
        self.sample_rate = sample_rate
        self.language = language
        self.transport = transport
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.max_retries = max_retries
        self.fallback_cooldown = fallback_cooldown
        self.prewarm = prewarm
        self._spare: asyncio.Task[ClientConnection] | None = None
        self._spare_at = 0.0
        self.voice_settings = _voice_settings(
            stability=stability,
            similarity_boost=similarity_boost,
            style=style,
            speed=speed,
            use_speaker_boost=use_speaker_boost,
        )
        self.capabilities = TTSCapabilities(streaming=True, sample_rate=sample_rate)
        self.fallbacks = 0  # sentences spoken over HTTP because the socket failed
        self._socket_retry_at = 0.0
        self._owns_client = http_client is None
        self._client = http_client
        self._timeouts = httpx.Timeout(timeout, connect=connect_timeout)

    def __repr__(self) -> str:
        return f"ElevenLabsTTS(voice={self.voice!r}, model={self.model!r})"

    @property
    def output_format(self) -> str:
        return f"pcm_{self.sample_rate}"

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if not text.strip():
            return
        if self.transport == "websocket" and time.monotonic() >= self._socket_retry_at:
            produced = False
            try:
                async for frame in self._socket(text):
                    produced = True
                    yield frame
                return
            except _SocketFailure as exc:
                if produced and isinstance(exc, _SocketClosed):
                    closed = exc.__cause__ or exc  # websockets' ConnectionClosed
                    raise ProviderDisconnected("ElevenLabs", str(exc), status=exc.code) from closed
                if produced:  # a stall or an unreadable message
                    raise ElevenLabsError(
                        f"the ElevenLabs stream broke mid-sentence: {exc}"
                    ) from exc
                logger.warning("ElevenLabs WebSocket failed (%s); speaking over HTTP", exc)
                self.fallbacks += 1
                self._socket_retry_at = time.monotonic() + self.fallback_cooldown
                await self._drop_spare()
        async for frame in self._http(text):
            yield frame

    # --- WebSocket input streaming ------------------------------------------------------------

    def socket_url(self) -> str:
        query = {"model_id": self.model, "output_format": self.output_format}
        if self.language:
            query["language_code"] = self.language
        return f"{self.ws_url}/v1/text-to-speech/{self.voice}/stream-input?{urlencode(query)}"

    def begin_message(self) -> dict[str, Any]:
        """The begin-of-stream message (public so it can be inspected)."""
        message: dict[str, Any] = {"text": " ", "xi_api_key": self._key}
        if self.voice_settings:
            message["voice_settings"] = self.voice_settings
        return message

    async def _connect(self) -> ClientConnection:
        try:
            async with asyncio.timeout(self.connect_timeout):
                return await websockets.connect(
                    self.socket_url(), open_timeout=None, ping_interval=None, max_size=None
                )
        except TimeoutError:
            raise _SocketFailure(f"no connection within {self.connect_timeout} s") from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            error = http_error(status, bytes(exc.response.body or b""))
            if status in (400, 401, 403, 404, 422):
                raise error from exc  # refused: HTTP would be refused too
            raise _SocketFailure(str(error)) from exc
        except (OSError, websockets.InvalidHandshake) as exc:
            raise _SocketFailure(f"cannot connect: {exc}") from exc

    def _open_spare(self) -> None:
        """Open the next sentence's socket now, so its handshake is not on the critical path."""
        if self.prewarm and self._spare is None and self.transport == "websocket":
            self._spare = asyncio.create_task(self._connect(), name="parley-elevenlabs-spare")
            self._spare_at = time.monotonic()

    async def _take_socket(self) -> ClientConnection:
        spare, self._spare = self._spare, None
        if spare is not None:
            fresh = time.monotonic() - self._spare_at < _SPARE_MAX_AGE
            if fresh or spare.done():
                try:
                    ws = await spare
                except (ElevenLabsError, _SocketFailure):
                    ws = None  # connect again below; a refusal will repeat there
                if ws is not None and fresh and ws.state is State.OPEN:
                    return ws
                if ws is not None:
                    await ws.close()
            else:
                spare.cancel()
                await _close_spare(spare)
        return await self._connect()

    async def warm_up(self) -> None:
        self._open_spare()

    async def _socket(self, text: str) -> AsyncIterator[AudioFrame]:
        ws = await self._take_socket()
        self._open_spare()
        pcm = PCM16Stream(self.sample_rate)
        try:
            await ws.send(json.dumps(self.begin_message()))
            await ws.send(json.dumps({"text": text.strip() + " ", "flush": True}))
            await ws.send(json.dumps({"text": ""}))
            while True:
                try:
                    async with asyncio.timeout(self.timeout):
                        raw = await ws.recv()
                except TimeoutError:
                    raise _SocketFailure(f"no audio for {self.timeout} s") from None
                message = _decode(raw)
                if message.get("error"):
                    detail = message.get("message") or message["error"]
                    raise ElevenLabsError(
                        f"ElevenLabs refused the stream: {detail}", status=message.get("code")
                    )
                frame = pcm.push(base64.b64decode(message.get("audio") or ""))
                if frame is not None:
                    yield frame
                if message.get("isFinal"):
                    return
        except ConnectionClosedOK:
            return  # the server ends the stream after the last audio
        except ConnectionClosed as exc:
            close = exc.rcvd
            code = close.code if close is not None else 1006
            reason = (close.reason if close is not None else "") or "no reason given"
            if code in _REFUSED_CLOSE:
                raise ElevenLabsError(
                    f"ElevenLabs closed the stream (code {code}: {reason})", status=code
                ) from exc
            raise _SocketClosed(f"WebSocket closed (code {code}: {reason})", code) from exc
        finally:
            await ws.close()

    # --- HTTP streaming -----------------------------------------------------------------------

    async def _http(self, text: str) -> AsyncIterator[AudioFrame]:
        body: dict[str, Any] = {"text": text.strip(), "model_id": self.model}
        if self.voice_settings:
            body["voice_settings"] = self.voice_settings
        if self.language:
            body["language_code"] = self.language
        url = f"{self.base_url}/v1/text-to-speech/{self.voice}/stream"
        attempt = 0
        while True:
            attempt += 1
            produced = False
            try:
                async with AsyncExitStack() as stack:
                    response = await self._open(stack, url, body)
                    async for frame in self._frames(response):
                        produced = True
                        yield frame
                return
            except ElevenLabsError as exc:
                if produced or not exc.retryable or attempt > self.max_retries:
                    raise
                delay = retry_delay(attempt, exc.retry_after)
                logger.warning("ElevenLabs: %s; retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)

    async def _open(
        self, stack: AsyncExitStack, url: str, body: Mapping[str, Any]
    ) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout):
                response = await stack.enter_async_context(
                    self._http_client().stream(
                        "POST",
                        url,
                        params={"output_format": self.output_format},
                        json=body,
                        headers={"xi-api-key": self._key},
                    )
                )
                if response.status_code != 200:
                    raise http_error(
                        response.status_code,
                        await response.aread(),
                        response.headers.get("retry-after"),
                    )
        except TimeoutError:
            raise ElevenLabsError(
                f"ElevenLabs did not answer within {self.timeout} s", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise ElevenLabsError(
                f"cannot reach ElevenLabs at {self.base_url}: {exc}", retryable=True
            ) from exc
        return response

    async def _frames(self, response: httpx.Response) -> AsyncIterator[AudioFrame]:
        chunks = response.aiter_bytes()
        pcm = PCM16Stream(self.sample_rate)
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except TimeoutError:
                raise ElevenLabsError(
                    f"ElevenLabs stopped sending audio for {self.timeout} s"
                ) from None
            except httpx.TimeoutException as exc:  # httpx's read timeout: the same stall
                raise ElevenLabsError(
                    f"ElevenLabs stopped sending audio for {self.timeout} s"
                ) from exc
            except httpx.TransportError as exc:
                detail = f"HTTP stream: {str(exc) or type(exc).__name__}"
                raise ProviderDisconnected("ElevenLabs", detail) from exc
            frame = pcm.push(chunk)
            if frame is not None:
                yield frame

    async def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None:
            spare.cancel()
            await _close_spare(spare)

    def _http_client(self) -> httpx.AsyncClient:
        """The HTTP client, opened on first use (again after `aclose`, so a part closed by
        one session still serves the next)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeouts)
        return self._client

    async def aclose(self) -> None:
        await self._drop_spare()
        if self._owns_client and self._client is not None:  # a caller's client is theirs
            client, self._client = self._client, None
            await client.aclose()


async def _close_spare(spare: asyncio.Task[ClientConnection]) -> None:
    try:
        ws = await spare
    except (asyncio.CancelledError, ElevenLabsError, _SocketFailure):
        return
    await ws.close()


def _voice_settings(**settings: float | bool | None) -> dict[str, float | bool]:
    chosen = {name: value for name, value in settings.items() if value is not None}
    if chosen:  # the API wants both of these whenever settings are sent
        chosen.setdefault("stability", 0.5)
        chosen.setdefault("similarity_boost", 0.75)
    return chosen


def _decode(raw: str | bytes) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError as exc:
        raise _SocketFailure(f"unreadable message {raw[:100]!r}") from exc
    if not isinstance(message, dict):
        raise _SocketFailure(f"unexpected message {raw[:100]!r}")
    return message
