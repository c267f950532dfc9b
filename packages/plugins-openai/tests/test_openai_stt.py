"""parley-openai STT: whole utterances through /audio/transcriptions, against respx fakes."""

from __future__ import annotations

import asyncio
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

import httpcore2
import httpx
import numpy as np
import openai
import pytest
import respx
from parley.frames import AudioFrame
from parley.segmenting import VADSegmentedSTT
from parley.testing import FakeVAD
from parley.wav import read_wav
from parley_openai.stt import OpenAISTT

URL = "https://api.openai.com/v1/audio/transcriptions"

RETRY_SOON = {"retry-after-ms": "1"}


def make_stt(**kwargs: Any) -> OpenAISTT:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("max_retries", 0)
    return OpenAISTT(**kwargs)


def form(request: httpx.Request) -> dict[str, bytes]:
    """The fields of a multipart/form-data request body."""
    head = f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + request.content)
    return {
        str(part.get_param("name", header="content-disposition")): part.get_payload(decode=True)
        for part in message.iter_parts()
    }


def speech(seconds: float, rate: int, channels: int = 1, level: float = 0.3) -> AudioFrame:
    t = np.arange(int(seconds * rate)) / rate
    mono = (np.sin(2 * np.pi * 220 * t) * level).astype(np.float32)
    return AudioFrame(np.repeat(mono.reshape(-1, 1), channels, axis=1), rate)


async def test_an_utterance_is_sent_as_16k_wav(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(return_value=httpx.Response(200, json={"text": " Hello. "}))
    stt = make_stt(prompt="Names: Ada.", language="fr")

    text = await stt.recognize(speech(0.5, 48000, channels=2))

    assert text == "Hello."
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-test"
    fields = form(request)
    assert fields["model"] == b"gpt-transcribe"
    assert fields["language"] == b"fr"
    assert fields["prompt"] == b"Names: Ada."
    assert fields["response_format"] == b"json"
    wav = read_wav(fields["file"])
    assert (wav.sample_rate, wav.channels) == (16000, 1)
    assert wav.samples == pytest.approx(8000, abs=2)
    assert wav.rms() > 0.1  # the speech itself, not silence


async def test_language_per_call_overrides_the_default(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(return_value=httpx.Response(200, json={"text": "Hola"}))
    assert await make_stt(language="en").recognize(speech(0.2, 16000), language="es") == "Hola"
    assert form(route.calls.last.request)["language"] == b"es"


async def test_core_wraps_it_with_vad_segmentation(httpx2_mock: respx.Router) -> None:
    httpx2_mock.post(URL).mock(return_value=httpx.Response(200, json={"text": "Turn on the light"}))
    streaming = VADSegmentedSTT(make_stt(), FakeVAD(threshold=0.05))
    stream = streaming.stream()
    for piece in (speech(0.6, 16000), speech(0.8, 16000, level=0.0)):
        for start in range(0, piece.samples, 320):
            await stream.push(AudioFrame(piece.data[start : start + 320], 16000))
    events = []
    async with asyncio.timeout(5):
        async for event in stream:
            events.append(event)
            if event.type == "final":
                break
    await stream.aclose()
    # early guesses (``partial``) may come before the final; they carry the same text
    assert [e.type for e in events if e.type != "partial"] == ["speech_started", "final"]
    assert all(e.text == "Turn on the light" for e in events if e.type == "partial")
    assert events[-1].text == "Turn on the light"
    assert events[-1].audio_duration > 0.5


async def test_provider_errors_raise_after_bounded_retries(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(
        side_effect=[
            httpx.Response(500, json={"error": {"message": "boom"}}, headers=RETRY_SOON),
            httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}),
        ]
    )
    with pytest.raises(openai.AuthenticationError, match="Incorrect API key"):
        await make_stt(max_retries=3).recognize(speech(0.2, 16000))
    assert route.call_count == 2  # a 401 is not retried


async def test_a_dropped_connection_raises(httpx2_mock: respx.Router) -> None:
    httpx2_mock.post(URL).mock(side_effect=httpcore2.RemoteProtocolError("server disconnected"))
    with pytest.raises(openai.APIConnectionError):
        await make_stt().recognize(speech(0.2, 16000))


async def test_a_slow_server_times_out() -> None:
    reached = asyncio.Event()

    async def never(request: httpx.Request) -> httpx.Response:
        reached.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    # respx records a call only once it is answered, so this route is never "called".
    with respx.mock(using="httpcore2", assert_all_called=False) as router:
        router.post(URL).mock(side_effect=never)
        with pytest.raises(TimeoutError, match=r"longer than 0\.2 s"):
            await make_stt(timeout=0.2).recognize(speech(0.2, 16000))
    assert reached.is_set()
