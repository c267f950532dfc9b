"""ElevenLabs TTS: stream-input against a local server, HTTP streaming against respx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import respx
from parley.errors import ProviderDisconnected, ProviderError
from parley.plugins import resolve
from parley_elevenlabs import ElevenLabsError
from parley_elevenlabs.testing import FakeElevenLabs
from parley_elevenlabs.tts import DEFAULT_VOICE, ElevenLabsTTS
from websockets.exceptions import ConnectionClosedError

HTTP = "https://elevenlabs.test"
KEY = "test-elevenlabs-key"
STREAM = f"{HTTP}/v1/text-to-speech/{DEFAULT_VOICE}/stream"


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


_made: list[ElevenLabsTTS] = []


@pytest.fixture(autouse=True)
async def close_engines() -> AsyncIterator[None]:
    yield
    while _made:
        await _made.pop().aclose()


def tts(fake: FakeElevenLabs | None = None, **kwargs: Any) -> ElevenLabsTTS:
    ws_url = fake.url if fake is not None else "ws://127.0.0.1:9"  # nothing listens on 9
    kwargs.setdefault("api_key", KEY)
    engine = ElevenLabsTTS(base_url=HTTP, ws_url=ws_url, **kwargs)
    _made.append(engine)
    return engine


async def speak(engine: ElevenLabsTTS, text: str) -> list[Any]:
    return [frame async for frame in engine.synthesize(text)]


async def test_websocket_input_streaming_protocol() -> None:
    async with FakeElevenLabs() as fake:
        engine = tts(fake, model="eleven_multilingual_v2", language="nb", stability=0.4, speed=1.1)
        frames = await speak(engine, "Hello from Oslo.")
    path, query = fake.requests[0]
    assert path == f"/v1/text-to-speech/{DEFAULT_VOICE}/stream-input"
    assert query == {
        "model_id": "eleven_multilingual_v2",
        "output_format": "pcm_24000",
        "language_code": "nb",
    }
    bos, text, eos = fake.messages
    assert bos == {
        "text": " ",
        "xi_api_key": KEY,
        "voice_settings": {"stability": 0.4, "speed": 1.1, "similarity_boost": 0.75},
    }
    assert text == {"text": "Hello from Oslo. ", "flush": True}
    assert eos == {"text": ""}
    assert fake.texts == ["Hello from Oslo."]
    assert {f.sample_rate for f in frames} == {24000}
    assert sum(f.duration for f in frames) == pytest.approx(
        len("Hello from Oslo.") * 0.01, abs=0.01
    )
    assert engine.fallbacks == 0


async def test_the_next_sentences_socket_is_opened_ahead() -> None:
    async with FakeElevenLabs() as fake:
        engine = tts(fake)
        await engine.warm_up()
        await speak(engine, "First sentence.")
        await speak(engine, "Second sentence.")
        await engine.aclose()
        plain = tts(fake, prewarm=False)
        await speak(plain, "Third.")
        await speak(plain, "Fourth.")
    # warm-up, then one spare per sentence (closed unused at the end); none without prewarm
    assert len(fake.requests) == 3 + 2
    assert fake.texts == ["First sentence.", "Second sentence.", "Third.", "Fourth."]


async def test_other_sample_rate_and_voice() -> None:
    async with FakeElevenLabs() as fake:
        frames = await speak(tts(fake, voice="21m00Tcm4TlvDq8ikWAM", sample_rate=16000), "Hi.")
    assert fake.requests[0][0] == "/v1/text-to-speech/21m00Tcm4TlvDq8ikWAM/stream-input"
    assert fake.requests[0][1]["output_format"] == "pcm_16000"
    assert {f.sample_rate for f in frames} == {16000}


async def test_bad_key_is_an_error_without_http_fallback() -> None:
    async with FakeElevenLabs(api_key="the-right-one") as fake:
        with respx.mock(assert_all_called=False) as router:
            route = router.post(STREAM).respond(200, content=b"\x00\x00")
            with pytest.raises(ElevenLabsError, match="Invalid API key"):
                await speak(tts(fake), "Hello.")
            assert not route.called


@respx.mock
async def test_socket_failure_before_audio_falls_back_to_http() -> None:
    route = respx.post(STREAM).respond(200, stream=Body([b"\x01\x00\x02", b"\x00\x03\x00"]))
    async with FakeElevenLabs(drop_before_audio=True) as fake:
        engine = tts(fake, stability=0.3)
        frames = await speak(engine, "Fallback please.")
        again = await speak(engine, "Still HTTP.")  # within the cooldown: no socket attempt
    assert sum(f.samples for f in frames) == 3 and sum(f.samples for f in again) == 3
    assert engine.fallbacks == 1
    # The second sentence did not try the socket: one begin-of-stream message in all.
    assert sum("xi_api_key" in m for m in fake.messages) == 1
    request = route.calls[0].request
    assert request.headers["xi-api-key"] == KEY
    assert request.url.params["output_format"] == "pcm_24000"
    assert json.loads(request.content) == {
        "text": "Fallback please.",
        "model_id": "eleven_flash_v2_5",
        "voice_settings": {"stability": 0.3, "similarity_boost": 0.75},
    }


@respx.mock
async def test_unreachable_socket_falls_back_to_http() -> None:
    respx.post(STREAM).respond(200, content=b"\x00\x00" * 240)
    engine = tts(None, connect_timeout=1.0)
    frames = await speak(engine, "Hello.")
    assert sum(f.samples for f in frames) == 240 and engine.fallbacks == 1


async def test_mid_stream_disconnect_is_raised_not_repeated() -> None:
    async with FakeElevenLabs(drop_after_chunks=1, chunk_seconds=0.02) as fake:
        engine = tts(fake)
        got: list[Any] = []
        with pytest.raises(ProviderDisconnected, match=r"ElevenLabs: .* \(code 1011") as info:
            await collect_into(engine.synthesize("A sentence long enough for several chunks."), got)
    assert len(got) == 1  # what was heard is not spoken again over HTTP
    assert engine.fallbacks == 0
    error = info.value
    assert isinstance(error, ProviderError) and not isinstance(error, ElevenLabsError)
    assert error.status == 1011 and error.retryable
    assert isinstance(error.__cause__, ConnectionClosedError)


async def test_a_stall_mid_sentence_stays_an_elevenlabs_error() -> None:
    async with FakeElevenLabs(stall_after_chunks=1, chunk_seconds=0.02) as fake:
        engine = tts(fake, timeout=0.2)
        got: list[Any] = []
        with pytest.raises(ElevenLabsError, match=r"broke mid-sentence: no audio for 0\.2 s"):
            await collect_into(engine.synthesize("A sentence long enough for several chunks."), got)
    assert len(got) == 1 and engine.fallbacks == 0


async def test_stalled_socket_times_out_and_falls_back() -> None:
    async with FakeElevenLabs(stall=True) as fake:
        with respx.mock as router:
            router.post(STREAM).respond(200, content=b"\x00\x00" * 10)
            engine = tts(fake, timeout=0.2)
            frames = await speak(engine, "Hello.")
    assert sum(f.samples for f in frames) == 10 and engine.fallbacks == 1


@respx.mock
async def test_http_rate_limit_retry_and_errors() -> None:
    route = respx.post(STREAM).mock(
        side_effect=[
            httpx.Response(
                429,
                headers={"retry-after": "0"},
                json={"detail": {"status": "too_many_concurrent_requests", "message": "Too many"}},
            ),
            httpx.Response(200, content=b"\x00\x00" * 4),
        ]
    )
    engine = tts(transport="http")
    assert sum(f.samples for f in await speak(engine, "Hi.")) == 4
    assert route.call_count == 2
    respx.post(STREAM).respond(
        401, json={"detail": {"status": "invalid_api_key", "message": "Invalid API key"}}
    )
    with pytest.raises(
        ElevenLabsError, match=r"HTTP 401: invalid_api_key: Invalid API key.*ELEVENLABS_API_KEY"
    ):
        await speak(engine, "Hi.")


@respx.mock
async def test_http_mid_stream_disconnect_and_stall() -> None:
    respx.post(STREAM).mock(
        side_effect=[
            httpx.Response(200, stream=Body([b"\x00\x00" * 8], then="disconnect")),
            httpx.Response(200, stream=Body([b"\x00\x00" * 8], then="stall")),
        ]
    )
    engine = tts(transport="http", timeout=0.2)
    with pytest.raises(ProviderDisconnected, match="HTTP stream: connection reset") as info:
        await speak(engine, "Hi.")
    assert isinstance(info.value, ProviderError) and info.value.provider == "ElevenLabs"
    assert isinstance(info.value.__cause__, httpx.ReadError)
    with pytest.raises(ElevenLabsError, match="stopped sending audio"):
        await speak(engine, "Hi.")


def test_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    with pytest.raises(ValueError, match="ELEVENLABS_API_KEY"):
        ElevenLabsTTS()
    with pytest.raises(ValueError, match="supports"):
        ElevenLabsTTS(api_key="k", sample_rate=32000)
    monkeypatch.setenv("ELEVENLABS_API_KEY", "env")
    engine = resolve("tts", "elevenlabs/eleven_turbo_v2_5?voice=abc&speed=0.9")
    assert isinstance(engine, ElevenLabsTTS)
    assert (engine.model, engine.voice, engine.voice_settings["speed"]) == (
        "eleven_turbo_v2_5",
        "abc",
        0.9,
    )
    assert engine.socket_url().startswith(
        "wss://api.elevenlabs.io/v1/text-to-speech/abc/stream-input?"
    )
