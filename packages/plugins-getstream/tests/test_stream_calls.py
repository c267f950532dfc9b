"""Agents on Stream calls end to end: the edge with a fake in place of the SDK's joined call
(`FakeCallConnection`) and Stream's REST API under respx, the testing kit's fake parts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import respx
from fake_stream import API_KEY, API_SECRET, FakeCallConnection, FakeJoin, FakeStreamAPI
from parley import Agent, AgentLauncher, User
from parley.edge import ConnectionClosed, DataReceived, ParticipantJoined, ParticipantLeft
from parley.events import AgentTurnEnded, Interrupted, SessionEvent, SessionState
from parley.policy import InterruptionOptions, TurnOptions
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, until
from parley_getstream import StreamConnection, StreamEdge

# The fake answers leave out the call type's settings tree, which the edge never reads.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Missing value of non-optional type settings:RuntimeWarning"
)

QUESTION = "what is the weather in oslo"
ANSWER = "It is sunny in Oslo."


@pytest.fixture
def stream_api() -> Iterator[FakeStreamAPI]:
    with respx.mock(assert_all_called=False) as router:
        yield FakeStreamAPI(router)


def stream_edge(join: FakeJoin, **options: Any) -> StreamEdge:
    return StreamEdge(api_key=API_KEY, api_secret=API_SECRET, join=join, **options)


def make_agent(
    edge: StreamEdge, script: list[str], replies: list[str], seconds_per_char: float = 0.01
) -> Agent:
    return Agent(
        "You are a test agent.",
        edge=edge,
        agent_user=User(name="Assistant", id="agent"),
        stt=FakeSTT(script, min_silence=0.2),
        llm=FakeLLM(replies),
        tts=FakeTTS(seconds_per_char=seconds_per_char),
        vad=FakeVAD(),
        pipeline_options={
            "turn": TurnOptions(min_endpointing_delay=0.05),
            "interruption": InterruptionOptions(min_duration=0.2, false_interruption_timeout=0.4),
        },
    )


def connection_of(agent: Agent) -> StreamConnection:
    assert agent.session is not None
    connection = agent.session.connection
    assert isinstance(connection, StreamConnection)
    return connection


async def test_a_conversation_on_a_stream_call(stream_api: FakeStreamAPI) -> None:
    join = FakeJoin()
    edge = stream_edge(join)
    agent = make_agent(edge, [QUESTION], ["Hello! How can I help you today?", ANSWER])
    call = await agent.create_call("default", "conversation")
    async with agent.join(call) as session:
        rtc = join.connections[-1]
        connection = connection_of(agent)
        seen: list[object] = []
        connection.events.subscribe(seen.append)
        events: list[SessionEvent] = []
        session.events.subscribe(events.append, SessionEvent)
        assert rtc.connected and rtc.user_id == "agent" and rtc.create
        assert rtc.subscription_config is None  # audio only: the SFU sends it unasked
        assert rtc.published is connection.track  # the agent's voice is published

        ada = rtc.join("ada", "Ada")
        [joined] = [e for e in seen if isinstance(e, ParticipantJoined)]
        assert (joined.participant.id, joined.participant.user) == (
            ada.session_id,
            User(name="Ada", id="ada"),
        )
        await agent.simple_response("Hello!")
        await until(lambda: session.metrics.turns == 1)
        greeted = rtc.sent.seconds
        assert greeted > 0.2 and rtc.sent.sample_rates == {48000}

        await rtc.speak(ada, 0.6)  # Ada asks; the fake STT transcribes
        await rtc.pause(ada, 0.5)
        await until(lambda: session.metrics.turns == 2)
        assert agent.llm.calls[-1].last_user_text == QUESTION
        await until(lambda: rtc.sent.seconds >= greeted + len(ANSWER) * 0.01)
        # Transcripts reach the call as Stream custom events sent by the agent.
        await until(
            lambda: (
                {"type": "transcript", "role": "agent", "text": ANSWER, "final": True}
                in stream_api.custom_events("transcript")
            )
        )
        assert {"type": "transcript", "role": "user", "text": QUESTION, "final": True} in (
            stream_api.custom_events("transcript")
        )
        assert all(body["user_id"] == "agent" for _, body in stream_api.events)
        assert {cid for cid, _ in stream_api.events} == {"default:conversation"}
        assert not [e for e in events if isinstance(e, Interrupted)]
    assert rtc.left
    assert isinstance(seen[-1], ConnectionClosed)
    assert stream_api.calls["default:conversation"]["created_by"]["id"] == "agent"
    assert stream_api.users["agent"]["name"] == "Assistant"
    await until(lambda: edge._stream is None)  # the HTTP pool went with the call


async def test_barge_in_flushes_the_published_track(stream_api: FakeStreamAPI) -> None:
    join = FakeJoin()
    long_reply = " ".join(f"Sentence number {i} is here." for i in range(1, 20))
    agent = make_agent(
        stream_edge(join), ["tell me a story", "stop please now"], [long_reply, "Okay."], 0.05
    )
    async with agent.join(await agent.create_call("default", "barge-in")) as session:
        rtc = join.connections[-1]
        output = connection_of(agent).output
        ended: list[AgentTurnEnded] = []
        session.events.subscribe(ended.append, AgentTurnEnded)
        ada = rtc.join("ada", "Ada")
        await rtc.speak(ada, 0.5)
        await rtc.pause(ada, 0.5)
        await until(lambda: session.state is SessionState.SPEAKING)
        await until(lambda: output.seconds_played >= 0.6)  # some of the story was heard
        await rtc.speak(ada, 0.6)  # Ada talks over the agent
        await rtc.pause(ada, 0.5)
        await until(lambda: session.metrics.interruptions == 1)
        assert output.flushes >= 1 and rtc.sent.flushes >= 1  # the SDK's queue was cleared
        await until(lambda: ended and ended[-1].text == "Okay.")
        assert not ended[-1].interrupted
        first = next(m for m in agent.chat_ctx if m.role == "assistant")
        assert first.interrupted and 0 < len(first.content) < len(long_reply)
        # Far less than the story reached the SDK: the rest was never sent.
        assert rtc.sent.seconds < len(long_reply) * 0.05 / 2


async def test_an_agent_alone_on_the_call_is_closed_by_the_launcher(
    stream_api: FakeStreamAPI,
) -> None:
    join = FakeJoin()

    async def create_agent(**kwargs: Any) -> Agent:
        return make_agent(stream_edge(join), [], ["Hi."])

    async def join_call(agent: Agent, call_type: str, call_id: str, **kwargs: Any) -> None:
        async with agent.join(await agent.create_call(call_type, call_id)):
            await agent.finish()

    launcher = AgentLauncher(
        create_agent, join_call, agent_idle_timeout=0.3, maintenance_interval=0.05, warm_up=False
    )
    await launcher.start()
    try:
        session = await launcher.start_session("idle-call")
        rtc = join.connections[-1]
        ada = rtc.join("ada", "Ada")
        connection = connection_of(session.agent)
        left: list[ParticipantLeft] = []
        connection.events.subscribe(left.append, ParticipantLeft)
        await asyncio.sleep(0.5)  # longer than the idle timeout: Ada is there
        assert not session.closed
        rtc.leave_call(ada)
        assert [e.participant.user.id for e in left] == ["ada"]
        assert connection.humans() == []
        await asyncio.wait_for(session.wait(), 10)  # alone: the launcher ends the session
        assert rtc.left
    finally:
        await launcher.stop(drain_timeout=0)


async def test_the_call_ending_ends_the_session(stream_api: FakeStreamAPI) -> None:
    join = FakeJoin()
    agent = make_agent(stream_edge(join), [], [])
    async with agent.join(await agent.create_call("default", "ended")) as session:
        rtc = join.connections[-1]
        rtc.end_call()
        await asyncio.wait_for(session.wait(), 10)
        assert connection_of(agent).close_reason == "the call ended"
        assert rtc.left


async def test_participants_already_there_and_their_messages(stream_api: FakeStreamAPI) -> None:
    from fake_stream import FakeParticipant

    grace = FakeParticipant("grace", "sess-grace", name="Grace")
    join = FakeJoin(present=[grace])
    agent = make_agent(stream_edge(join), [], ["You typed hello."])
    async with agent.join(await agent.create_call("default", "typed")) as session:
        rtc = join.connections[-1]
        connection = connection_of(agent)
        assert [p.user.id for p in connection.humans()] == ["grace"]
        assert connection.participants["agent"].is_agent  # and not twice (its own session)
        received: list[DataReceived] = []
        connection.events.subscribe(received.append, DataReceived)
        rtc.send_custom(grace, {"type": "text", "text": "hello"})  # a typed message
        await until(lambda: session.metrics.turns == 1)
        assert agent.llm.calls[-1].last_user_text == "hello"
        assert received[0].participant.id == "sess-grace"
        rtc.send_custom(rtc.own, {"type": "transcript", "text": "echo"})  # our own: ignored
        assert len(received) == 1
        await connection.send_data({"type": "note"}, to="sess-grace")
        assert stream_api.custom_events("note") == [{"type": "note", "to": "grace"}]
        with pytest.raises(KeyError):
            await connection.send_data({"type": "note"}, to="nobody")


async def test_video_comes_in_when_asked(stream_api: FakeStreamAPI) -> None:
    import getstream_rtc

    class VideoFrame:  # a decoded SDK frame: packed I420
        width, height, rtp_timestamp = 4, 2, 90_000
        data = np.concatenate(
            [np.full(8, 76, np.uint8), np.full(2, 85, np.uint8), np.full(2, 255, np.uint8)]
        )  # red

    class VideoTrack:
        track_type = getstream_rtc.TrackType.VIDEO

        def __init__(self, participant: Any) -> None:
            self.participant = participant

        async def video_frames(self) -> Any:
            yield VideoFrame()

    join = FakeJoin()
    edge = stream_edge(join, video=True)
    assert edge.capabilities.video_in
    agent = make_agent(edge, [], [])
    async with agent.join(await agent.create_call("default", "video")):
        rtc: FakeCallConnection = join.connections[-1]
        config = rtc.subscription_config
        assert config is not None and len(config.default.track_types) == 2
        ada = rtc.join("ada", "Ada")
        frames = connection_of(agent).video_input()
        rtc.emit("track_added", VideoTrack(ada))
        participant, frame = await asyncio.wait_for(anext(frames), 5)
        assert participant.user.id == "ada"
        assert frame.data.shape == (2, 4, 3) and frame.timestamp == 1.0
        red, green, blue = (int(c) for c in frame.data[0, 0])
        assert red > 200 and green < 60 and blue < 60
        await frames.aclose()
