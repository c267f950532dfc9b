"""Deterministic test audio: a steady tone that energy detectors hear as speech, and silence.

The tone comes from a cached two-second table. With a whole number of hertz, one second holds a
whole number of cycles, so any slice starting at ``offset % sample_rate`` continues the phase:
frames are views into the table and cost no synthesis, which keeps the fakes cheap in benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

from parley.frames import AudioFrame

FRAME_DURATION = 0.02  # 20 ms, what transports and codecs exchange
SPEECH_FREQUENCY = 200  # Hz
SPEECH_AMPLITUDE = 0.3  # full-scale peak; RMS ≈ 0.21, far above the fakes' 0.01 threshold


def level(frame: AudioFrame) -> float:
    """RMS level in full-scale units, like `AudioFrame.rms` but cheaper: the fakes measure
    every frame of every session in the benchmarks."""
    data = frame.data.ravel()
    if not data.size:
        return 0.0
    samples = data.astype(np.float32)
    scale = 32768.0 if data.dtype == np.int16 else 1.0
    return math.sqrt(float(np.dot(samples, samples)) / data.size) / scale


@lru_cache(maxsize=32)
def _tone_table(sample_rate: int, frequency: int, amplitude: float) -> npt.NDArray[Any]:
    t = np.arange(2 * sample_rate, dtype=np.float64) / sample_rate
    wave = amplitude * np.sin(2 * np.pi * frequency * t)
    table = np.rint(wave * 32767).astype(np.int16).reshape(-1, 1)
    table.flags.writeable = False  # shared by every frame cut from it
    return table


@lru_cache(maxsize=32)
def _silence_table(sample_rate: int) -> npt.NDArray[Any]:
    table = np.zeros((sample_rate, 1), dtype=np.int16)
    table.flags.writeable = False
    return table


def _check(seconds: float, frame_duration: float) -> None:
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {seconds}")
    if not 0 < frame_duration <= 1.0:
        raise ValueError(f"frame_duration must be in (0, 1] seconds, got {frame_duration}")


def tone_frames(
    seconds: float,
    sample_rate: int,
    *,
    frequency: int = SPEECH_FREQUENCY,
    amplitude: float = SPEECH_AMPLITUDE,
    frame_duration: float = FRAME_DURATION,
    start: float = 0.0,
) -> Iterator[AudioFrame]:
    """Mono int16 sine frames of ``frame_duration`` (the last one may be shorter).

    ``start`` is the timestamp of the first frame; the phase continues from it.
    """
    _check(seconds, frame_duration)
    table = _tone_table(sample_rate, int(frequency), float(amplitude))
    total = round(seconds * sample_rate)
    step = max(1, round(frame_duration * sample_rate))
    origin = round(start * sample_rate)
    for offset in range(0, total, step):
        size = min(step, total - offset)
        at = (origin + offset) % sample_rate
        yield AudioFrame(table[at : at + size], sample_rate, start + offset / sample_rate)


def silence_frames(
    seconds: float,
    sample_rate: int,
    *,
    frame_duration: float = FRAME_DURATION,
    start: float = 0.0,
) -> Iterator[AudioFrame]:
    """Mono int16 silent frames of ``frame_duration`` (the last one may be shorter)."""
    _check(seconds, frame_duration)
    table = _silence_table(sample_rate)
    total = round(seconds * sample_rate)
    step = max(1, round(frame_duration * sample_rate))
    for offset in range(0, total, step):
        size = min(step, total - offset)
        yield AudioFrame(table[:size], sample_rate, start + offset / sample_rate)


def tone(
    seconds: float,
    sample_rate: int = 16000,
    *,
    frequency: int = SPEECH_FREQUENCY,
    amplitude: float = SPEECH_AMPLITUDE,
) -> AudioFrame:
    """One frame of ``seconds`` of tone (a fresh, writable array)."""
    _check(seconds, FRAME_DURATION)
    t = np.arange(round(seconds * sample_rate), dtype=np.float64) / sample_rate
    wave = amplitude * np.sin(2 * np.pi * frequency * t)
    return AudioFrame(np.rint(wave * 32767).astype(np.int16), sample_rate)
