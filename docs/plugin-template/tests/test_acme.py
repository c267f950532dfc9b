"""Tests a plugin author keeps: the part keeps its contract, and the spec string builds it."""

from __future__ import annotations

import asyncio

import pytest
from parley import ProviderError
from parley.frames import AudioFrame
from parley.plugins import resolve
from parley_acme.tts import AcmeTTS


async def _frames(tts: AcmeTTS, text: str) -> list[AudioFrame]:
    return [frame async for frame in tts.synthesize(text)]


def test_frames_follow_the_declared_format() -> None:
    tts = AcmeTTS(word_seconds=0.1)
    frames = asyncio.run(_frames(tts, "hello big world"))
    assert {(f.sample_rate, f.channels, f.format) for f in frames} == {(16000, 1, "int16")}
    assert sum(f.duration for f in frames) == pytest.approx(0.3)


def test_a_refusal_is_a_provider_error() -> None:
    with pytest.raises(ProviderError) as info:
        asyncio.run(_frames(AcmeTTS(), "bad\x00text"))
    assert (info.value.provider, info.value.status, info.value.retryable) == ("Acme", 400, False)


def test_spec_strings_build_it() -> None:
    tts = resolve("tts", "acme-low")
    assert isinstance(tts, AcmeTTS)
    assert tts.pitch == 220.0
