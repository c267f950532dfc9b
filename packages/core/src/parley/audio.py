"""Streaming audio conversion: the one place where rates, channels and chunk sizes change.

`AudioResampler` keeps soxr's filter state across frames, so a stream resampled frame by frame
sounds the same as the whole signal resampled at once. `AudioChunker` re-cuts a stream into
frames of a fixed duration (what codecs, VADs and STT websockets want). `PCM16Stream` turns raw
16-bit PCM arriving in network chunks of any size into frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley._lazy import np

if TYPE_CHECKING:
    import numpy.typing as npt

from parley.frames import AudioFrame, SampleFormat


class AudioResampler:
    """Convert a stream of frames to one sample rate, channel count and sample format.

    Input frames may change rate or channel count mid-stream; the resampler restarts its
    filter when they do. Call `flush` at the end of a stream to drain the filter's delay.
    """

    def __init__(
        self,
        sample_rate: int,
        channels: int = 1,
        format: SampleFormat = "int16",
        quality: str = "HQ",
    ) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.format: SampleFormat = format
        self.quality = quality
        self._stream: Any
        self._input_rate: int
        self._timestamp: float | None
        self.reset()

    def push(self, frame: AudioFrame) -> list[AudioFrame]:
        """Convert one frame; returns zero or one output frames (soxr holds back a little)."""
        frame = frame.to_channels(self.channels)
        if self._timestamp is None:
            self._timestamp = frame.timestamp
        if frame.sample_rate == self.sample_rate:
            out = self._flush_stream()
            out.append(self._emit(frame.data))
            return [f for f in out if f.samples]
        if frame.sample_rate != self._input_rate:
            out = self._flush_stream()
            self._open(frame.sample_rate)
        else:
            out = []
        data = frame.to_float32().data
        out.append(self._emit(self._stream.resample_chunk(data)))
        return [f for f in out if f.samples]

    def flush(self) -> list[AudioFrame]:
        """Drain the filter at the end of a stream."""
        return [f for f in self._flush_stream() if f.samples]

    def samples(self, frame: AudioFrame) -> npt.NDArray[Any]:
        """``frame`` converted, as one array of shape (samples, channels): what an edge's
        output encodes. A frame already at the target rate and channel count passes without
        a filter or frame objects (the common case: a TTS at the edge's rate)."""
        if frame.sample_rate == self.sample_rate and frame.channels == self.channels:
            return (frame.to_int16() if self.format == "int16" else frame.to_float32()).data
        pieces = [f.data for f in self.push(frame)]
        if not pieces:
            dtype = np.int16 if self.format == "int16" else np.float32
            return np.zeros((0, self.channels), dtype=dtype)
        return np.concatenate(pieces) if len(pieces) > 1 else pieces[0]

    def reset(self) -> None:
        """Forget the filter's state (the stream was cut, e.g. flushed at a barge-in)."""
        self._stream = None
        self._input_rate = 0
        self._timestamp = None

    def prepare(self, input_rate: int) -> None:
        """Open the filter for ``input_rate`` ahead of the first frame (it costs ~50 µs)."""
        if input_rate != self.sample_rate and input_rate != self._input_rate:
            self._flush_stream()
            self._open(input_rate)

    def _open(self, input_rate: int) -> None:
        import soxr  # deferred: keeps `import parley` light

        self._stream = soxr.ResampleStream(
            input_rate, self.sample_rate, self.channels, dtype="float32", quality=self.quality
        )
        self._input_rate = input_rate

    def _flush_stream(self) -> list[AudioFrame]:
        if self._stream is None:
            return []
        tail = self._stream.resample_chunk(
            np.zeros((0, self.channels), dtype=np.float32), last=True
        )
        self._stream = None
        self._input_rate = 0
        return [self._emit(tail)]

    def _emit(self, data: npt.NDArray[Any]) -> AudioFrame:
        data = np.asarray(data).reshape(-1, self.channels)
        frame = AudioFrame(
            data.astype(data.dtype, copy=False), self.sample_rate, self._timestamp or 0.0
        )
        if frame.format != self.format:
            frame = frame.to_int16() if self.format == "int16" else frame.to_float32()
        self._timestamp = (self._timestamp or 0.0) + frame.duration
        return frame


def resample(frame: AudioFrame, sample_rate: int, quality: str = "HQ") -> AudioFrame:
    """Resample a whole (non-streaming) frame, keeping its channels and format."""
    if frame.sample_rate == sample_rate:
        return frame
    import soxr

    out = soxr.resample(frame.to_float32().data, frame.sample_rate, sample_rate, quality=quality)
    result = AudioFrame(
        np.asarray(out, dtype=np.float32).reshape(-1, frame.channels), sample_rate, frame.timestamp
    )
    return result.to_int16() if frame.format == "int16" else result


class AudioChunker:
    """Re-cut a stream into frames of exactly ``duration`` seconds.

    Input must already be at the chunker's rate and channel count (use `AudioResampler` first).
    `flush` returns the remainder, zero-padded to a full frame when ``pad`` is true.
    """

    def __init__(self, sample_rate: int, duration: float, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self.frame_samples = round(sample_rate * duration)
        if self.frame_samples <= 0:
            raise ValueError(f"chunk duration {duration}s is shorter than one sample")
        self._pending: list[npt.NDArray[Any]] = []
        self._pending_samples = 0
        self._timestamp: float | None = None
        self._dtype: Any = None

    def push(self, frame: AudioFrame) -> list[AudioFrame]:
        if frame.sample_rate != self.sample_rate or frame.channels != self.channels:
            raise ValueError(
                f"chunker expects {self.sample_rate} Hz / {self.channels} ch audio, got {frame!r}; "
                "resample first"
            )
        if self._dtype is not None and frame.data.dtype != self._dtype:
            raise ValueError("chunker got frames of mixed sample formats; convert first")
        self._dtype = frame.data.dtype
        if self._timestamp is None:
            self._timestamp = frame.timestamp
        self._pending.append(frame.data)
        self._pending_samples += frame.samples
        if self._pending_samples < self.frame_samples:
            return []
        buffer = (
            np.concatenate(self._pending, axis=0) if len(self._pending) > 1 else self._pending[0]
        )
        whole = (self._pending_samples // self.frame_samples) * self.frame_samples
        out = [
            self._frame(buffer[i : i + self.frame_samples])
            for i in range(0, whole, self.frame_samples)
        ]
        rest = buffer[whole:]
        self._pending = [rest] if len(rest) else []
        self._pending_samples = len(rest)
        return out

    def flush(self, pad: bool = False) -> list[AudioFrame]:
        if not self._pending_samples:
            return []
        data = np.concatenate(self._pending, axis=0)
        if pad:
            padding = np.zeros((self.frame_samples - len(data), self.channels), dtype=data.dtype)
            data = np.concatenate([data, padding], axis=0)
        self._pending = []
        self._pending_samples = 0
        return [self._frame(data)]

    def _frame(self, data: npt.NDArray[Any]) -> AudioFrame:
        frame = AudioFrame(data, self.sample_rate, self._timestamp or 0.0)
        self._timestamp = (self._timestamp or 0.0) + frame.duration
        return frame


class PCM16Stream:
    """Frames from little-endian 16-bit PCM that arrives in chunks of any length (a TTS
    response body): a sample split between two chunks waits for its other half, and the frames
    are timestamped one after another from 0."""

    def __init__(self, sample_rate: int, channels: int = 1) -> None:
        self.sample_rate = sample_rate
        self.channels = channels
        self._carry = b""
        self._timestamp = 0.0

    def push(self, chunk: bytes) -> AudioFrame | None:
        """The whole samples received so far, as one frame; None while there are none."""
        data = self._carry + chunk if self._carry else chunk
        whole = len(data) - len(data) % (2 * self.channels)
        self._carry = data[whole:]
        if not whole:
            return None
        frame = AudioFrame.from_pcm16(
            data[:whole], self.sample_rate, self.channels, self._timestamp
        )
        self._timestamp += frame.duration
        return frame
