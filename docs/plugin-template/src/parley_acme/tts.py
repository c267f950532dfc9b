"""The ``acme`` TTS: the TTS contract (`parley.tts.TTS`) with a tone generator for a provider.

What the contract asks of a TTS, and where this file does it:

- ``capabilities`` on the class: the engine reads the sample rate from it to set up playout.
- ``synthesize(text)`` is an async iterator of `AudioFrame`s (int16 or float32, shaped
  ``(samples, channels)``) at ``capabilities.sample_rate``; the engine feeds it one sentence
  at a time, so yield the first audio as soon as it exists.
- Cancellation: on barge-in the engine stops iterating (the generator is closed or its task
  cancelled). Keep no work running past that: close sockets and streams in ``finally``.
- Errors: a provider refusal or failure is a `parley.ProviderError` (``retryable`` when
  trying later may help); a connection that breaks mid-stream is `ProviderDisconnected`.
  The engine bounds every gap between frames (`parley.ProviderTimeouts`), so a stall
  becomes an error event and the session goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import numpy as np
from parley import ProviderError
from parley.frames import AudioFrame
from parley.tts import TTS, TTSCapabilities

FRAME_SECONDS = 0.02


class AcmeError(ProviderError):
    """What Acme refused or failed; `ProviderError` gives it ``status`` and ``retryable``."""

    provider_name = "Acme"


class AcmeTTS(TTS):
    """One tone per word at ``pitch`` Hz."""

    capabilities = TTSCapabilities(streaming=True, sample_rate=16000, channels=1)

    def __init__(self, pitch: float = 440.0, word_seconds: float = 0.1) -> None:
        if pitch <= 0:
            raise ValueError(f"pitch must be positive, got {pitch}")
        self.pitch = float(pitch)
        self.word_seconds = float(word_seconds)

    async def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        if "\x00" in text:  # what a provider's refusal looks like to the engine
            raise AcmeError("Acme refused the text: it holds a NUL character", status=400)
        rate = self.capabilities.sample_rate
        step = round(FRAME_SECONDS * rate)
        t = np.arange(round(self.word_seconds * rate)) / rate
        tone = (0.2 * 32767 * np.sin(2 * np.pi * self.pitch * t)).astype(np.int16)
        clock = 0.0
        for _word in text.split():
            for start in range(0, len(tone), step):  # stream in 20 ms frames
                frame = AudioFrame(tone[start : start + step], rate, timestamp=clock)
                clock += frame.duration
                yield frame
                await asyncio.sleep(0)  # a real provider awaits its socket here
