"""Speech-to-text through the transcription endpoint, one whole utterance per request."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from parley.audio import resample
from parley.frames import AudioFrame
from parley.stt import BatchSTT
from parley.wav import wav_bytes

from parley_openai._client import make_client, sdk_kwargs

if TYPE_CHECKING:
    from openai import AsyncOpenAI

DEFAULT_MODEL = "gpt-transcribe"


class OpenAISTT(BatchSTT):
    """``/audio/transcriptions`` as a `BatchSTT`: it transcribes whole utterances.

    Core wraps it with VAD segmentation (give the pipeline a ``vad=``), so the engine still
    sees a streaming STT: each utterance the VAD cuts is sent as a 16 kHz WAV file.
    ``timeout`` bounds one utterance, retries included; ``prompt`` and ``language`` guide the
    model; extra keyword arguments go with every request.
    """

    sample_rate = 16000
    languages = ("en",)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        language: str | None = None,
        prompt: str | None = None,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        client: AsyncOpenAI | None = None,
        **options: Any,
    ) -> None:
        self.model = model
        self.language = language
        self.prompt = prompt
        self.timeout = timeout
        self.options = options
        if language:
            self.languages = (language,)
        self._client = client or make_client(
            api_key=api_key,
            base_url=base_url,
            part="openai.STT",
            timeout=timeout,
            max_retries=max_retries,
            organization=organization,
        )

    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        frame = resample(audio.to_mono(), self.sample_rate).to_int16()
        request: dict[str, Any] = dict(self.options)
        if language or self.language:
            request["language"] = language or self.language
        if self.prompt:
            request["prompt"] = self.prompt
        scope = asyncio.timeout(self.timeout)
        try:
            async with scope:
                create = self._client.audio.transcriptions.create
                result = await create(
                    model=self.model,
                    file=("utterance.wav", wav_bytes(frame), "audio/wav"),
                    response_format="json",
                    **sdk_kwargs(create, request),
                )
        except TimeoutError as exc:
            if scope.expired():
                raise TimeoutError(
                    f"OpenAI transcription ({self.model}) took longer than {self.timeout:g} s"
                ) from exc
            raise
        return str(result.text).strip()

    async def aclose(self) -> None:
        await self._client.close()
