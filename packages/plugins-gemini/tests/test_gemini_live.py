"""Gemini Live against a local server speaking the BidiGenerateContent protocol."""

from __future__ import annotations

import asyncio
import base64
import io
import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from parley.chat import ChatContext
from parley.errors import ProviderDisconnected, ProviderError
from parley.frames import AudioFrame, VideoFrame
from parley.realtime import RealtimeEvent
from parley.testing import silence_frames, tone_frames
from parley.tools import FunctionTool
from parley_gemini import GeminiError
from parley_gemini.live import GeminiLive, GeminiLiveSession, _closed_error
from parley_gemini.testing import FakeGeminiLive
from PIL import Image
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, ConnectionClosedOK
from websockets.frames import Close

KEY = "test-gemini-key"


async def get_weather(location: str) -> str:
    """Get the weather for a location."""
    return f"sunny in {location}"


def live(fake: FakeGeminiLive, **kwargs: Any) -> GeminiLive:
    return GeminiLive(api_key=KEY, base_url=fake.url, **kwargs)


async def speak(session: GeminiLiveSession, speech: float = 0.3, silence: float = 0.4) -> None:
    for frame in tone_frames(speech, 16000):
        await session.push_audio(frame)
    for frame in silence_frames(silence, 16000):
        await session.push_audio(frame)


async def push_until_it_fails(session: GeminiLiveSession) -> None:
    for frame in tone_frames(1.0, 16000):
        await session.push_audio(frame)
        await asyncio.sleep(0.001)


async def events_until(
    session: GeminiLiveSession, done: Callable[[RealtimeEvent], bool], timeout: float = 5.0
) -> list[RealtimeEvent]:
    seen: list[RealtimeEvent] = []
    async with asyncio.timeout(timeout):
        async for event in session:
            seen.append(event)
            if done(event):
                break
    return seen


async def test_setup_speech_reply_transcripts_and_usage() -> None:
    async with FakeGeminiLive(replies=["Hello there."], transcripts=["hi gemini"]) as fake:
        model = live(fake, voice="Kore", language="en-US")
        session = await model.connect(instructions="Be brief.", tools=[FunctionTool(get_weather)])
        await speak(session)
        events = await events_until(session, lambda e: e.type == "response_done")
        await session.aclose()
    setup = fake.setups[0]
    assert setup["model"] == f"models/{model.model}"
    assert setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    assert setup["generationConfig"]["speechConfig"] == {
        "voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
        "languageCode": "en-US",
    }
    assert setup["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    declaration = setup["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert declaration["parameters"]["required"] == ["location"]
    assert "inputAudioTranscription" in setup and "outputAudioTranscription" in setup
    assert fake.headers[0]["x-goog-api-key"] == KEY
    audio_in = [m["realtimeInput"]["audio"] for m in fake.messages if "realtimeInput" in m]
    assert audio_in[0]["mimeType"] == "audio/pcm;rate=16000"
    assert fake.audio_seconds == pytest.approx(0.7, abs=0.03)

    kinds = [e.type for e in events]
    finals = [e.text for e in events if e.type == "user_transcript" and e.final]
    assert finals == ["hi gemini"]
    assert kinds.index("user_transcript") < kinds.index("response_started") < kinds.index("audio")
    frames = [e.audio for e in events if e.type == "audio" and e.audio is not None]
    assert {f.sample_rate for f in frames} == {24000}
    assert sum(f.duration for f in frames) == pytest.approx(len("Hello there.") * 0.01, abs=0.06)
    assert "".join(e.text for e in events if e.type == "agent_transcript") == "Hello there."
    done = events[-1]
    assert done.usage is not None and done.usage.input_tokens == 40
    assert done.usage.output_tokens == len("Hello there.")


async def test_tool_call_and_response() -> None:
    replies = [{"name": "get_weather", "args": {"location": "Oslo"}}, "It is {result}."]
    async with FakeGeminiLive(replies=replies) as fake:
        session = await live(fake).connect(instructions="", tools=[FunctionTool(get_weather)])
        await session.push_text("Weather in Oslo?")
        events = await events_until(session, lambda e: e.type == "tool_call")
        call = events[-1].tool_call
        assert call is not None and call.name == "get_weather"
        assert json.loads(call.arguments) == {"location": "Oslo"}
        await session.send_tool_result(call, await FunctionTool(get_weather).invoke(call.arguments))
        events = await events_until(session, lambda e: e.type == "response_done")
        await session.aclose()
    said = "".join(e.text for e in events if e.type == "agent_transcript")
    assert said == "It is sunny in Oslo."
    assert fake.tool_responses == [
        {"id": call.id, "name": "get_weather", "response": {"result": "sunny in Oslo"}}
    ]
    typed = [m["clientContent"] for m in fake.messages if "clientContent" in m]
    assert typed == [
        {"turns": [{"role": "user", "parts": [{"text": "Weather in Oslo?"}]}], "turnComplete": True}
    ]


async def test_video_frames_go_as_jpeg_at_a_bounded_rate() -> None:
    async with FakeGeminiLive() as fake:
        session = await live(fake, video_fps=1.0).connect(instructions="")
        image = np.zeros((480, 640, 3), dtype=np.uint8)
        image[:, :, 0] = 200
        await session.push_video(VideoFrame(image))
        await session.push_video(VideoFrame(image))  # within the same second: dropped
        await session.push_text("what do you see?", respond=False)
        async with asyncio.timeout(5):
            while not any("clientContent" in m for m in fake.messages):
                await asyncio.sleep(0.01)
        await session.aclose()
    videos = [
        m["realtimeInput"]["video"] for m in fake.messages if "video" in m.get("realtimeInput", {})
    ]
    assert len(videos) == 1 and videos[0]["mimeType"] == "image/jpeg"
    decoded = Image.open(io.BytesIO(base64.b64decode(videos[0]["data"])))
    assert decoded.format == "JPEG" and decoded.size == (640, 480)
    red, green, _ = decoded.convert("RGB").getpixel((10, 10))  # type: ignore[misc]
    assert red > 150 and green < 50


async def test_user_speech_over_the_reply_interrupts_it() -> None:
    async with FakeGeminiLive(replies=["A long answer " * 20], pace=0.02) as fake:
        session = await live(fake).connect(instructions="")
        await speak(session)
        await events_until(session, lambda e: e.type == "audio")
        for frame in tone_frames(0.1, 16000):  # the user talks over the model
            await session.push_audio(frame)
        events = await events_until(session, lambda e: e.type == "user_speech_started")
        await session.aclose()
    assert events[-1].type == "user_speech_started"
    assert not any(e.type == "response_done" for e in events)


async def test_client_interrupt_drops_the_rest_of_the_reply() -> None:
    async with FakeGeminiLive(replies=["A long answer " * 10, "Second."], pace=0.01) as fake:
        session = await live(fake).connect(instructions="")
        await session.push_text("talk")
        await events_until(session, lambda e: e.type == "audio")
        await session.interrupt(played_seconds=0.05)
        rest = await events_until(session, lambda e: e.type == "response_done")
        assert not any(e.type in ("audio", "agent_transcript") for e in rest)
        await session.push_text("again")
        after = await events_until(session, lambda e: e.type == "response_done")
        await session.aclose()
    assert any(e.type == "audio" for e in after)


async def test_history_is_seeded_without_asking_for_a_reply() -> None:
    async with FakeGeminiLive() as fake:
        ctx = ChatContext()
        ctx.set_instructions("sys")
        ctx.add("user", "My name is Ada.")
        ctx.add("assistant", "Hi Ada.")
        session = await live(fake).connect(instructions="", chat_ctx=ctx)
        async with asyncio.timeout(5):
            while len(fake.messages) < 2:
                await asyncio.sleep(0.01)
        await session.aclose()
    assert fake.messages[1] == {
        "clientContent": {
            "turns": [
                {"role": "user", "parts": [{"text": "My name is Ada."}]},
                {"role": "model", "parts": [{"text": "Hi Ada."}]},
            ],
            "turnComplete": False,
        }
    }


async def test_bad_key_is_a_clear_error_and_not_retried() -> None:
    async with FakeGeminiLive(api_key="the-right-key") as fake:
        with pytest.raises(GeminiError, match="API key not valid") as info:
            await live(fake, max_retries=2).connect(instructions="")
    assert info.value.status == 1007 and not info.value.retryable
    assert len(fake.headers) == 1


async def test_refused_handshake_is_retried_then_reported() -> None:
    async with FakeGeminiLive(reject_status=503) as fake:
        with pytest.raises(GeminiError, match="HTTP 503") as info:
            await live(fake, max_retries=1).connect(instructions="")
    assert info.value.retryable
    assert len(fake.headers) == 2


async def test_setup_that_never_completes_times_out() -> None:
    async with FakeGeminiLive(stall_setup=True) as fake:
        with pytest.raises(GeminiError, match="did not complete setup"):
            await live(fake, connect_timeout=0.3, max_retries=0).connect(instructions="")


async def test_mid_session_disconnect_is_an_unrecoverable_error_event() -> None:
    async with FakeGeminiLive(drop_after_audio=0.2) as fake:
        session = await live(fake).connect(instructions="")
        events: list[RealtimeEvent] = []

        async def read() -> None:
            async for event in session:
                events.append(event)

        reader = asyncio.create_task(read())
        await push_until_it_fails(session)  # never raises into the engine's audio loop
        await asyncio.wait_for(reader, 5)  # the iteration ends after the error
        await session.push_audio(AudioFrame.silence(0.02, 16000))  # after the end: dropped
    errors = [e for e in events if e.type == "error"]
    assert len(errors) == 1 and not errors[0].recoverable
    error = errors[0].error
    assert isinstance(error, ProviderDisconnected) and isinstance(error, ProviderError)
    assert error.status == 1011 and "1011" in str(error) and error.retryable
    assert isinstance(error.__cause__, ConnectionClosedError)  # read or send saw it first
    with pytest.raises(GeminiError, match="closed"):
        await session.push_text("anyone there?")


@pytest.mark.parametrize(
    ("closed", "disconnect"),
    [
        (ConnectionClosedError(Close(1011, "Internal error"), None), True),
        (ConnectionClosedError(None, None), True),  # no close frame at all: 1006
        (ConnectionClosedOK(Close(1000, ""), Close(1000, ""), True), False),  # a clean close
        (ConnectionClosedError(Close(1008, "API key not valid"), None), False),  # a refusal
        (ConnectionClosedError(Close(1007, "bad setup"), None), False),
    ],
)
def test_which_closes_mid_session_are_disconnects(
    closed: ConnectionClosed, disconnect: bool
) -> None:
    error = _closed_error(closed, "mid-session", mid_session=True)
    assert isinstance(error, ProviderError)
    assert isinstance(error, ProviderDisconnected) is disconnect
    assert isinstance(error, GeminiError) is not disconnect
    assert error.status == (closed.rcvd.code if closed.rcvd else 1006)
    during_setup = _closed_error(closed, "during setup")
    assert isinstance(during_setup, GeminiError)  # retried by connect() as before


def test_missing_key_and_url_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        GeminiLive()
    model = GeminiLive(api_key="k", base_url="https://proxy.example")
    assert model.url == (
        "wss://proxy.example/ws/google.ai.generativelanguage.v1beta.GenerativeService"
        ".BidiGenerateContent"
    )
    assert model.capabilities.input_sample_rate == 16000
    assert model.capabilities.output_sample_rate == 24000
