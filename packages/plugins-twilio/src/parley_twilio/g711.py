"""G.711 µ-law, the phone network's codec: 8-bit codes for 16-bit PCM, by lookup table.

Both directions are one numpy indexing per chunk (no per-sample Python, no ``audioop``,
which Python 3.13 removed). The encoder follows the reference (Sun) implementation that
``audioop.lin2ulaw`` used, so both give the same codes for every input.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import numpy.typing as npt

SAMPLE_RATE = 8000
FRAME_SECONDS = 0.02
FRAME_BYTES = 160  # one byte per sample: 20 ms at 8 kHz
SILENCE = 0xFF  # the code of PCM 0

_BIAS = 0x84
_CLIP = 8159  # 14-bit magnitude before the bias
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


@cache
def _decode_table() -> npt.NDArray[np.int16]:
    codes = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = (((codes & 0x0F) << 3) + _BIAS) << ((codes & 0x70) >> 4)
    linear = np.where(codes & 0x80, _BIAS - magnitude, magnitude - _BIAS)
    return linear.astype(np.int16)


@cache
def _encode_table() -> npt.NDArray[np.uint8]:
    # Indexed by the int16 sample's bits read as uint16, so encoding needs no arithmetic.
    pcm = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32) >> 2
    mask = np.where(pcm < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(pcm), _CLIP) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, value, side="left")
    code = (segment << 4) | ((value >> (segment + 1)) & 0x0F)
    code = np.where(segment >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


# `take` rather than indexing: the same lookup, a third cheaper on a 160-sample frame.


def ulaw_decode(payload: bytes) -> npt.NDArray[np.int16]:
    """µ-law bytes to int16 PCM samples (one sample per byte)."""
    decoded: npt.NDArray[np.int16] = _decode_table().take(np.frombuffer(payload, dtype=np.uint8))
    return decoded


def ulaw_encode(samples: npt.NDArray[np.int16]) -> bytes:
    """int16 PCM samples (any shape, read in order) to µ-law bytes."""
    if samples.dtype != np.int16 or not samples.flags.c_contiguous:
        samples = np.ascontiguousarray(samples, dtype=np.int16)
    return _encode_table().take(samples.reshape(-1).view(np.uint16)).tobytes()
