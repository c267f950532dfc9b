"""Streaming resampling and re-chunking."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from parley.audio import AudioChunker, AudioResampler, resample
from parley.frames import AudioFrame, concat_audio


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def split(data: np.ndarray, rate: int, sizes: list[int], t0: float = 0.0) -> list[AudioFrame]:
    """Cut ``data`` into frames of the given sizes (cycled), with running timestamps."""
    frames, start, i = [], 0, 0
    while start < len(data):
        size = sizes[i % len(sizes)]
        frames.append(AudioFrame(data[start : start + size], rate, timestamp=t0 + start / rate))
        start += size
        i += 1
    return frames


def stream(resampler: AudioResampler, frames: list[AudioFrame]) -> list[AudioFrame]:
    out = []
    for frame in frames:
        out.extend(resampler.push(frame))
    out.extend(resampler.flush())
    return out


def joined(frames: list[AudioFrame]) -> np.ndarray:
    return concat_audio(frames).data[:, 0]


def dominant_frequency(data: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    return float(np.fft.rfftfreq(len(data), 1 / rate)[np.argmax(spectrum)])


def rms(data: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(data.astype(np.float64)))))


# --- resampler ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rate_in", "rate_out"),
    [(16000, 48000), (48000, 16000), (24000, 16000), (44100, 16000), (8000, 24000)],
)
def test_streaming_matches_one_shot(rate_in: int, rate_out: int) -> None:
    data = sine(440, rate_in, 0.5) + sine(1800, rate_in, 0.5, amplitude=0.2)
    sizes = [rate_in // 50, 7, rate_in // 100 + 13, 1]  # 20 ms, tiny, odd, single sample
    out = stream(AudioResampler(rate_out, format="float32"), split(data, rate_in, sizes))
    assert all(f.sample_rate == rate_out and f.format == "float32" for f in out)
    streamed = joined(out)
    whole = resample(AudioFrame(data, rate_in), rate_out).data[:, 0]
    assert len(streamed) == round(len(data) * rate_out / rate_in)
    assert len(streamed) == len(whole)
    assert np.max(np.abs(streamed - whole)) < 1e-3


def test_streaming_int16_output_has_the_right_length_and_format() -> None:
    data = AudioFrame(sine(300, 16000, 1.0), 16000).to_int16().data[:, 0]
    out = stream(AudioResampler(24000), split(data, 16000, [320]))
    assert all(f.format == "int16" for f in out)
    assert sum(f.samples for f in out) == 24000


@pytest.mark.parametrize("path", [(16000, 48000, 16000), (16000, 24000, 48000, 16000)])
def test_round_trips_keep_frequency_and_energy(path: tuple[int, ...]) -> None:
    freq, first = 1000.0, path[0]
    data = sine(freq, first, 1.0)
    frames = split(data, first, [first // 50])
    for rate in path[1:]:
        frames = stream(AudioResampler(rate, format="float32"), frames)
    back = joined(frames)
    assert len(back) == len(data)
    middle = slice(len(back) // 4, 3 * len(back) // 4)  # away from the filter's edges
    assert dominant_frequency(back[middle], first) == pytest.approx(freq, abs=2)
    assert rms(back[middle]) == pytest.approx(rms(data[middle]), rel=0.01)
    assert np.max(np.abs(back[middle] - data[middle])) < 0.01


def test_each_rate_keeps_the_tone() -> None:
    data = sine(440, 16000, 1.0)
    for rate in (8000, 24000, 44100, 48000):
        out = joined(stream(AudioResampler(rate, format="float32"), split(data, 16000, [320])))
        assert dominant_frequency(out, rate) == pytest.approx(440, abs=2)


def test_rate_change_mid_stream() -> None:
    first = sine(500, 16000, 0.25)
    second = sine(1500, 48000, 0.25)
    resampler = AudioResampler(24000, format="float32")
    out = stream(resampler, [*split(first, 16000, [320]), *split(second, 48000, [960], t0=0.25)])
    data = joined(out)
    assert len(data) == 6000 + 6000
    assert dominant_frequency(data[1000:5000], 24000) == pytest.approx(500, abs=3)
    assert dominant_frequency(data[7000:11000], 24000) == pytest.approx(1500, abs=3)


def test_frames_at_the_target_rate_pass_through_in_order() -> None:
    resampler = AudioResampler(16000)
    head = resampler.push(AudioFrame(sine(440, 48000, 0.1), 48000))
    passthrough = AudioFrame(np.arange(320, dtype=np.int16), 16000)
    out = head + resampler.push(passthrough)
    # The pending resampled audio is drained before the pass-through frame.
    assert sum(f.samples for f in out) == 1600 + 320
    assert np.array_equal(out[-1].data, passthrough.data)
    assert resampler.flush() == []


def test_channels_and_format_conversion() -> None:
    stereo_in = AudioFrame(np.stack([sine(440, 16000, 0.1), sine(440, 16000, 0.1)], axis=1), 16000)
    mono = stream(AudioResampler(16000, channels=1), [stereo_in])
    assert [(f.channels, f.format) for f in mono] == [(1, "int16")]
    stereo = stream(AudioResampler(48000, channels=2, format="float32"), [stereo_in.to_mono()])
    assert {(f.channels, f.format) for f in stereo} == {(2, "float32")}
    assert sum(f.samples for f in stereo) == 4800


def test_output_timestamps_are_continuous() -> None:
    frames = split(sine(440, 16000, 0.2), 16000, [320], t0=10.0)
    out = stream(AudioResampler(48000), frames)
    expected = 10.0
    for frame in out:
        assert frame.timestamp == pytest.approx(expected)
        expected += frame.duration


def test_flush_without_input_is_empty() -> None:
    assert AudioResampler(16000).flush() == []


def test_one_shot_resample_keeps_format_and_identity() -> None:
    frame = AudioFrame(np.zeros(160, dtype=np.int16), 16000)
    assert resample(frame, 16000) is frame
    up = resample(frame, 48000)
    assert (up.samples, up.format, up.sample_rate) == (480, "int16", 48000)


# --- chunker ------------------------------------------------------------------------------------


def ramp(n: int, start: int = 0) -> AudioFrame:
    return AudioFrame(np.arange(start, start + n, dtype=np.int16), 16000)


def test_chunker_exact_multiple() -> None:
    chunker = AudioChunker(16000, 0.02)
    assert chunker.frame_samples == 320
    out = chunker.push(ramp(640))
    assert [f.samples for f in out] == [320, 320]
    assert out[1].data[0, 0] == 320
    assert chunker.flush() == []
    assert chunker.flush(pad=True) == []


def test_chunker_remainder_carries_over() -> None:
    chunker = AudioChunker(16000, 0.02)
    first = chunker.push(ramp(500))
    assert [f.samples for f in first] == [320]
    second = chunker.push(ramp(200, start=500))
    assert [f.samples for f in second] == [320]
    assert second[0].data[:, 0].tolist() == list(range(320, 640))
    rest = chunker.flush()
    assert [f.samples for f in rest] == [60]
    assert rest[0].data[:, 0].tolist() == list(range(640, 700))


def test_chunker_flush_with_pad_fills_with_silence() -> None:
    chunker = AudioChunker(16000, 0.02)
    chunker.push(ramp(100, start=1))
    (padded,) = chunker.flush(pad=True)
    assert padded.samples == 320
    assert padded.data[:100, 0].tolist() == list(range(1, 101))
    assert not padded.data[100:].any()
    assert padded.format == "int16"
    assert chunker.flush(pad=True) == []


def test_chunker_tiny_frames() -> None:
    chunker = AudioChunker(16000, 0.01)
    out = []
    for i in range(401):
        got = chunker.push(ramp(1, start=i))
        if i in (159, 319):
            assert len(got) == 1
        else:
            assert got == []
        out.extend(got)
    assert [f.data[:, 0].tolist() for f in out] == [list(range(160)), list(range(160, 320))]
    assert [f.samples for f in chunker.flush()] == [81]


def test_chunker_one_big_frame() -> None:
    chunker = AudioChunker(16000, 0.02)
    out = chunker.push(ramp(16000 + 5))
    assert len(out) == 50
    assert all(f.samples == 320 for f in out)
    assert chunker.flush()[0].samples == 5


def test_chunker_timestamps() -> None:
    chunker = AudioChunker(16000, 0.02)
    frame = AudioFrame(np.zeros(1000, dtype=np.int16), 16000, timestamp=5.0)
    out = chunker.push(frame) + chunker.flush()
    assert [f.timestamp for f in out] == pytest.approx([5.0, 5.02, 5.04, 5.06])


def test_chunker_float_and_stereo() -> None:
    chunker = AudioChunker(48000, 0.01, channels=2)
    out = chunker.push(AudioFrame(np.ones((1000, 2), dtype=np.float32), 48000))
    assert [(f.samples, f.channels, f.format) for f in out] == [(480, 2, "float32")] * 2


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (AudioFrame(np.zeros(320, dtype=np.int16), 8000), "expects 16000 Hz / 1 ch"),
        (AudioFrame(np.zeros((320, 2), dtype=np.int16), 16000), "expects 16000 Hz / 1 ch"),
    ],
)
def test_chunker_rejects_wrong_rate_or_channels(frame: AudioFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AudioChunker(16000, 0.02).push(frame)


def test_chunker_rejects_mixed_formats() -> None:
    chunker = AudioChunker(16000, 0.02)
    chunker.push(ramp(10))
    with pytest.raises(ValueError, match="mixed sample formats"):
        chunker.push(AudioFrame(np.zeros(10, dtype=np.float32), 16000))


def test_chunker_duration_shorter_than_a_sample() -> None:
    with pytest.raises(ValueError, match="shorter than one sample"):
        AudioChunker(16000, 0.00001)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 700), min_size=1, max_size=20), st.booleans())
def test_chunker_never_loses_or_reorders_samples(sizes: list[int], pad: bool) -> None:
    chunker = AudioChunker(16000, 0.02)
    total = sum(sizes)
    data = (np.arange(total) % 30000).astype(np.int16)
    out: list[AudioFrame] = []
    start = 0
    for size in sizes:
        out.extend(chunker.push(AudioFrame(data[start : start + size], 16000)))
        start += size
    tail = chunker.flush(pad=pad)
    assert all(f.samples == 320 for f in out)
    assert len(tail) <= 1
    if tail and pad:
        assert tail[0].samples == 320
    result = np.concatenate([f.data[:, 0] for f in out + tail]) if out or tail else data[:0]
    assert np.array_equal(result[:total], data)
    assert not result[total:].any()


def test_samples_pass_a_frame_at_the_target_format_through_and_resample_the_others() -> None:
    resampler = AudioResampler(16000, 1, "int16")
    same = AudioFrame(np.arange(320, dtype=np.int16).reshape(-1, 1), 16000)
    assert np.array_equal(resampler.samples(same), same.data)
    tone = AudioFrame(np.full((960, 1), 0.25, dtype=np.float32), 48000)
    converted = [resampler.samples(tone) for _ in range(5)]
    assert all(part.dtype == np.int16 and part.shape[1] == 1 for part in converted)
    # soxr holds a little back at first; over a few frames a third of the samples come out
    assert 1400 <= sum(len(part) for part in converted) <= 1600


def test_reset_forgets_the_filter_so_a_cut_stream_starts_afresh() -> None:
    tone = AudioFrame(np.full((960, 1), 0.25, dtype=np.float32), 48000)
    fresh = AudioResampler(16000, 1, "int16").samples(tone)
    reused = AudioResampler(16000, 1, "int16")
    for _ in range(3):
        reused.samples(tone)
    reused.reset()
    assert np.array_equal(reused.samples(tone), fresh)
