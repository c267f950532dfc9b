"""Deepgram Aura TTS against respx: the documented /v1/speak request and its streamed PCM."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import numpy as np
import pytest
import respx
from parley.errors import ProviderDisconnected, ProviderError
from parley.frames import concat_audio
from parley_deepgram import DeepgramError
from parley_deepgram.tts import DeepgramTTS

BASE = "https://deepgram.test"
URL = f"{BASE}/v1/speak"


class Body(httpx.AsyncByteStream):
    def __init__(self, parts: Iterable[bytes], then: str = "end") -> None:
        self.parts = list(parts)
        self.then = then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part
        if self.then == "disconnect":
            raise httpx.ReadError("connection reset by peer")
        if self.then == "stall":
            await asyncio.Event().wait()


async def collect_into(stream: AsyncIterator[Any], into: list[Any]) -> None:
    async for frame in stream:
        into.append(frame)


def tts(**kwargs: Any) -> DeepgramTTS:
    return DeepgramTTS(api_key="dg-key", base_url=BASE, **kwargs)


async def frames_of(engine: DeepgramTTS, text: str) -> list[Any]:
    return [frame async for frame in engine.synthesize(text)]


@respx.mock
async def test_request_and_streamed_pcm_with_odd_chunk_boundaries() -> None:
    samples = (np.arange(2400) % 300 - 150).astype("<i2")
    pcm = samples.tobytes()
    parts = [pcm[:1001], pcm[1001:3000], pcm[3000:]]  # splits inside samples
    route = respx.post(URL).respond(200, stream=Body(parts), headers={"dg-char-count": "11"})
    frames = await frames_of(tts(model="aura-2-orion-en", sample_rate=16000), "Hello there")
    joined = concat_audio(frames)
    assert joined.sample_rate == 16000
    assert np.array_equal(joined.data[:, 0], samples)
    request = route.calls.last.request
    assert request.headers["authorization"] == "Token dg-key"
    assert dict(request.url.params) == {
        "model": "aura-2-orion-en",
        "encoding": "linear16",
        "sample_rate": "16000",
        "container": "none",
    }
    assert json.loads(request.content) == {"text": "Hello there"}


@respx.mock
async def test_rate_limit_is_retried_and_errors_are_clear() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                429,
                headers={"retry-after": "0"},
                json={"err_code": "TOO_MANY_REQUESTS", "err_msg": "Too many requests"},
            ),
            httpx.Response(200, content=b"\x01\x00\x02\x00"),
        ]
    )
    frames = await frames_of(tts(), "hi")
    assert route.call_count == 2 and sum(f.samples for f in frames) == 2
    respx.post(URL).respond(
        401, json={"err_code": "INVALID_AUTH", "err_msg": "Invalid credentials."}
    )
    with pytest.raises(DeepgramError, match=r"HTTP 401: Invalid credentials.*DEEPGRAM_API_KEY"):
        await frames_of(tts(), "hi")


@respx.mock
async def test_mid_stream_disconnect_is_raised_not_retried() -> None:
    route = respx.post(URL).respond(200, stream=Body([b"\x00\x00" * 100], then="disconnect"))
    got: list[Any] = []
    with pytest.raises(ProviderDisconnected, match="Deepgram TTS: the connection broke") as info:
        await collect_into(tts().synthesize("hi"), got)
    assert len(got) == 1 and route.call_count == 1  # what was heard is not repeated
    assert isinstance(info.value, ProviderError) and info.value.retryable
    assert isinstance(info.value.__cause__, httpx.ReadError)
    assert "connection reset by peer" in str(info.value)


@respx.mock
async def test_stalled_audio_times_out() -> None:
    respx.post(URL).respond(200, stream=Body([b"\x00\x00" * 10], then="stall"))
    with pytest.raises(DeepgramError, match="stopped sending audio"):
        await frames_of(tts(timeout=0.2), "hi")


def test_missing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPGRAM_API_KEY", raising=False)
    with pytest.raises(ValueError, match="DEEPGRAM_API_KEY"):
        DeepgramTTS()
