"""Streamed text-to-speech: ``/audio/speech`` as raw 24 kHz PCM, framed as the bytes arrive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from parley.audio import PCM16Stream
from parley.frames import AudioFrame
from parley.tts import TTS, TTSCapabilities

from parley_openai._client import make_client, mid_stream, sdk_kwargs, within

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "marin"
SAMPLE_RATE = 24000  # what response_format="pcm" always is: 24 kHz, mono, 16-bit little-endian


class OpenAITTS(TTS):
    """OpenAI speech, streamed: each network chunk becomes an `AudioFrame` at once.

    ``instructions`` steers the voice (tone, pace) on models that take it; ``speed`` is
    0.25-4.0. ``timeout`` bounds the wait for the response to start (each attempt; the SDK
    retries ``max_retries`` times), ``idle_timeout`` the silence between two chunks. A
    connection that breaks once audio flows raises `parley.ProviderDisconnected`; the frames
    already yielded stand.
    """

    capabilities = TTSCapabilities(streaming=True, sample_rate=SAMPLE_RATE, channels=1)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        voice: str = DEFAULT_VOICE,
        *,
        instructions: str | None = None,
        speed: float | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        timeout: float = 15.0,
        idle_timeout: float = 15.0,
        max_retries: int = 2,
        client: AsyncOpenAI | None = None,
        **options: Any,
    ) -> None:
        self.model = model
        self.voice = voice
        self.timeout = timeout
        self.idle_timeout = idle_timeout
        self.options = dict(options)
        if instructions is not None:
            self.options["instructions"] = instructions
        if speed is not None:
            self.options["speed"] = speed
        self._client = client or make_client(
            api_key=api_key,
            base_url=base_url,
            part="openai.TTS",
            timeout=timeout,
            max_retries=max_retries,
            organization=organization,
        )

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if not text.strip():
            return
        create = self._client.audio.speech.with_streaming_response.create
        request = create(
            model=self.model,
            voice=self.voice,
            input=text,
            response_format="pcm",
            **sdk_kwargs(self._client.audio.speech.create, self.options),
        )
        async with contextlib.AsyncExitStack() as stack:
            scope = asyncio.timeout(self.timeout)
            try:
                async with scope:
                    response = await stack.enter_async_context(request)
            except TimeoutError as exc:
                if scope.expired():
                    raise TimeoutError(
                        f"OpenAI speech ({self.model}) did not start within {self.timeout:g} s"
                    ) from exc
                raise
            what = f"OpenAI speech ({self.model})"
            pcm = PCM16Stream(SAMPLE_RATE)
            with mid_stream(what):
                async for chunk in within(response.iter_bytes(), self.idle_timeout, what):
                    frame = pcm.push(chunk)
                    if frame is not None:
                        yield frame

    async def aclose(self) -> None:
        await self._client.close()
