"""parley-openai TTS: /audio/speech as streamed 24 kHz PCM, against respx (httpx2) fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpcore
import httpcore2
import httpx
import httpx2
import numpy as np
import openai
import pytest
import respx
from parley.errors import ProviderDisconnected, ProviderError
from parley.frames import AudioFrame, concat_audio
from parley_openai.tts import OpenAITTS

URL = "https://api.openai.com/v1/audio/speech"

RETRY_SOON = {"retry-after-ms": "1"}


def make_tts(**kwargs: Any) -> OpenAITTS:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("max_retries", 0)
    return OpenAITTS(**kwargs)


def tone(samples: int) -> bytes:
    t = np.arange(samples)
    return (np.sin(t / 7.0) * 8000).astype("<i2").tobytes()


def pcm_response(body: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "audio/pcm"})


async def test_frames_arrive_while_the_body_is_still_streaming(httpx2_mock: respx.Router) -> None:
    pcm = tone(24000 // 2)  # half a second
    first_frame_seen = asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield pcm[:4801]  # an odd split: the last byte waits for its partner
        await asyncio.wait_for(first_frame_seen.wait(), 5)  # only after a frame came out
        yield pcm[4801:]

    route = httpx2_mock.post(URL).mock(return_value=pcm_response(body()))
    tts = make_tts(voice="cedar", instructions="Speak warmly.", speed=1.1)

    frames: list[AudioFrame] = []
    async for frame in tts.synthesize("Hello there."):
        frames.append(frame)
        first_frame_seen.set()

    assert len(frames) >= 2
    assert frames[0].samples == 2400  # 4800 of the first 4801 bytes
    assert all(f.sample_rate == 24000 and f.channels == 1 for f in frames)
    assert concat_audio(frames).to_pcm16() == pcm
    assert frames[1].timestamp == pytest.approx(frames[0].duration)
    body_sent = json.loads(route.calls.last.request.content)
    assert body_sent == {
        "model": "gpt-4o-mini-tts",
        "voice": "cedar",
        "input": "Hello there.",
        "response_format": "pcm",
        "instructions": "Speak warmly.",
        "speed": 1.1,
    }
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test"


async def test_blank_text_makes_no_request(httpx2_mock: respx.Router) -> None:
    assert [f async for f in make_tts().synthesize("  \n")] == []
    assert httpx2_mock.calls.call_count == 0  # and an unmocked request would have raised


async def test_provider_error_raises(httpx2_mock: respx.Router) -> None:
    httpx2_mock.post(URL).mock(
        return_value=httpx.Response(
            400, json={"error": {"message": "voice 'nope' is not supported", "type": "invalid"}}
        )
    )
    with pytest.raises(openai.BadRequestError, match="voice 'nope' is not supported"):
        _ = [f async for f in make_tts(voice="nope").synthesize("Hi")]


async def test_server_errors_are_retried(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            httpx.Response(503, json={"error": {"message": "overloaded"}}, headers=RETRY_SOON),
            pcm_response(tone(480)),
        ]
    )
    frames = [f async for f in make_tts(max_retries=1).synthesize("Hi")]
    assert sum(f.samples for f in frames) == 480
    assert route.call_count == 2


@pytest.mark.parametrize("surface", ["installed", "wrapped"])
async def test_mid_stream_disconnect_raises_provider_disconnected(
    httpx2_mock: respx.Router, surface: str
) -> None:
    """The speech body lets httpx2's error through (``installed``); an SDK that wraps it in
    ``APIConnectionError`` (``wrapped``) gives the same `ProviderDisconnected`."""
    failure: Exception = httpcore2.ReadError("connection reset by peer")
    if surface == "wrapped":
        request = httpx2.Request("POST", URL)
        failure = openai.APIConnectionError(request=request)
        failure.__cause__ = httpx2.ReadError("connection reset by peer")

    async def body() -> AsyncIterator[bytes]:
        yield tone(480)
        raise failure

    httpx2_mock.post(URL).mock(return_value=pcm_response(body()))
    frames: list[AudioFrame] = []

    async def drain() -> None:
        async for frame in make_tts().synthesize("Hi"):
            frames.append(frame)

    with pytest.raises(ProviderDisconnected, match="connection reset") as info:
        await drain()
    assert sum(f.samples for f in frames) == 480  # what was streamed before the break stands
    error = info.value
    assert isinstance(error, ProviderError) and error.retryable
    assert error.provider == "OpenAI speech (gpt-4o-mini-tts)"
    if surface == "wrapped":
        assert error.__cause__ is failure
    else:
        assert isinstance(error.__cause__, httpx2.ReadError)


async def test_a_disconnect_through_a_legacy_httpx_client_too() -> None:
    """The SDK also runs on a caller's legacy ``httpx`` client, whose errors are httpx's."""

    async def body() -> AsyncIterator[bytes]:
        yield tone(480)
        raise httpcore.ReadError("connection reset by peer")

    client = openai.AsyncOpenAI(api_key="sk-test", http_client=httpx.AsyncClient(), max_retries=0)
    frames: list[AudioFrame] = []

    async def drain() -> None:
        async for frame in OpenAITTS(client=client).synthesize("Hi"):
            frames.append(frame)

    with respx.mock(using="httpcore") as router:
        router.post(URL).mock(return_value=pcm_response(body()))
        with pytest.raises(ProviderDisconnected, match="connection reset") as info:
            await drain()
    await client.close()
    assert sum(f.samples for f in frames) == 480
    assert isinstance(info.value.__cause__, httpx.ReadError)


async def test_a_read_timeout_mid_stream_is_a_stall(httpx2_mock: respx.Router) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield tone(480)
        raise httpcore2.ReadTimeout("timed out")

    httpx2_mock.post(URL).mock(return_value=pcm_response(body()))
    with pytest.raises(TimeoutError, match=r"OpenAI speech .* stalled") as info:
        _ = [f async for f in make_tts().synthesize("Hi")]
    assert isinstance(info.value.__cause__, httpx2.ReadTimeout)


async def test_a_stalled_stream_times_out(httpx2_mock: respx.Router) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield tone(480)
        await asyncio.Event().wait()
        yield b""

    httpx2_mock.post(URL).mock(return_value=pcm_response(body()))
    with pytest.raises(TimeoutError, match="OpenAI speech"):
        _ = [f async for f in make_tts(idle_timeout=0.2).synthesize("Hi")]
