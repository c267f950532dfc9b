"""G.711 µ-law against reference values (computed with CPython's audioop, which 3.13 removed)."""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
from parley_twilio.g711 import ulaw_decode, ulaw_encode

PCM = np.array([0, 0x1234, 0x5678, -0x4567, 0x7FFF, -0x8000, -1], dtype=np.int16)
CODES = bytes.fromhex("ffad8a0e80007e")  # audioop.lin2ulaw(PCM, 2)


def test_encoding_matches_the_reference_codes() -> None:
    assert ulaw_encode(PCM) == CODES


def test_decoding_matches_the_reference_values() -> None:
    codes = bytes([0x00, 0x0E, 0x0F, 0x7F, 0x80, 0x8E, 0xF0, 0xFF])
    expected = [-32124, -17788, -16764, 0, 32124, 17788, 120, 0]  # audioop.ulaw2lin
    assert ulaw_decode(codes).tolist() == expected


def test_every_code_survives_a_round_trip() -> None:
    codes = bytes(range(256))
    again = ulaw_encode(ulaw_decode(codes))
    # 0x7F (negative zero) decodes to 0, which encodes as 0xFF: the only code that moves.
    assert [a for a, b in zip(codes, again, strict=True) if a != b] == [0x7F]


def test_quantization_error_is_within_half_a_step() -> None:
    pcm = np.arange(-32768, 32768, 7, dtype=np.int32).astype(np.int16)
    decoded = ulaw_decode(ulaw_encode(pcm)).astype(np.int32)
    error = np.abs(decoded - pcm.astype(np.int32))
    # The largest µ-law step is 1024; the reference encoder first drops 2 bits (up to 3).
    assert error[np.abs(pcm.astype(np.int32)) < 32000].max() <= 512 + 3
    assert (np.sign(decoded[np.abs(pcm) > 8]) == np.sign(pcm[np.abs(pcm) > 8])).all()


def test_every_sample_matches_audioop_where_it_still_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            audioop = importlib.import_module("audioop")
        except ImportError:
            pytest.skip("audioop is gone (Python 3.13+): the fixed reference values stand")
    pcm = np.arange(-32768, 32768, dtype=np.int32).astype("<i2")
    assert ulaw_encode(pcm) == audioop.lin2ulaw(pcm.tobytes(), 2)
    codes = bytes(range(256))
    assert ulaw_decode(codes).astype("<i2").tobytes() == audioop.ulaw2lin(codes, 2)
