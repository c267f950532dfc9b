"""Voice activity detection contract.

A VAD stream is fed every input frame, so its `push` is synchronous and must be cheap
(Silero takes ~0.1 ms per 32 ms window). `ProbabilityVADStream` turns per-window speech
probabilities into start/end events with hysteresis; a model plugin only supplies
`probability(window)`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from parley._lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

from parley.audio import AudioChunker, AudioResampler
from parley.frames import AudioFrame


@dataclass(frozen=True, slots=True)
class VADCapabilities:
    sample_rate: int = 16000
    window_duration: float = 0.032


@dataclass(frozen=True, slots=True)
class VADOptions:
    """Hysteresis: speech starts after ``min_speech`` seconds above ``activation``; it ends
    after ``min_silence`` seconds below ``deactivation``.

    ``pause_below_peak_db``: inside speech, a window this many dB quieter than the loudest one
    of the segment so far counts as a pause (`VADStream.pausing`) at once, while the model's
    probability is still high: Silero's stays above ``deactivation`` for ~0.1 s after the last
    sound, and a recognizer that starts on the pause (`VADSegmentedSTT`) can start that much
    sooner (a pause inside a sentence then costs it one wasted decode). Quiet that the model
    still calls speech after 0.25 s is soft speech, not a pause. It only moves that hint;
    speech still ends by probability. None: probability only.
    """

    activation: float = 0.5
    deactivation: float = 0.35
    min_speech: float = 0.064
    min_silence: float = 0.32
    pause_below_peak_db: float | None = 30.0


# How long a speech model's probability may stay high after the sound stops (Silero v5:
# 0.06-0.16 s on Piper speech, bench/vad_end.py); quiet that it calls speech for longer is
# soft speech.
_MODEL_TAIL = 0.25

VADEventType = Literal["speech_started", "speech_ended"]


@dataclass(frozen=True, slots=True)
class VADEvent:
    type: VADEventType
    timestamp: float  # stream time (s) at which speech started or ended
    probability: float
    speech_duration: float  # for "speech_ended": length of the speech segment


class VADStream(ABC):
    @abstractmethod
    def push(self, frame: AudioFrame) -> list[VADEvent]:
        """Feed one frame (any rate; mono or stereo); returns the events it caused."""

    @property
    @abstractmethod
    def speaking(self) -> bool:
        """Whether the stream is inside a speech segment."""

    def reset(self) -> None:
        """Forget model state (e.g. between utterances of different speakers)."""

    @property
    def pausing(self) -> bool:
        """Inside speech, but the latest audio was quiet: speech may be ending (the stream
        waits ``min_silence`` before it says so). Lets a recognizer start early."""
        return False


class VAD(ABC):
    capabilities: VADCapabilities = VADCapabilities()
    options: VADOptions = VADOptions()

    @abstractmethod
    def stream(self) -> VADStream:
        """Open a detection stream for one speaker."""

    async def warm_up(self) -> None:
        """Load the model ahead of use (optional)."""

    async def aclose(self) -> None:
        """Release the model."""


class ProbabilityVADStream(VADStream):
    """Hysteresis over per-window probabilities. Subclasses implement `probability`."""

    def __init__(self, capabilities: VADCapabilities, options: VADOptions) -> None:
        self.options = options
        self._rate = capabilities.sample_rate
        self._window = capabilities.window_duration
        self._resampler = AudioResampler(self._rate, 1, "float32")
        self._chunker = AudioChunker(self._rate, self._window)
        self._speaking = False
        self._run = 0.0  # seconds the current candidate state has held
        self._quiet = False  # the latest window was a pause by its energy
        self._quiet_voiced = 0.0  # seconds of such quiet the model still called speech
        self._peak_power = 0.0  # the segment's loudest window (mean square)
        self._segment_start = 0.0
        self._clock = 0.0
        self.last_probability = 0.0

    @abstractmethod
    def probability(self, window: npt.NDArray[np.float32]) -> float:
        """Speech probability of one mono float32 window of `window_duration` seconds."""

    @property
    def speaking(self) -> bool:
        return self._speaking

    @property
    def pausing(self) -> bool:
        return self._speaking and (self._run > 0 or self._quiet)

    def push(self, frame: AudioFrame) -> list[VADEvent]:
        events: list[VADEvent] = []
        if frame.sample_rate == self._rate and frame.channels == 1:
            frames = [frame.to_float32()]
        else:
            frames = self._resampler.push(frame)
        for piece in frames:
            for window in self._chunker.push(piece):
                event = self._step(window.data[:, 0])
                if event is not None:
                    events.append(event)
        return events

    def _step(self, window: npt.NDArray[Any]) -> VADEvent | None:
        p = self.probability(window)
        self.last_probability = p
        start_of_window = self._clock
        self._clock += self._window
        opts = self.options
        if opts.pause_below_peak_db is not None:
            self._track_energy(window, p, opts.pause_below_peak_db)
        if not self._speaking:
            if p >= opts.activation:
                if self._run == 0.0:
                    self._segment_start = start_of_window
                self._run += self._window
                if self._run >= opts.min_speech - 1e-9:
                    self._speaking = True
                    self._run = 0.0
                    return VADEvent("speech_started", self._segment_start, p, 0.0)
            else:
                self._run = 0.0
        elif p < opts.deactivation:
            self._run += self._window
            if self._run >= opts.min_silence - 1e-9:
                self._speaking = False
                end = self._clock - self._run
                self._run = 0.0
                return VADEvent("speech_ended", end, p, end - self._segment_start)
        else:
            self._run = 0.0
        return None

    def _track_energy(self, window: npt.NDArray[Any], p: float, below_peak_db: float) -> None:
        power = float(np.dot(window, window)) / len(window)
        if not self._speaking:
            # The peak starts with the speech that starts a segment (onset windows included).
            self._peak_power = power if self._run == 0.0 else max(self._peak_power, power)
            self._quiet = False
            return
        self._peak_power = max(self._peak_power, power)
        quiet = power < self._peak_power * 10 ** (-below_peak_db / 10)
        voiced = quiet and p >= self.options.deactivation
        self._quiet_voiced = self._quiet_voiced + self._window if voiced else 0.0
        # Quiet that the model calls speech for longer than its tail is soft speech, not a
        # pause: the pause is then left to the probability (a guess made on it is dropped).
        self._quiet = quiet and self._quiet_voiced <= _MODEL_TAIL

    def reset(self) -> None:
        self._speaking = False
        self._quiet = False
        self._quiet_voiced = 0.0
        self._run = 0.0
