"""Both API styles, the job API, the realtime pipeline and conversation flows run on one engine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from parley import (
    Agent,
    AgentSession,
    CascadingPipeline,
    ConversationFlow,
    JobContext,
    RealTimePipeline,
    RealtimePipeline,
    RoomOptions,
    TurnOptions,
    User,
    WorkerJob,
)
from parley.chat import ChatContext, ToolCall
from parley.events import AgentTurnEnded, SessionState, ToolCalled, UserTurnStarted
from parley.llm import LLMChunk
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge
from parley.testing.realtime import FakeRealtime
from parley.tools import FunctionTool


async def until(predicate: Any, timeout: float = 30.0) -> None:
    """Wait for ``predicate`` (state with no event to await); the deadline only catches hangs."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_style_a_join_simple_response_and_tool() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    from parley.testing.llm import Reply

    llm = FakeLLM(
        [Reply(tool_calls=[ToolCall("get_weather", '{"location": "Oslo"}')]), "Sunny in Oslo."]
    )

    async def create_agent(**kwargs: Any) -> Agent:
        agent = Agent(
            edge=edge,
            agent_user=User(name="Assistant", id="agent"),
            instructions="You are a helpful voice assistant.",
            llm=llm,
            tts=FakeTTS(),
            stt=FakeSTT(["hi"]),
        )

        @agent.llm.register_function(description="Get the current weather for a location")
        async def get_weather(location: str) -> str:
            return f"The weather in {location} is sunny."

        return agent

    agent = await create_agent()
    assert agent.llm.tools.get("get_weather") is not None
    finished = asyncio.Event()

    async def join_call() -> None:
        call = await agent.create_call("default", "style-a")
        async with agent.join(call) as session:
            assert session is agent.session
            await agent.simple_response("What is the weather in Oslo?")
            await agent.finish()
        finished.set()

    task = asyncio.create_task(join_call())
    connection = await edge.wait_for_connection("style-a")
    await until(lambda: agent.session is not None and agent.session.metrics.turns == 1)
    session = agent.session
    assert session is not None
    assert session.chat_ctx.last("assistant").content == "Sunny in Oslo."  # type: ignore[union-attr]
    assert [m.content for m in session.chat_ctx if m.role == "tool"] == [
        "The weather in Oslo is sunny."
    ]
    await connection.close()  # the call ends: finish() returns and the block closes the session
    await asyncio.wait_for(finished.wait(), 30)
    await task
    assert session.state is SessionState.CLOSED


async def test_style_b_persona_with_worker_job() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    log: list[str] = []

    class Concierge(Agent):
        def __init__(self) -> None:
            super().__init__(instructions="You are a helpful meeting assistant.")

        async def on_enter(self) -> None:
            log.append("enter")
            await self.session.say("Hello! How can I help you today?")  # type: ignore[union-attr]

        async def on_exit(self) -> None:
            log.append("exit")

    sessions: list[AgentSession] = []

    async def entrypoint(ctx: JobContext) -> None:
        session = AgentSession(
            agent=Concierge(),
            pipeline=CascadingPipeline(
                stt=FakeSTT(["book a room"]),
                llm=FakeLLM(["Done, room booked."]),
                tts=FakeTTS(),
                vad=FakeVAD(),
                turn=TurnOptions(min_endpointing_delay=0.05),
            ),
            wake_up=30,
        )
        sessions.append(session)
        await ctx.connect()
        await session.start()
        await ctx.wait_for_shutdown()

    job = WorkerJob(
        entrypoint=entrypoint,
        jobctx=lambda: JobContext(
            room_options=RoomOptions(room_id="demo", name="Assistant", edge=edge)
        ),
    )
    runner = asyncio.create_task(job.run())
    connection = await edge.wait_for_connection("demo")
    await until(lambda: bool(sessions) and sessions[0].metrics.tts_characters > 0)
    await connection.push_speech(0.4)
    await connection.push_silence(0.6)
    await until(lambda: sessions[0].metrics.turns == 1)
    assert sessions[0].chat_ctx.last("assistant").content == "Done, room booked."  # type: ignore[union-attr]
    assert connection.agent_user.name == "Assistant"
    await connection.close()
    await asyncio.wait_for(runner, 30)
    assert log == ["enter", "exit"]
    assert sessions[0].state is SessionState.CLOSED


def test_room_options_reject_unknown_options() -> None:
    with pytest.raises(TypeError, match=r"unknown RoomOptions: romm_id"):
        RoomOptions.from_dict({"romm_id": "x"})
    with pytest.raises(TypeError):
        RoomOptions(romm_id="x")  # type: ignore[call-arg]


def test_worker_job_needs_an_async_entrypoint() -> None:
    with pytest.raises(TypeError, match="async function"):
        WorkerJob(entrypoint=lambda ctx: None)  # type: ignore[arg-type,return-value]


async def test_session_without_connection_explains_what_to_do() -> None:
    session = AgentSession(
        Agent("x"), CascadingPipeline(stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS())
    )
    with pytest.raises(RuntimeError, match=r"ctx\.connect"):
        await session.start()


async def test_realtime_pipeline_with_barge_in_and_tools() -> None:
    assert RealTimePipeline is RealtimePipeline
    # The answer after the tool lasts 11 s: the barge-in lands inside it however slow the
    # machine, and the test waits for audio played, not for time passed.
    seconds_per_char = 0.5
    model = FakeRealtime(
        replies=[ToolCall("lookup", '{"q": "x"}'), "A long answer " * 20],
        transcripts=["look it up", "stop"],
        seconds_per_char=seconds_per_char,
    )
    agent = Agent("Be brief.")

    @agent.tools.register
    async def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    edge = InMemoryEdge()
    from parley.edge import Call

    connection = await edge.join(Call("default", "rt", edge), agent.agent_user)
    session = AgentSession(agent, RealtimePipeline(model))
    ended: list[AgentTurnEnded] = []
    tools: list[ToolCalled] = []
    session.events.subscribe(ended.append, AgentTurnEnded)
    session.events.subscribe(tools.append, ToolCalled)
    await session.start(connection)
    await connection.push_speech(0.3, realtime=True)
    await connection.push_silence(0.3, realtime=True)
    await until(lambda: bool(tools))
    assert tools[0].result == "found x"
    await until(lambda: session.state is SessionState.SPEAKING)
    output = connection.audio_output
    await until(lambda: output.seconds_played >= 0.3)  # some of the answer was heard
    flushes = output.flush_count
    await connection.push_speech(0.2, realtime=True)
    await until(lambda: bool(ended))
    assert ended[0].interrupted
    assert output.flush_count > flushes
    rt = model.sessions[0]
    await until(lambda: bool(rt.interruptions))
    played = rt.interruptions[0]
    assert played is not None and 0 < played < seconds_per_char * len("The tool said: found x")
    await session.close()


class RetrievalFlow(ConversationFlow):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []
        self.ended = 0

    async def on_turn_start(self, text: str) -> None:
        self.started.append(text)

    async def on_turn_end(self) -> None:
        self.ended += 1

    def process_with_llm(
        self, ctx: ChatContext, tools: Sequence[FunctionTool], **options: Any
    ) -> AsyncIterator[LLMChunk]:
        ctx.add("system", "Context: the office opens at 9.")
        return super().process_with_llm(ctx, tools, **options)


async def test_conversation_flow_adds_user_message_once_and_can_augment() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    flow = RetrievalFlow()
    llm = FakeLLM(["It opens at 9."])
    agent = Agent("x")
    session = AgentSession(
        agent,
        CascadingPipeline(
            stt=FakeSTT(["when does it open"]),
            llm=llm,
            tts=FakeTTS(),
            vad=FakeVAD(),
            turn=TurnOptions(min_endpointing_delay=0.05),
        ),
        conversation_flow=flow,
    )
    from parley.edge import Call

    connection = await edge.join(Call("default", "flow", edge), agent.agent_user)
    await session.start(connection)
    await connection.push_speech(0.4)
    await connection.push_silence(0.6)
    await until(lambda: flow.ended == 1)
    assert flow.started == ["when does it open"]
    users = [m.content for m in agent.chat_ctx if m.role == "user"]
    assert users == ["when does it open"]
    sent = llm.calls[0].ctx
    assert sent.messages[-1].content == "Context: the office opens at 9."
    assert all("Context:" not in m.content for m in agent.chat_ctx), (
        "augmentation stays out of history"
    )
    await session.close()


async def test_non_interruptible_say_plays_through_user_speech() -> None:
    edge = InMemoryEdge()
    agent = Agent("x")
    session = AgentSession(
        agent, CascadingPipeline(stt=FakeSTT(None), llm=FakeLLM([]), tts=FakeTTS(), vad=FakeVAD())
    )
    from parley.edge import Call

    connection = await edge.join(Call("default", "ni", edge), agent.agent_user)
    await session.start(connection)
    handle = session.say("Please listen to this whole important notice.", interruptible=False)
    # The user talks over the notice (2.3 s of audio) once it is playing, however slow the
    # machine: each detected start of speech notes whether the notice was still playing.
    overlapped: list[bool] = []
    session.events.subscribe(lambda _: overlapped.append(not handle.done), UserTurnStarted)
    await connection.audio_output.wait_for_audio(since=0.0, timeout=30)
    await connection.push_speech(0.3, realtime=True)
    await connection.push_silence(0.4, realtime=True)
    await asyncio.wait_for(handle.wait(), 30)
    assert overlapped == [True], "the user's speech was heard while the notice played"
    assert not handle.interrupted
    assert connection.audio_output.flush_count == 0
    await session.close()


async def test_video_processors_see_frames_and_errors_are_isolated() -> None:
    import numpy as np
    from parley import VideoProcessor
    from parley.edge import Participant
    from parley.events import ErrorOccurred
    from parley.frames import VideoFrame

    class Counter(VideoProcessor):
        def __init__(self) -> None:
            self.frames: list[VideoFrame] = []
            self.started = False
            self.closed = False

        async def start(self, session: AgentSession) -> None:
            self.started = True

        async def process(self, frame: VideoFrame, participant: Participant) -> None:
            self.frames.append(frame)

        async def aclose(self) -> None:
            self.closed = True

    class Broken(VideoProcessor):
        async def process(self, frame: VideoFrame, participant: Participant) -> None:
            raise ValueError("bad frame")

    counter = Counter()
    agent = Agent("x", processors=[Broken(), counter])
    edge = InMemoryEdge(realtime_playout=False)
    from parley.edge import Call

    connection = await edge.join(Call("default", "video", edge), agent.agent_user)
    session = AgentSession(
        agent, CascadingPipeline(stt=FakeSTT(None), llm=FakeLLM([]), tts=FakeTTS())
    )
    errors: list[ErrorOccurred] = []
    session.events.subscribe(errors.append, ErrorOccurred)
    await session.start(connection)
    assert counter.started
    frame = VideoFrame(np.zeros((4, 4, 3), dtype=np.uint8))
    await connection.push_video(frame)
    await until(lambda: bool(counter.frames))
    assert counter.frames[0] is frame
    assert errors and errors[0].source == "video"
    await session.close()
    assert counter.closed
