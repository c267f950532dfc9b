"""The in-memory edge: joining, participants, pushed media, data both ways, closing."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest
from parley.edge import (
    ConnectionClosed,
    DataReceived,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    User,
)
from parley.frames import AudioFrame, VideoFrame
from parley.testing import (
    DEFAULT_USER,
    FakeSTT,
    FakeTTS,
    FakeVAD,
    InMemoryConnection,
    InMemoryEdge,
    no_leaked_tasks,
)

AGENT = User(name="Assistant", id="agent")


async def join(edge: InMemoryEdge, call_id: str = "demo") -> InMemoryConnection:
    call = await edge.create_call("default", call_id)
    return await edge.join(call, AGENT)


async def read_audio(
    connection: InMemoryConnection, count: int
) -> list[tuple[Participant, AudioFrame]]:
    received = []
    async for item in connection.audio_input():
        received.append(item)
        if len(received) == count:
            break
    return received


async def test_joining_makes_the_connection_reachable_with_the_default_user() -> None:
    edge = InMemoryEdge()
    waiting = asyncio.create_task(edge.wait_for_connection("demo"))
    await asyncio.sleep(0)
    connection = await join(edge)
    assert await waiting is connection
    assert edge.connections["demo"] is connection
    assert await edge.wait_for_connection() is connection
    assert connection.participants["agent"].is_agent
    assert [p.user for p in connection.humans()] == [DEFAULT_USER]
    assert connection.audio_output.sample_rate == edge.capabilities.output_sample_rate == 24000
    await edge.aclose()


async def test_waiting_for_a_call_nobody_joins_times_out_clearly() -> None:
    edge = InMemoryEdge()
    await join(edge, "other")
    with pytest.raises(TimeoutError, match="'demo'"):
        await edge.wait_for_connection("demo", timeout=0.01)
    await edge.aclose()


async def test_participants_come_and_go_with_events() -> None:
    edge = InMemoryEdge(users=())
    connection = await join(edge)
    seen: list[object] = []
    connection.events.subscribe(seen.append)
    alice = await connection.add_participant(User("Alice", "alice"), {"role": "host"})
    assert connection.humans() == [alice]
    assert alice.metadata == {"role": "host"}
    with pytest.raises(ValueError, match="already"):
        await connection.add_participant(User("Alice", "alice"))
    await connection.remove_participant("alice")
    with pytest.raises(ValueError, match="no participant 'alice'"):
        await connection.remove_participant("alice")
    assert seen == [ParticipantJoined(alice), ParticipantLeft(alice)]
    with pytest.raises(ValueError, match="add_participant"):
        await connection.push_speech(0.1)
    await edge.aclose()


async def test_pushed_speech_and_silence_arrive_as_20ms_frames_fakes_can_hear() -> None:
    edge = InMemoryEdge()
    connection = await join(edge)
    await connection.push_speech(0.4)
    await connection.push_silence(0.4)
    received = await read_audio(connection, 40)
    assert {p.id for p, _ in received} == {"user"}
    frames = [f for _, f in received]
    assert {(f.sample_rate, f.samples) for f in frames} == {(16000, 320)}
    assert [f.timestamp for f in frames] == pytest.approx([i * 0.02 for i in range(40)])
    stt, vad = FakeSTT(script=["hello"]), FakeVAD()
    stream, vad_stream = stt.stream(), vad.stream()
    vad_events = []
    for frame in frames:
        await stream.push(frame)
        vad_events.extend(vad_stream.push(frame))
    assert stt.finals == ["hello"]
    assert [e.type for e in vad_events] == ["speech_started", "speech_ended"]
    await stt.aclose()
    await edge.aclose()


async def test_audio_from_several_participants_keeps_who_said_it() -> None:
    edge = InMemoryEdge(users=(User("A", "a"), User("B", "b")))
    connection = await join(edge)
    await connection.push_speech(0.02, "b")
    await connection.push_audio(AudioFrame.silence(0.01, 16000), "a")
    received = await read_audio(connection, 2)
    assert [(p.id, f.samples) for p, f in received] == [("b", 320), ("a", 160)]
    with pytest.raises(ValueError, match="present: a, agent, b"):
        await connection.push_silence(0.02, "c")
    await edge.aclose()


async def test_realtime_push_paces_frames_and_measures_input_lateness() -> None:
    edge = InMemoryEdge(measure_input=True)
    connection = await join(edge)
    start = time.perf_counter()
    pusher = asyncio.create_task(connection.push_speech(0.1, realtime=True))
    received = await read_audio(connection, 5)
    await pusher
    # Each frame is delivered once its 20 ms have been "captured": never ahead of time.
    assert time.perf_counter() - start >= 0.1 - 0.005
    assert len(received) == 5
    assert connection.input_lateness is not None
    assert len(connection.input_lateness) == 5
    assert min(connection.input_lateness) >= 0.0
    await edge.aclose()


async def test_a_slow_reader_holds_back_the_pusher() -> None:
    edge = InMemoryEdge(input_queue_frames=3)
    connection = await join(edge)
    pusher = asyncio.create_task(connection.push_speech(0.2))
    await asyncio.sleep(0)
    assert not pusher.done()
    assert connection.frames_pushed == 4
    assert len(await read_audio(connection, 10)) == 10
    await pusher
    await edge.aclose()


async def test_typed_text_and_data_messages_reach_the_agent_as_events() -> None:
    edge = InMemoryEdge()
    connection = await join(edge)
    received: list[DataReceived] = []
    connection.events.subscribe(received.append, DataReceived)
    await connection.send_text("hello agent")
    await connection.send_message({"type": "custom", "n": 1})
    assert [(e.participant.id, e.message) for e in received] == [
        ("user", {"type": "text", "text": "hello agent"}),
        ("user", {"type": "custom", "n": 1}),
    ]
    await edge.aclose()


async def test_data_the_agent_sends_is_recorded_as_json() -> None:
    edge = InMemoryEdge()
    connection = await join(edge)
    waiter = asyncio.create_task(connection.wait_for_data(lambda m: m["type"] == "transcript"))
    await asyncio.sleep(0)
    await connection.send_data({"type": "state", "state": "listening"})
    await connection.send_data({"type": "transcript", "text": ("hi",)}, to="user")
    sent = await waiter
    assert sent.message == {"type": "transcript", "text": ["hi"]}
    assert sent.to == "user"
    assert connection.messages("state") == [{"type": "state", "state": "listening"}]
    assert len(connection.messages()) == 2
    with pytest.raises(TypeError, match="JSON"):
        await connection.send_data({"bad": object()})
    with pytest.raises(ValueError, match="nobody"):
        await connection.send_data({"type": "x"}, to="nobody")
    await edge.aclose()


async def test_video_keeps_only_the_latest_frame() -> None:
    edge = InMemoryEdge()
    connection = await join(edge)
    images = [VideoFrame(np.full((2, 2, 3), i, dtype=np.uint8), timestamp=i) for i in range(3)]
    for image in images:
        await connection.push_video(image)
    iterator = connection.video_input()
    participant, latest = await anext(iterator)
    assert participant.id == "user"
    assert latest is images[-1]
    await connection.close()
    assert [item async for item in iterator] == []


async def test_remote_close_ends_everything_and_leaves_no_task() -> None:
    async with no_leaked_tasks():
        edge = InMemoryEdge()
        connection = await join(edge)
        closed: list[ConnectionClosed] = []
        connection.events.subscribe(closed.append, ConnectionClosed)
        reader = asyncio.create_task(read_audio(connection, 1000))
        await connection.push_speech(0.1)
        await connection.audio_output.write(AudioFrame.silence(0.5, 24000))
        playout = asyncio.create_task(connection.audio_output.wait_for_playout())
        await asyncio.sleep(0)
        await connection.close("user hung up")
        assert len(await reader) == 5  # the iteration ended
        await playout
        await asyncio.wait_for(connection.wait_closed(), 10)
        assert closed == [ConnectionClosed("user hung up")]
        assert connection.close_reason == "user hung up"
        await connection.leave()  # idempotent, no second event
        assert len(closed) == 1
        await connection.push_speech(0.1)  # ignored once closed
        with pytest.raises(ConnectionError, match="closed"):
            await connection.send_data({"type": "late"})
        with pytest.raises(ConnectionError):
            await connection.add_participant(User("Late", "late"))
        assert edge.connections["demo"] is connection  # kept for assertions


async def test_leave_is_idempotent_and_a_new_join_is_found_again() -> None:
    async with no_leaked_tasks():
        edge = InMemoryEdge()
        first = await join(edge)
        await first.audio_output.write(AudioFrame.silence(0.1, 24000))
        await asyncio.gather(first.leave(), first.leave())
        assert first.closed
        assert first.close_reason == "left"
        waiting = asyncio.create_task(edge.wait_for_connection("demo"))
        await asyncio.sleep(0)
        assert not waiting.done()  # a closed connection is not returned
        second = await join(edge)
        assert await waiting is second
        assert edge.joined == [first, second]
        await edge.aclose()
        assert second.close_reason == "the edge closed"
        with pytest.raises(ConnectionError, match="closed"):
            await join(edge)


async def test_connections_of_edges_built_elsewhere_can_be_found() -> None:
    hidden = InMemoryEdge()  # as if resolved from the spec string "memory"
    waiting = asyncio.create_task(InMemoryEdge.wait_for_any_connection("room-42"))
    await asyncio.sleep(0)
    connection = await join(hidden, "room-42")
    assert await waiting is connection
    assert await InMemoryEdge.wait_for_any_connection("room-42") is connection
    await hidden.aclose()
    with pytest.raises(TimeoutError):
        await InMemoryEdge.wait_for_any_connection("room-42", timeout=0.01)


async def test_instant_playout_and_output_rate_are_configurable() -> None:
    edge = InMemoryEdge(realtime_playout=False, output_sample_rate=48000)
    connection = await join(edge)
    output = connection.audio_output
    assert output.sample_rate == 48000 == edge.capabilities.output_sample_rate
    await output.write(AudioFrame.silence(5.0, 48000))
    assert output.buffered == 0.0
    assert output.seconds_played == pytest.approx(5.0)
    await edge.aclose()


async def test_a_barge_in_round_trip_with_the_kit_alone() -> None:
    """What the engine's barge-in does, by hand: the agent talks, the user speaks over it, a
    VAD hears the user, the output is flushed and the talking stops with no stale frame."""
    async with no_leaked_tasks():
        edge = InMemoryEdge(max_buffer=0.2)
        connection = await join(edge)
        output = connection.audio_output
        tts, vad = FakeTTS(seconds_per_call=2.0), FakeVAD()

        async def talk() -> None:
            async for frame in tts.synthesize("a long answer"):
                await output.write(frame)

        async def listen() -> None:
            stream = vad.stream()
            async for _, frame in connection.audio_input():
                if any(e.type == "speech_started" for e in stream.push(frame)):
                    output.flush()
                    talker.cancel()
                    return

        talker = asyncio.create_task(talk())
        listener = asyncio.create_task(listen())
        await output.wait_for_audio()
        await connection.push_silence(0.06, realtime=True)
        await connection.push_speech(0.2, realtime=True)
        await listener
        with pytest.raises(asyncio.CancelledError):
            await talker
        flush = output.flushes[0]
        assert flush.dropped > 0
        assert output.frames_after(flush.at) == []
        assert tts.calls[0].cancelled
        assert output.seconds_played + output.seconds_dropped == pytest.approx(
            output.seconds_written
        )
        await edge.aclose()
