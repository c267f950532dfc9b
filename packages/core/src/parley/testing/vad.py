"""Fake voice activity detection: loudness is speech.

Probability is ``rms / (2 * threshold)`` clipped to 0..1, so with the default hysteresis a
window at or above ``threshold`` activates (p ≥ 0.5) and one below 0.7 × threshold counts as
silence (p < 0.35). The 20 ms window matches the in-memory edge's frames, so every frame is one
decision.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from parley.vad import VAD, ProbabilityVADStream, VADCapabilities, VADOptions


class FakeVADStream(ProbabilityVADStream):
    def __init__(self, capabilities: VADCapabilities, options: VADOptions, threshold: float):
        super().__init__(capabilities, options)
        self.threshold = threshold

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        if not len(window):
            return 0.0
        rms = float(np.sqrt(np.dot(window, window) / len(window)))
        return min(1.0, rms / (2.0 * self.threshold))


class FakeVAD(VAD):
    capabilities = VADCapabilities(16000, 0.02)  # the defaults; an instance has its own

    def __init__(
        self,
        *,
        threshold: float = 0.01,
        options: VADOptions | None = None,
        sample_rate: int = 16000,
        window_duration: float = 0.02,
    ) -> None:
        if threshold <= 0:
            raise ValueError(f"threshold must be positive, got {threshold}")
        self.threshold = float(threshold)
        self.capabilities = VADCapabilities(int(sample_rate), float(window_duration))
        self.options = options or VADOptions()
        self.streams: list[FakeVADStream] = []
        self.warmed_up = False
        self.closed = False

    def stream(self) -> FakeVADStream:
        stream = FakeVADStream(self.capabilities, self.options, self.threshold)
        self.streams.append(stream)
        return stream

    async def warm_up(self) -> None:
        self.warmed_up = True

    async def aclose(self) -> None:
        self.closed = True
