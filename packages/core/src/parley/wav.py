"""WAV files to and from `AudioFrame` (16-bit PCM, any rate and channel count)."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import BinaryIO

from parley.frames import AudioFrame

_CONVERT_HINT = "convert it first, e.g. ffmpeg -i in.wav -c:a pcm_s16le out.wav"


def read_wav(source: str | Path | bytes | BinaryIO) -> AudioFrame:
    """Read a 16-bit PCM WAV file (path, bytes or file object) into one frame."""
    handle: BinaryIO | str
    handle = io.BytesIO(source) if isinstance(source, bytes) else source  # type: ignore[assignment]
    if isinstance(handle, Path):
        handle = str(handle)
    try:
        with wave.open(handle, "rb") as wav:
            width = wav.getsampwidth()
            if width != 2:
                raise ValueError(
                    f"only 16-bit PCM WAV is supported, this file has {8 * width}-bit samples; "
                    f"{_CONVERT_HINT}"
                )
            pcm = wav.readframes(wav.getnframes())
            return AudioFrame.from_pcm16(pcm, wav.getframerate(), wav.getnchannels())
    except wave.Error as exc:  # e.g. a float or compressed WAV: say what is supported
        raise ValueError(
            f"cannot read this WAV file ({exc}); only 16-bit PCM WAV is supported; {_CONVERT_HINT}"
        ) from exc


def write_wav(destination: str | Path | BinaryIO, frame: AudioFrame) -> None:
    """Write a frame as a 16-bit PCM WAV file."""
    target: BinaryIO | str = str(destination) if isinstance(destination, Path) else destination
    with wave.open(target, "wb") as wav:
        wav.setnchannels(frame.channels)
        wav.setsampwidth(2)
        wav.setframerate(frame.sample_rate)
        wav.writeframes(frame.to_pcm16())


def wav_bytes(frame: AudioFrame) -> bytes:
    buffer = io.BytesIO()
    write_wav(buffer, frame)
    return buffer.getvalue()
