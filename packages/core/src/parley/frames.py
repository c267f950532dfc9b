"""Media frames: the only currency parts exchange.

An `AudioFrame` holds PCM samples as a numpy array shaped ``(samples, channels)``, either
``int16`` or ``float32`` (range -1..1). Frames are immutable by convention: conversions return
new frames and never modify the source array.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from parley._lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

SampleFormat = Literal["int16", "float32"]

_INT16_SCALE = 32768.0


@dataclass(frozen=True, slots=True)
class AudioFrame:
    """A block of PCM audio.

    ``data`` is shaped ``(samples, channels)`` and typed ``int16`` or ``float32``.
    ``timestamp`` is seconds on the producer's clock (monotonic within one stream).
    """

    data: npt.NDArray[Any]
    sample_rate: int
    timestamp: float = 0.0
    # Computed once: the playout asks each frame's duration several times (~0.1 µs a call).
    _duration: float = field(init=False, repr=False, compare=False, default=0.0)

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, np.ndarray):
            raise TypeError(f"audio data must be a numpy array, got {type(data).__name__}")
        if data.ndim == 1:
            object.__setattr__(self, "data", data.reshape(-1, 1))
        elif data.ndim != 2:
            raise ValueError(
                f"audio data must be 1-D or (samples, channels), got shape {data.shape}"
            )
        if self.data.dtype not in (np.int16, np.float32):
            raise TypeError(f"audio data must be int16 or float32, got {self.data.dtype}")
        if self.data.shape[1] < 1:
            raise ValueError(f"audio data needs at least one channel, got shape {self.data.shape}")
        if self.sample_rate <= 0:
            raise ValueError(f"sample_rate must be positive, got {self.sample_rate}")
        object.__setattr__(self, "_duration", self.data.shape[0] / self.sample_rate)

    # --- construction -------------------------------------------------------------------------

    @classmethod
    def from_pcm16(
        cls, pcm: bytes, sample_rate: int, channels: int = 1, timestamp: float = 0.0
    ) -> AudioFrame:
        """Build a frame from interleaved little-endian 16-bit PCM bytes."""
        if channels < 1:
            raise ValueError(f"channels must be at least 1, got {channels}")
        if len(pcm) % (2 * channels):
            raise ValueError(
                f"{len(pcm)} bytes is not a whole number of {channels}-channel 16-bit samples"
            )
        data = np.frombuffer(pcm, dtype="<i2").astype(np.int16, copy=False).reshape(-1, channels)
        return cls(data, sample_rate, timestamp)

    @classmethod
    def silence(
        cls, duration: float, sample_rate: int, channels: int = 1, timestamp: float = 0.0
    ) -> AudioFrame:
        samples = round(duration * sample_rate)
        return cls(np.zeros((samples, channels), dtype=np.int16), sample_rate, timestamp)

    # --- properties ---------------------------------------------------------------------------

    @property
    def channels(self) -> int:
        return int(self.data.shape[1])

    @property
    def samples(self) -> int:
        """Samples per channel."""
        return int(self.data.shape[0])

    @property
    def duration(self) -> float:
        return self._duration

    @property
    def format(self) -> SampleFormat:
        return "int16" if self.data.dtype == np.int16 else "float32"

    # --- conversions --------------------------------------------------------------------------

    def to_int16(self) -> AudioFrame:
        if self.data.dtype == np.int16:
            return self
        # The same scale both ways (x 32768, clipped to int16), so int16 -> float32 -> int16
        # is lossless; scaling by 32767 one way and 32768 the other lost a step near full scale.
        scaled = np.rint(self.data * _INT16_SCALE)
        data = np.clip(scaled, -_INT16_SCALE, _INT16_SCALE - 1).astype(np.int16)
        return AudioFrame(data, self.sample_rate, self.timestamp)

    def to_float32(self) -> AudioFrame:
        if self.data.dtype == np.float32:
            return self
        data = self.data.astype(np.float32) / _INT16_SCALE
        return AudioFrame(data, self.sample_rate, self.timestamp)

    def to_mono(self) -> AudioFrame:
        """Average the channels into one (a mono frame is returned as is)."""
        if self.channels == 1:
            return self
        if self.data.dtype == np.int16:
            mixed = self.data.astype(np.int32).sum(axis=1) // self.channels
            data = mixed.astype(np.int16).reshape(-1, 1)
        else:
            data = self.data.mean(axis=1, dtype=np.float32).reshape(-1, 1)
        return AudioFrame(data, self.sample_rate, self.timestamp)

    def to_channels(self, channels: int) -> AudioFrame:
        """Convert to ``channels`` channels: down-mix to mono, or duplicate a mono signal."""
        if channels == self.channels:
            return self
        mono = self.to_mono()
        if channels == 1:
            return mono
        return AudioFrame(np.repeat(mono.data, channels, axis=1), self.sample_rate, self.timestamp)

    def to_pcm16(self) -> bytes:
        """Interleaved little-endian 16-bit PCM."""
        return self.to_int16().data.astype("<i2", copy=False).tobytes()

    # --- measurements -------------------------------------------------------------------------

    def rms(self) -> float:
        """Root-mean-square level in full-scale units (0..1)."""
        if self.samples == 0:
            return 0.0
        # dot on a flat float32 view: ~6x cheaper than mean(square(...)) per 20 ms frame
        flat = self.data.reshape(-1).astype(np.float32, copy=False)
        scale = _INT16_SCALE if self.data.dtype == np.int16 else 1.0
        return float(np.sqrt(np.dot(flat, flat) / flat.size)) / scale

    def __repr__(self) -> str:
        return (
            f"AudioFrame({self.samples} samples, {self.sample_rate} Hz, {self.channels} ch, "
            f"{self.format}, t={self.timestamp:.3f})"
        )


def concat_audio(frames: list[AudioFrame]) -> AudioFrame:
    """Join frames of the same rate, channel count and format into one."""
    if not frames:
        raise ValueError("concat_audio needs at least one frame")
    first = frames[0]
    for frame in frames[1:]:
        if (frame.sample_rate, frame.channels, frame.format) != (
            first.sample_rate,
            first.channels,
            first.format,
        ):
            raise ValueError(
                "cannot join frames of different rate, channels or format: "
                f"{first!r} and {frame!r}; resample them first"
            )
    return AudioFrame(
        np.concatenate([f.data for f in frames], axis=0), first.sample_rate, first.timestamp
    )


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One video image.

    ``data`` is an ``(height, width, 3)`` uint8 RGB array unless ``format`` says otherwise;
    transports that decode to another layout (e.g. ``"yuv420p"``) set ``format`` accordingly.
    """

    data: npt.NDArray[np.uint8]
    timestamp: float = 0.0
    format: str = "rgb24"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def height(self) -> int:
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        return int(self.data.shape[1])

    def __repr__(self) -> str:
        return f"VideoFrame({self.width}x{self.height}, {self.format}, t={self.timestamp:.3f})"
