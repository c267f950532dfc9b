"""parley-openai Realtime against a local fake server speaking the Realtime WebSocket protocol."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pytest
from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected, ProviderError
from parley.frames import AudioFrame
from parley.llm import Usage
from parley.realtime import RealtimeEvent
from parley.testing import FakeVAD
from parley.tools import FunctionTool
from parley_openai.realtime import OpenAIRealtimeSession, RealtimeAPIError, realtime_url
from websockets.exceptions import ConnectionClosedError

Until = Callable[..., Awaitable[list[RealtimeEvent]]]


def pcm(seconds: float, level: float = 0.3, seed: int = 0) -> bytes:
    samples = int(seconds * 24000)
    rng = np.random.default_rng(seed)
    return (rng.uniform(-level, level, samples) * 32767).astype("<i2").tobytes()


def frames(seconds: float, level: float = 0.3) -> list[AudioFrame]:
    data = pcm(seconds, level)
    step = 480 * 2  # 20 ms
    return [AudioFrame.from_pcm16(data[i : i + step], 24000) for i in range(0, len(data), step)]


def weather_tool() -> FunctionTool:
    async def get_weather(location: str) -> str:
        """Get the weather for a city."""
        return "sunny"

    return FunctionTool(get_weather)


def test_the_url_is_derived_from_the_base_url() -> None:
    assert realtime_url("https://api.openai.com/v1", "gpt-realtime-2.1") == (
        "wss://api.openai.com/v1/realtime?model=gpt-realtime-2.1"
    )
    assert realtime_url("http://localhost:8000/v1/?x=1", "m") == (
        "ws://localhost:8000/v1/realtime?x=1&model=m"
    )


async def test_setup_sends_the_documented_session_update_and_history(realtime_server: Any) -> None:
    items: list[dict[str, Any]] = []

    async def scenario(conn: Any) -> None:
        await conn.handshake()
        for _ in range(5):
            items.append((await conn.expect("conversation.item.create"))["item"])

    realtime_server.scenario = scenario
    ctx = ChatContext()
    ctx.add("system", "Be nice.")  # the instructions themselves: not repeated
    ctx.add("system", "The user is called Ada.")
    ctx.add("user", "Weather in Paris?")
    ctx.add("assistant", "", tool_calls=[ToolCall("get_weather", '{"location":"Paris"}', id="c1")])
    ctx.add("tool", "sunny", tool_call_id="c1", name="get_weather")
    ctx.add("assistant", "It is sunny and", interrupted=True)
    model = realtime_server.model(session_options={"audio": {"output": {"speed": 1.2}}})

    session = await model.connect(instructions="Be nice.", tools=[weather_tool()], chat_ctx=ctx)
    async with asyncio.timeout(5):
        while len(items) < 5:
            await asyncio.sleep(0.01)
    await session.aclose()

    (request,) = realtime_server.requests
    assert request.path == "/v1/realtime?model=gpt-test"
    assert request.headers["Authorization"] == "Bearer sk-test"
    update = realtime_server.received[0]
    pcm24 = {"type": "audio/pcm", "rate": 24000}
    assert update == {
        "type": "session.update",
        "session": {
            "type": "realtime",
            "instructions": "Be nice.",
            "output_modalities": ["audio"],
            "audio": {
                "input": {
                    "format": pcm24,
                    "turn_detection": {"type": "server_vad"},
                    "transcription": {"model": "gpt-transcribe"},
                },
                "output": {"format": pcm24, "voice": "marin", "speed": 1.2},
            },
            "tools": [
                {
                    "type": "function",
                    "name": "get_weather",
                    "description": "Get the weather for a city.",
                    "parameters": weather_tool().parameters,
                }
            ],
            "tool_choice": "auto",
        },
    }

    def message(role: str, kind: str, text: str) -> dict[str, Any]:
        return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}

    call = {"call_id": "c1", "name": "get_weather", "arguments": '{"location":"Paris"}'}
    assert items == [
        message("system", "input_text", "The user is called Ada."),
        message("user", "input_text", "Weather in Paris?"),
        {"type": "function_call", **call},
        {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
        message("assistant", "output_text", "It is sunny and…"),
    ]


@pytest.mark.parametrize("beta", [False, True], ids=["ga-events", "beta-events"])
async def test_audio_in_and_speech_transcripts_and_usage_out(
    realtime_server: Any, until: Until, beta: bool
) -> None:
    reply = [pcm(0.1, seed=1), pcm(0.1, seed=2)]
    appended: list[bytes] = []

    async def scenario(conn: Any) -> None:
        await conn.handshake()
        for _ in range(2):
            event = await conn.expect("input_audio_buffer.append")
            appended.append(base64.b64decode(event["audio"]))
        await conn.send("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u1")
        await conn.send("input_audio_buffer.speech_stopped", audio_end_ms=900, item_id="u1")
        await conn.send(
            "conversation.item.input_audio_transcription.delta", item_id="u1", delta="What"
        )
        await conn.send(
            "conversation.item.input_audio_transcription.completed",
            item_id="u1",
            content_index=0,
            transcript="What time is it?",
        )
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        transcript = "response.audio_transcript" if beta else "response.output_audio_transcript"
        await conn.send(f"{transcript}.delta", response_id="r1", item_id="a1", delta="It is")
        for piece in reply:
            await conn.audio("r1", "a1", piece, beta=beta)
        await conn.send(
            f"{transcript}.done", response_id="r1", item_id="a1", transcript="It is noon."
        )
        usage = {
            "input_tokens": 50,
            "output_tokens": 20,
            "input_token_details": {"cached_tokens": 10},
        }
        await conn.send(
            "response.done", response={"id": "r1", "status": "completed", "usage": usage}
        )

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="Be nice.")
    sent = frames(0.04)
    for frame in sent:
        await session.push_audio(frame)
    events = await until(session, "response_done")
    await session.aclose()

    assert appended == [f.to_pcm16() for f in sent]
    summary = [(e.type, e.text, e.final) for e in events if e.type != "audio"]
    assert summary == [
        ("user_speech_started", "", True),
        ("user_speech_stopped", "", True),
        ("user_transcript", "What", False),
        ("user_transcript", "What time is it?", True),
        ("response_started", "", True),
        ("agent_transcript", "It is", False),
        ("agent_transcript", "It is noon.", True),
        ("response_done", "", True),
    ]
    audio = [e.audio for e in events if e.type == "audio" and e.audio is not None]
    assert [a.to_pcm16() for a in audio] == reply
    assert all(a.sample_rate == 24000 for a in audio)
    assert audio[1].timestamp == pytest.approx(0.1)
    assert events[-1].usage == Usage(50, 20, 10)
    assert isinstance(session, OpenAIRealtimeSession)
    assert session.usage == Usage(50, 20, 10)


async def test_a_function_call_round_trip(realtime_server: Any, until: Until) -> None:
    async def scenario(conn: Any) -> None:
        await conn.handshake()
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        item = {"id": "fc1", "type": "function_call", "call_id": "call_1", "name": "get_weather"}
        await conn.send("response.output_item.added", response_id="r1", output_index=0, item=item)
        for delta in ('{"location"', ': "Paris"}'):
            await conn.send(
                "response.function_call_arguments.delta",
                response_id="r1",
                item_id="fc1",
                call_id="call_1",
                delta=delta,
            )
        arguments = '{"location": "Paris"}'
        await conn.send(
            "response.function_call_arguments.done",
            response_id="r1",
            item_id="fc1",
            call_id="call_1",
            name="get_weather",
            arguments=arguments,
        )
        done_item = {**item, "status": "completed", "arguments": arguments}
        await conn.send(
            "response.output_item.done", response_id="r1", output_index=0, item=done_item
        )
        output = await conn.expect("conversation.item.create")
        assert output["item"] == {
            "type": "function_call_output",
            "call_id": "call_1",
            "output": "It is sunny.",
        }
        await conn.nothing_more()  # no response.create while r1 is still open
        await conn.send("response.done", response={"id": "r1", "status": "completed"})
        await conn.expect("response.create")
        await conn.send("response.created", response={"id": "r2", "status": "in_progress"})
        await conn.audio("r2", "a2", pcm(0.05))
        await conn.send("response.done", response={"id": "r2", "status": "completed"})

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="x", tools=[weather_tool()])
    events = await until(session, "tool_call")
    (call,) = [e.tool_call for e in events if e.tool_call is not None]
    assert call == ToolCall("get_weather", '{"location": "Paris"}', id="call_1")

    await session.send_tool_result(call, "It is sunny.")
    events = await until(session, "response_done", count=2)
    await session.aclose()
    assert [e.type for e in events] == [
        "response_done",
        "response_started",
        "audio",
        "response_done",
    ]


async def test_interrupt_cancels_truncates_and_drops_the_late_audio(
    realtime_server: Any, until: Until
) -> None:
    truncate: dict[str, Any] = {}

    async def scenario(conn: Any) -> None:
        await conn.handshake()
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        await conn.audio("r1", "a1", pcm(0.5, seed=1))
        await conn.audio("r1", "a1", pcm(0.5, seed=2))
        await conn.expect("response.cancel")
        truncate.update(await conn.expect("conversation.item.truncate"))
        await conn.audio("r1", "a1", pcm(0.5, seed=3))  # already on the wire: must be dropped
        await conn.send("response.done", response={"id": "r1", "status": "cancelled"})
        await conn.send("response.created", response={"id": "r2", "status": "in_progress"})
        await conn.audio("r2", "a2", pcm(0.1, seed=4))
        await conn.send("response.done", response={"id": "r2", "status": "completed"})

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="x")
    before = await until(session, "audio", count=2)
    await session.interrupt(played_seconds=0.3)
    after = await until(session, "response_done", count=2)
    await session.aclose()

    assert [e.type for e in before] == ["response_started", "audio", "audio"]
    assert [e.type for e in after] == [
        "response_done",
        "response_started",
        "audio",
        "response_done",
    ]
    late = [e.audio for e in after if e.audio is not None]
    assert [a.to_pcm16() for a in late] == [pcm(0.1, seed=4)]
    assert truncate == {
        "type": "conversation.item.truncate",
        "item_id": "a1",
        "content_index": 0,
        "audio_end_ms": 300,
    }


async def test_server_vad_barge_in_is_cancelled_by_the_server(
    realtime_server: Any, until: Until
) -> None:
    async def scenario(conn: Any) -> None:
        await conn.handshake()
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        await conn.audio("r1", "a1", pcm(0.2, seed=1))
        await conn.audio("r1", "a2", pcm(0.2, seed=2))  # a second audio item in one reply
        await conn.send("input_audio_buffer.speech_started", audio_start_ms=500, item_id="u2")
        await conn.audio("r1", "a2", pcm(0.2, seed=3))  # sent before the server's own cancel
        await conn.send("response.done", response={"id": "r1", "status": "cancelled"})
        event = await conn.expect("conversation.item.truncate")  # and no response.cancel
        assert (event["item_id"], event["audio_end_ms"]) == ("a2", 50)

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="x")
    events = await until(session, "response_done")
    assert [e.type for e in events] == [
        "response_started",
        "audio",
        "audio",
        "user_speech_started",
        "response_done",
    ]
    await session.interrupt(played_seconds=0.25)  # what the engine does on user_speech_started
    async with asyncio.timeout(5):
        while not any(e["type"] == "conversation.item.truncate" for e in realtime_server.received):
            await asyncio.sleep(0.01)
    await session.aclose()


async def test_error_events_are_reported_and_the_session_goes_on(
    realtime_server: Any, until: Until
) -> None:
    async def scenario(conn: Any) -> None:
        await conn.handshake()
        await conn.send(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "response_cancel_not_active",
                "message": "none",
            },
        )
        await conn.send(
            "error",
            error={
                "type": "invalid_request_error",
                "code": "invalid_value",
                "message": "Invalid value: 'x'.",
                "param": "session.voice",
            },
        )
        await conn.send("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u1")

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="x")
    events = await until(session, "user_speech_started")
    await session.aclose()
    assert [e.type for e in events] == ["error", "user_speech_started"]
    error = events[0].error
    assert isinstance(error, RealtimeAPIError)
    assert (error.code, error.param) == ("invalid_value", "session.voice")
    assert "Invalid value: 'x'." in str(error)
    assert events[0].recoverable is True


async def test_an_error_during_setup_fails_connect(realtime_server: Any) -> None:
    async def scenario(conn: Any) -> None:
        await conn.send("session.created", session={"id": "sess_1"})
        await conn.expect("session.update")
        await conn.send(
            "error", error={"type": "invalid_request_error", "message": "Unknown tool type"}
        )

    realtime_server.scenario = scenario
    with pytest.raises(RealtimeAPIError, match="Unknown tool type"):
        await realtime_server.model().connect(instructions="x")


async def test_a_mid_stream_disconnect_ends_the_session_with_an_error(
    realtime_server: Any, until: Until
) -> None:
    async def scenario(conn: Any) -> None:
        await conn.handshake()
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        await conn.audio("r1", "a1", pcm(0.1))
        await conn.ws.close(1011, "internal error")

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="x")
    events = [e async for e in session]  # ends by itself
    assert [e.type for e in events] == ["response_started", "audio", "error"]
    error = events[-1].error
    assert isinstance(error, ProviderDisconnected) and isinstance(error, ProviderError)
    assert isinstance(error, ConnectionError)  # as it was before ProviderDisconnected
    assert error.status == 1011 and "1011" in str(error) and error.retryable
    assert isinstance(error.__cause__, ConnectionClosedError)
    assert events[-1].recoverable is False
    await session.push_audio(frames(0.02)[0])  # after the end: ignored, no exception


async def test_a_clean_close_mid_session_is_not_a_disconnect(realtime_server: Any) -> None:
    async def scenario(conn: Any) -> None:
        await conn.handshake()
        await conn.ws.close(1000, "bye")

    realtime_server.scenario = scenario
    session = await realtime_server.model().connect(instructions="x")
    events = [e async for e in session]
    assert [e.type for e in events] == ["error"]
    assert isinstance(events[0].error, ConnectionError) and "1000" in str(events[0].error)
    assert not isinstance(events[0].error, ProviderDisconnected)


async def test_a_stalled_response_times_out(realtime_server: Any) -> None:
    async def scenario(conn: Any) -> None:
        await conn.handshake()
        item = await conn.expect("conversation.item.create")
        assert item["item"]["content"] == [{"type": "input_text", "text": "Hello?"}]
        await conn.expect("response.create")
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        # ...and then nothing at all

    realtime_server.scenario = scenario
    session = await realtime_server.model(idle_timeout=0.3).connect(instructions="x")
    await session.push_text("Hello?")
    async with asyncio.timeout(5):
        events = [e async for e in session]
    assert [e.type for e in events] == ["response_started", "error"]
    assert isinstance(events[-1].error, TimeoutError)
    assert events[-1].recoverable is False


async def test_a_session_that_is_never_confirmed_times_out(realtime_server: Any) -> None:
    async def scenario(conn: Any) -> None:
        await conn.send("session.created", session={"id": "sess_1"})
        await conn.expect("session.update")  # ...never answered

    realtime_server.scenario = scenario
    with pytest.raises(TimeoutError, match="did not confirm the session"):
        await realtime_server.model(setup_timeout=0.3).connect(instructions="x")


async def test_connect_retries_overload_but_not_a_bad_key(realtime_server: Any) -> None:
    realtime_server.refusals = [503]
    session = await realtime_server.model().connect(instructions="x")
    await session.aclose()
    assert len(realtime_server.requests) == 2  # refused once, then connected

    realtime_server.requests.clear()
    with pytest.raises(RealtimeAPIError, match="refused the key") as caught:
        await realtime_server.model(api_key="sk-wrong").connect(instructions="x")
    assert caught.value.status == 401
    assert len(realtime_server.requests) == 1  # never retried


async def test_nothing_listening_fails_after_bounded_retries(realtime_server: Any) -> None:
    model = realtime_server.model(connect_retries=1)
    await realtime_server.stop()
    with pytest.raises(ConnectionError, match="after 2 attempts"):
        await model.connect(instructions="x")


async def test_parley_vad_decides_turns_when_server_vad_is_off(
    realtime_server: Any, until: Until
) -> None:
    async def scenario(conn: Any) -> None:
        update = await conn.handshake()
        assert update["session"]["audio"]["input"]["turn_detection"] is None
        while (await conn.receive())["type"] == "input_audio_buffer.append":
            pass
        assert conn.server.received[-1]["type"] == "input_audio_buffer.commit"
        await conn.expect("response.create")

    realtime_server.scenario = scenario
    model = realtime_server.model(turn_detection=None, vad=FakeVAD(threshold=0.05))
    assert model.capabilities.server_vad is False
    session = await model.connect(instructions="x")
    quiet, loud, pause = frames(1.0, level=0.0), frames(0.5), frames(0.6, level=0.0)
    for frame in [*quiet, *loud, *pause]:
        await session.push_audio(frame)
    events = await until(session, "user_speech_stopped")
    async with asyncio.timeout(5):
        while realtime_server.received[-1]["type"] != "response.create":
            await asyncio.sleep(0.01)
    await session.aclose()

    assert [e.type for e in events] == ["user_speech_started", "user_speech_stopped"]
    appended = b"".join(
        base64.b64decode(e["audio"])
        for e in realtime_server.received
        if e["type"] == "input_audio_buffer.append"
    )
    seconds = len(appended) / 48000
    assert 0.5 <= seconds < 1.5  # the speech and a short pre-roll, not the second of silence
    assert loud[0].to_pcm16() in appended


def test_vad_needs_turn_detection_off() -> None:
    from parley_openai.realtime import OpenAIRealtime

    with pytest.raises(ValueError, match="turn_detection=None"):
        OpenAIRealtime(api_key="k", vad=FakeVAD())
