"""What a fake microphone plays in the browser tests: a question spoken by Piper, as a WAV.

Cross-package tests import it as ``from spoken_audio import spoken_question_wav`` (this folder
is on ``sys.path``, see ``conftest.py``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from parley.audio import resample
from parley.frames import AudioFrame, concat_audio
from parley.wav import write_wav
from parley_piper.tts import PiperTTS


async def spoken_question(text: str, tts: PiperTTS | None = None) -> AudioFrame:
    """Piper says ``text``: 48 kHz mono int16 (``tts``: reuse a loaded voice)."""
    voice = tts or PiperTTS()
    speech = resample(concat_audio([f async for f in voice.synthesize(text)]), 48000).to_int16()
    if tts is None:
        await voice.aclose()
    return speech


def speech_bounds(audio: AudioFrame, below_peak_db: float = 30.0) -> tuple[float, float]:
    """Seconds from the clip's start to the start of its first and the end of its last 10 ms
    block within ``below_peak_db`` of the loudest block: where the speech is."""
    samples = audio.to_float32().data[:, 0]
    block = audio.sample_rate // 100
    blocks = samples[: len(samples) // block * block].reshape(-1, block)
    rms = np.sqrt(np.mean(blocks * blocks, axis=1))
    loud = np.flatnonzero(rms > rms.max() * 10 ** (-below_peak_db / 20))
    if not len(loud):
        raise ValueError("the clip has no speech above the noise floor")
    return float(loud[0] * block / audio.sample_rate), float(
        (loud[-1] + 1) * block / audio.sample_rate
    )


async def spoken_question_wav(
    path: Path, text: str, *, lead_in: float, trailing: float
) -> AudioFrame:
    """Piper says ``text``: a 48 kHz mono WAV with ``lead_in`` s of silence before it and
    ``trailing`` s after (Chromium loops the file: the silence keeps the question from
    coming back too soon). Returns the speech alone, without the silence."""
    speech = await spoken_question(text)
    samples = np.concatenate(
        [
            np.zeros(round(lead_in * 48000), np.int16),
            speech.to_int16().data[:, 0],
            np.zeros(round(trailing * 48000), np.int16),
        ]
    )
    write_wav(path, AudioFrame(samples, 48000))
    return speech
