"""WAV read/write."""

import io
import struct
import wave
from pathlib import Path

import numpy as np
import pytest
from parley.frames import AudioFrame
from parley.wav import read_wav, wav_bytes, write_wav


def stereo_frame() -> AudioFrame:
    left = np.arange(-500, 500, dtype=np.int16)
    right = (left * -3).astype(np.int16)
    return AudioFrame(np.stack([left, right], axis=1), 22050)


def test_round_trip_through_a_path(tmp_path: Path) -> None:
    frame = stereo_frame()
    path = tmp_path / "speech.wav"
    write_wav(path, frame)
    back = read_wav(path)
    assert (back.sample_rate, back.channels, back.format) == (22050, 2, "int16")
    assert np.array_equal(back.data, frame.data)
    assert np.array_equal(read_wav(str(path)).data, frame.data)


def test_round_trip_through_bytes_and_file_objects() -> None:
    frame = AudioFrame(np.array([0, 32767, -32768, 7], dtype=np.int16), 16000)
    data = wav_bytes(frame)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert np.array_equal(read_wav(data).data, frame.data)
    assert np.array_equal(read_wav(io.BytesIO(data)).data, frame.data)


def test_float_frames_are_written_as_16_bit() -> None:
    frame = AudioFrame(np.array([0.5, -0.5, 0.0], dtype=np.float32), 8000)
    back = read_wav(wav_bytes(frame))
    assert back.format == "int16"
    assert back.data[:, 0].tolist() == [16384, -16384, 0]


def test_the_file_is_readable_by_the_standard_library() -> None:
    frame = stereo_frame()
    with wave.open(io.BytesIO(wav_bytes(frame)), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (2, 2, 22050)
        assert wav.getnframes() == frame.samples


@pytest.mark.parametrize("width", [1, 3, 4])
def test_non_16_bit_pcm_is_rejected(width: int) -> None:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(width)
        wav.setframerate(8000)
        wav.writeframes(b"\x00" * width * 10)
    with pytest.raises(
        ValueError, match=f"only 16-bit PCM WAV is supported, this file has {8 * width}-bit"
    ):
        read_wav(buffer.getvalue())


def test_float_wav_is_rejected_with_a_hint() -> None:
    # A minimal IEEE-float (format 3) WAV, which the wave module cannot read.
    samples = struct.pack("<4f", 0.0, 0.5, -0.5, 0.25)
    fmt = struct.pack("<HHIIHH", 3, 1, 8000, 8000 * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(samples)) + samples
    data = b"RIFF" + struct.pack("<I", len(body)) + body
    with pytest.raises(ValueError, match=r"only 16-bit PCM WAV is supported.*pcm_s16le"):
        read_wav(data)


def test_not_a_wav_file() -> None:
    with pytest.raises(ValueError, match="cannot read this WAV file"):
        read_wav(b"RIFX not really a wav file at all")
