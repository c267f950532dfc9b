"""AudioFrame and VideoFrame: construction, conversions, measurements, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from parley.frames import AudioFrame, VideoFrame, concat_audio


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


# --- construction -------------------------------------------------------------------------------


def test_one_dimensional_data_becomes_mono_column() -> None:
    frame = AudioFrame(np.zeros(160, dtype=np.int16), 16000, timestamp=1.5)
    assert frame.data.shape == (160, 1)
    assert (frame.samples, frame.channels, frame.sample_rate) == (160, 1, 16000)
    assert frame.duration == pytest.approx(0.01)
    assert frame.format == "int16"
    assert frame.timestamp == 1.5


def test_stereo_shape() -> None:
    frame = AudioFrame(np.zeros((480, 2), dtype=np.float32), 48000)
    assert (frame.samples, frame.channels, frame.format) == (480, 2, "float32")


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (np.zeros((2, 2, 2), dtype=np.int16), ValueError, "1-D or \\(samples, channels\\)"),
        (np.zeros((10, 0), dtype=np.int16), ValueError, "at least one channel"),
        (np.zeros(10, dtype=np.float64), TypeError, "int16 or float32, got float64"),
        (np.zeros(10, dtype=np.int32), TypeError, "int16 or float32, got int32"),
        (np.zeros(10, dtype=np.uint8), TypeError, "int16 or float32"),
        ([0, 1, 2], TypeError, "must be a numpy array, got list"),
    ],
)
def test_bad_shapes_and_dtypes(data: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        AudioFrame(data, 16000)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [0, -16000])
def test_bad_sample_rate(rate: int) -> None:
    with pytest.raises(ValueError, match="sample_rate must be positive"):
        AudioFrame(np.zeros(10, dtype=np.int16), rate)


def test_silence() -> None:
    frame = AudioFrame.silence(0.02, 24000, channels=2, timestamp=3.0)
    assert (frame.samples, frame.channels, frame.format, frame.timestamp) == (480, 2, "int16", 3.0)
    assert not frame.data.any()
    assert frame.rms() == 0.0


# --- PCM bytes ----------------------------------------------------------------------------------


def test_pcm16_round_trip_mono_and_stereo() -> None:
    mono = np.array([0, 1, -1, 32767, -32768, 1234], dtype=np.int16)
    frame = AudioFrame.from_pcm16(mono.astype("<i2").tobytes(), 8000)
    assert np.array_equal(frame.data[:, 0], mono)
    assert frame.to_pcm16() == mono.astype("<i2").tobytes()

    interleaved = np.array([1, -1, 2, -2, 3, -3], dtype="<i2").tobytes()
    stereo = AudioFrame.from_pcm16(interleaved, 8000, channels=2)
    assert stereo.data.tolist() == [[1, -1], [2, -2], [3, -3]]
    assert stereo.to_pcm16() == interleaved


def test_pcm16_is_little_endian() -> None:
    frame = AudioFrame(np.array([0x0102], dtype=np.int16), 8000)
    assert frame.to_pcm16() == b"\x02\x01"
    assert AudioFrame.from_pcm16(b"\x02\x01", 8000).data[0, 0] == 0x0102


def test_to_pcm16_converts_float_frames() -> None:
    frame = AudioFrame(np.array([0.5, -0.5, 1.0, -1.0], dtype=np.float32), 8000)
    assert np.frombuffer(frame.to_pcm16(), "<i2").tolist() == [16384, -16384, 32767, -32768]


def test_pcm16_bad_lengths() -> None:
    with pytest.raises(ValueError, match="3 bytes is not a whole number of 1-channel"):
        AudioFrame.from_pcm16(b"\x00\x01\x02", 16000)
    with pytest.raises(ValueError, match="6 bytes is not a whole number of 2-channel"):
        AudioFrame.from_pcm16(b"\x00" * 6, 16000, channels=2)
    with pytest.raises(ValueError, match="channels must be at least 1"):
        AudioFrame.from_pcm16(b"\x00" * 4, 16000, channels=0)


def test_empty_pcm_is_an_empty_frame() -> None:
    frame = AudioFrame.from_pcm16(b"", 16000)
    assert frame.samples == 0
    assert frame.duration == 0
    assert frame.rms() == 0.0


# --- int16 / float32 ----------------------------------------------------------------------------


@given(hnp.arrays(np.int16, st.integers(0, 200)))
def test_int16_float32_int16_is_lossless(samples: np.ndarray) -> None:
    frame = AudioFrame(samples, 16000)
    back = frame.to_float32().to_int16()
    assert back.format == "int16"
    assert np.array_equal(back.data[:, 0], samples)


def test_int16_to_float32_scale() -> None:
    frame = AudioFrame(np.array([0, 16384, -16384, -32768, 32767], dtype=np.int16), 16000)
    data = frame.to_float32().data[:, 0]
    assert data.dtype == np.float32
    assert data.tolist() == [0.0, 0.5, -0.5, -1.0, 32767 / 32768]


def test_float32_to_int16_clips_out_of_range() -> None:
    frame = AudioFrame(np.array([1.5, -1.5, 0.25], dtype=np.float32), 16000)
    assert frame.to_int16().data[:, 0].tolist() == [32767, -32768, 8192]


def test_float_round_trip_within_one_step() -> None:
    data = sine(440, 16000, 0.05)
    frame = AudioFrame(data, 16000)
    back = frame.to_int16().to_float32().data[:, 0]
    assert np.max(np.abs(back - data)) <= 0.5 / 32768 + 1e-7


def test_conversions_keep_metadata_and_do_not_touch_the_source() -> None:
    source = np.array([[100, -100], [200, -200]], dtype=np.int16)
    original = source.copy()
    frame = AudioFrame(source, 24000, timestamp=2.5)
    for converted in (frame.to_float32(), frame.to_mono(), frame.to_channels(3)):
        assert converted.sample_rate == 24000
        assert converted.timestamp == 2.5
    assert np.array_equal(source, original)
    assert frame.to_int16() is frame
    assert frame.to_channels(2) is frame


# --- channels -----------------------------------------------------------------------------------


def test_stereo_to_mono_averages_int16() -> None:
    frame = AudioFrame(
        np.array([[1000, 3000], [-32768, -32768], [32767, 32767]], dtype=np.int16), 8000
    )
    mono = frame.to_mono()
    assert mono.channels == 1
    assert mono.format == "int16"
    assert mono.data[:, 0].tolist() == [2000, -32768, 32767]  # no int16 overflow


def test_stereo_to_mono_averages_float32() -> None:
    frame = AudioFrame(np.array([[0.5, -0.5], [1.0, 0.0]], dtype=np.float32), 8000)
    mono = frame.to_mono()
    assert mono.format == "float32"
    assert mono.data[:, 0].tolist() == [0.0, 0.5]


def test_mono_to_stereo_duplicates_and_back() -> None:
    frame = AudioFrame(np.array([1, 2, 3], dtype=np.int16), 8000)
    stereo = frame.to_channels(2)
    assert stereo.data.tolist() == [[1, 1], [2, 2], [3, 3]]
    assert np.array_equal(stereo.to_mono().data, frame.data)
    assert frame.to_mono() is frame


def test_channel_change_through_mono() -> None:
    frame = AudioFrame(np.array([[0.2, 0.4, 0.6]], dtype=np.float32), 8000)
    assert frame.to_channels(2).data[0].tolist() == pytest.approx([0.4, 0.4])


# --- measurements -------------------------------------------------------------------------------


def test_rms_of_a_sine_is_amplitude_over_root_two() -> None:
    frame = AudioFrame(sine(1000, 16000, 0.1, amplitude=0.5), 16000)
    assert frame.rms() == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)
    assert frame.to_int16().rms() == pytest.approx(0.5 / np.sqrt(2), rel=1e-3)


def test_rms_of_full_scale_square_wave() -> None:
    data = np.tile(np.array([32767, -32768], dtype=np.int16), 50)
    assert AudioFrame(data, 8000).rms() == pytest.approx(1.0, abs=1e-4)


# --- joining ------------------------------------------------------------------------------------


def test_concat_audio() -> None:
    a = AudioFrame(np.array([1, 2], dtype=np.int16), 8000, timestamp=1.0)
    b = AudioFrame(np.array([3], dtype=np.int16), 8000, timestamp=9.0)
    joined = concat_audio([a, b])
    assert joined.data[:, 0].tolist() == [1, 2, 3]
    assert joined.timestamp == 1.0


@pytest.mark.parametrize(
    "other",
    [
        AudioFrame(np.array([3], dtype=np.int16), 16000),
        AudioFrame(np.array([[3, 3]], dtype=np.int16), 8000),
        AudioFrame(np.array([0.1], dtype=np.float32), 8000),
    ],
)
def test_concat_audio_rejects_mismatched_frames(other: AudioFrame) -> None:
    first = AudioFrame(np.array([1], dtype=np.int16), 8000)
    with pytest.raises(ValueError, match="resample them first"):
        concat_audio([first, other])


def test_concat_audio_needs_frames() -> None:
    with pytest.raises(ValueError, match="at least one frame"):
        concat_audio([])


# --- video --------------------------------------------------------------------------------------


def test_video_frame() -> None:
    frame = VideoFrame(np.zeros((480, 640, 3), dtype=np.uint8), timestamp=0.5)
    assert (frame.width, frame.height, frame.format) == (640, 480, "rgb24")
    assert "640x480" in repr(frame)
