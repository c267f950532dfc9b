"""Fake text-to-speech: a steady tone whose length follows the text, in 20 ms frames.

The tone is loud enough for energy checks (RMS ≈ 0.21 at the default amplitude). Duration is
``len(text) * seconds_per_char`` or a fixed ``seconds_per_call``. Frames come as fast as the
reader takes them, or at real-time pace with ``realtime=True``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from parley.frames import AudioFrame
from parley.testing.signals import FRAME_DURATION, SPEECH_AMPLITUDE, tone_frames
from parley.tts import TTS, TTSCapabilities

TTSError = BaseException | Callable[[str], BaseException | None] | None


@dataclass(slots=True)
class TTSCall:
    """One `synthesize` call and how far it got."""

    text: str
    duration: float  # seconds of audio the text maps to
    frames_sent: int = 0
    seconds_sent: float = 0.0
    finished: bool = False
    cancelled: bool = False  # the reader stopped early


class FakeTTS(TTS):
    """Deterministic TTS.

    ``error`` is an exception (or ``text -> exception | None``) raised after
    ``error_after_frames`` frames; ``hang=True`` stops before the first frame forever.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 24000,
        seconds_per_char: float = 0.05,
        seconds_per_call: float | None = None,
        first_audio_delay: float = 0.0,
        realtime: bool = False,
        frame_duration: float = FRAME_DURATION,
        frequency: int = 220,
        amplitude: float = SPEECH_AMPLITUDE,
        error: TTSError = None,
        error_after_frames: int = 0,
        hang: bool = False,
    ) -> None:
        self.capabilities = TTSCapabilities(streaming=True, sample_rate=int(sample_rate))
        self.seconds_per_char = float(seconds_per_char)
        self.seconds_per_call = None if seconds_per_call is None else float(seconds_per_call)
        self.first_audio_delay = float(first_audio_delay)
        self.realtime = realtime
        self.frame_duration = float(frame_duration)
        self.frequency = int(frequency)
        self.amplitude = float(amplitude)
        self.error = error
        self.error_after_frames = int(error_after_frames)
        self.hang = hang
        self.calls: list[TTSCall] = []
        self.warmed_up = False
        self.closed = False

    @property
    def texts(self) -> list[str]:
        """Every text asked for, in order."""
        return [call.text for call in self.calls]

    def duration_for(self, text: str) -> float:
        if self.seconds_per_call is not None:
            return self.seconds_per_call
        return len(text) * self.seconds_per_char

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        call = TTSCall(text, self.duration_for(text))
        self.calls.append(call)
        error = self.error(text) if callable(self.error) else self.error
        return self._stream(call, error)

    async def _stream(
        self, call: TTSCall, error: BaseException | None
    ) -> AsyncIterator[AudioFrame]:
        try:
            if self.first_audio_delay > 0:
                await asyncio.sleep(self.first_audio_delay)
            if self.hang:
                await asyncio.get_running_loop().create_future()
            loop = asyncio.get_running_loop()
            start = loop.time()
            frames = tone_frames(
                call.duration,
                self.capabilities.sample_rate,
                frequency=self.frequency,
                amplitude=self.amplitude,
                frame_duration=self.frame_duration,
            )
            for frame in frames:
                if error is not None and call.frames_sent == self.error_after_frames:
                    raise error
                if self.realtime:
                    # Frame n is ready once the n frames before it could have been played.
                    delay = start + call.seconds_sent - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                call.frames_sent += 1
                call.seconds_sent += frame.duration
                yield frame
            if error is not None and call.frames_sent <= self.error_after_frames:
                raise error
            call.finished = True
        except (GeneratorExit, asyncio.CancelledError):
            call.cancelled = True
            raise

    async def warm_up(self) -> None:
        self.warmed_up = True

    async def aclose(self) -> None:
        self.closed = True
