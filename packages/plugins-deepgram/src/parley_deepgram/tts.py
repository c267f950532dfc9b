"""Deepgram Aura text-to-speech: ``POST /v1/speak``, raw linear16 streamed back over HTTP.

HTTP rather than the speak WebSocket: the engine synthesizes one sentence at a time, so each
sentence is one request whose body streams as it is generated; there is no socket to keep
alive between sentences, and a failed request is simply retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import httpx
from parley.audio import PCM16Stream
from parley.errors import ProviderDisconnected
from parley.frames import AudioFrame
from parley.providers import find_api_key, retry_delay, with_scheme
from parley.tts import TTS, TTSCapabilities

from parley_deepgram.errors import DeepgramError, http_error

logger = logging.getLogger("parley.deepgram")

DEFAULT_URL = "https://api.deepgram.com"


class DeepgramTTS(TTS):
    """Speak with a Deepgram Aura voice (``model``, e.g. ``"aura-2-thalia-en"``).

    ``timeout`` bounds the wait for the response and for every later read; ``max_retries``
    retries a refused or failed request (429, 5xx, connection errors) before any audio. A
    connection that breaks once the audio streams raises `parley.ProviderDisconnected`.
    """

    capabilities = TTSCapabilities(streaming=True, sample_rate=24000)  # per instance: sample_rate

    def __init__(
        self,
        model: str = "aura-2-thalia-en",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        sample_rate: int = 24000,
        timeout: float = 10.0,
        connect_timeout: float = 5.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._key = find_api_key(
            api_key, "DEEPGRAM_API_KEY", part="Deepgram", signup="https://console.deepgram.com"
        )
        self.base_url = with_scheme(base_url or DEFAULT_URL, "https://", "http://")
        self.sample_rate = sample_rate
        self.timeout = timeout
        self.max_retries = max_retries
        self.capabilities = TTSCapabilities(streaming=True, sample_rate=sample_rate)
        self._owns_client = http_client is None
        self._client = http_client
        self._timeouts = httpx.Timeout(timeout, connect=connect_timeout)

    def __repr__(self) -> str:
        return f"DeepgramTTS({self.model!r})"

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if not text.strip():
            return
        attempt = 0
        while True:
            attempt += 1
            produced = False
            try:
                async with AsyncExitStack() as stack:
                    response = await self._open(stack, text)
                    async for frame in self._frames(response):
                        produced = True
                        yield frame
                return
            except DeepgramError as exc:
                # Never retried once audio went out: the listener would hear it twice.
                if produced or not exc.retryable or attempt > self.max_retries:
                    raise
                delay = retry_delay(attempt, exc.retry_after)
                logger.warning("Deepgram TTS: %s; retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay)

    async def _open(self, stack: AsyncExitStack, text: str) -> httpx.Response:
        params: dict[str, str | int] = {
            "model": self.model,
            "encoding": "linear16",
            "sample_rate": self.sample_rate,
            "container": "none",
        }
        try:
            async with asyncio.timeout(self.timeout):
                response = await stack.enter_async_context(
                    self._http_client().stream(
                        "POST",
                        f"{self.base_url}/v1/speak",
                        params=params,
                        json={"text": text},
                        headers={"Authorization": f"Token {self._key}"},
                    )
                )
                if response.status_code != 200:
                    raise http_error(
                        response.status_code,
                        await response.aread(),
                        retry_after=response.headers.get("retry-after"),
                    )
        except TimeoutError:
            raise DeepgramError(
                f"Deepgram TTS did not answer within {self.timeout} s", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise DeepgramError(
                f"cannot reach Deepgram at {self.base_url}: {exc}", retryable=True
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
                raise DeepgramError(
                    f"Deepgram TTS stopped sending audio for {self.timeout} s"
                ) from None
            except httpx.TimeoutException as exc:  # httpx's read timeout: the same stall
                raise DeepgramError(
                    f"Deepgram TTS stopped sending audio for {self.timeout} s"
                ) from exc
            except httpx.TransportError as exc:
                raise ProviderDisconnected("Deepgram TTS", exc) from exc
            frame = pcm.push(chunk)
            if frame is not None:
                yield frame

    def _http_client(self) -> httpx.AsyncClient:
        """The HTTP client, opened on first use (again after `aclose`, so a part closed by
        one session still serves the next)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeouts)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:  # a caller's client is theirs
            client, self._client = self._client, None
            await client.aclose()
