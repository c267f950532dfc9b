"""`AgentSession.start` takes VideoSDK's documented keywords: ``wait_for_participant`` and
``run_until_shutdown`` (besides our ``connection``), and refuses any other by name."""

from __future__ import annotations

import asyncio

import pytest
from parley import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob
from parley.edge import Call, User
from parley.events import SessionState
from parley.session import SessionClosed
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, until
from parley.testing.edge import InMemoryConnection


class Greeter(Agent):
    def __init__(self) -> None:
        super().__init__("You greet people.")
        self.entered = asyncio.Event()
        self.exited = 0

    async def on_enter(self) -> None:
        self.entered.set()
        await self.session.say("Hello there!")  # type: ignore[union-attr]

    async def on_exit(self) -> None:
        self.exited += 1


def make_session(agent: Agent | None = None) -> tuple[AgentSession, FakeSTT]:
    stt = FakeSTT()
    pipeline = CascadingPipeline(stt=stt, llm=FakeLLM(), tts=FakeTTS(), vad=FakeVAD())
    return AgentSession(agent or Greeter(), pipeline), stt


async def join(edge: InMemoryEdge, call_id: str = "room") -> InMemoryConnection:
    return await edge.join(Call("default", call_id, edge), User(name="Agent", id="agent"))


async def test_unknown_keywords_are_refused_with_the_accepted_names() -> None:
    session, _ = make_session()
    edge = InMemoryEdge(realtime_playout=False)
    connection = await join(edge)
    with pytest.raises(TypeError) as info:
        await session.start(connection, wait_for_participants=True, room="x")
    message = str(info.value)
    assert "room, wait_for_participants" in message
    for name in ("connection", "wait_for_participant", "run_until_shutdown"):
        assert name in message
    assert session.connection is None  # nothing was started
    await session.start(connection=connection)  # connection= still works as a keyword
    assert session.state is not SessionState.FAILED
    await session.close()


async def test_wait_for_participant_warms_up_then_starts_when_someone_joins() -> None:
    agent = Greeter()
    session, stt = make_session(agent)
    edge = InMemoryEdge(users=(), realtime_playout=False)
    connection = await join(edge)
    start = asyncio.create_task(session.start(connection, wait_for_participant=True))
    await until(lambda: stt.warmed_up)
    for _ in range(20):  # let the start run as far as it can on its own
        await asyncio.sleep(0)
    assert not start.done() and not agent.entered.is_set()
    await connection.add_participant(User(name="Ada", id="ada"))
    await asyncio.wait_for(start, 30)
    assert agent.entered.is_set()
    await until(lambda: connection.audio_output.seconds_played > 0, what="the greeting")
    await session.close()


async def test_wait_for_participant_returns_at_once_when_someone_is_there() -> None:
    agent = Greeter()
    session, _ = make_session(agent)
    connection = await join(InMemoryEdge(realtime_playout=False))  # the default user is in
    await asyncio.wait_for(session.start(connection, wait_for_participant=True), 30)
    assert agent.entered.is_set()
    await session.close()


async def test_a_call_that_ends_before_anyone_joins_closes_the_session() -> None:
    agent = Greeter()
    session, _ = make_session(agent)
    connection = await join(InMemoryEdge(users=(), realtime_playout=False))
    start = asyncio.create_task(session.start(connection, wait_for_participant=True))
    for _ in range(20):
        await asyncio.sleep(0)
    await connection.close()
    with pytest.raises(SessionClosed, match="before anyone joined"):
        await asyncio.wait_for(start, 30)
    assert session.closed and session.state is SessionState.CLOSED
    assert not agent.entered.is_set() and agent.exited == 1


async def test_run_until_shutdown_returns_when_the_call_ends() -> None:
    agent = Greeter()
    session, _ = make_session(agent)
    connection = await join(InMemoryEdge(realtime_playout=False))
    start = asyncio.create_task(session.start(connection, run_until_shutdown=True))
    await asyncio.wait_for(agent.entered.wait(), 30)
    for _ in range(20):
        await asyncio.sleep(0)
    assert not start.done()  # it runs the session rather than return after on_enter
    await connection.close()
    await asyncio.wait_for(start, 30)
    assert session.closed and agent.exited == 1


async def test_run_until_shutdown_in_a_job_connects_waits_and_shuts_down() -> None:
    """The VideoSDK v1 entrypoint: no ``ctx.connect()``; start blocks until the room ends."""
    edge = InMemoryEdge(users=(), realtime_playout=False)
    agent = Greeter()
    contexts: list[JobContext] = []
    sessions: list[AgentSession] = []

    async def entrypoint(ctx: JobContext) -> None:
        contexts.append(ctx)
        session, _ = make_session(agent)
        sessions.append(session)
        await session.start(wait_for_participant=True, run_until_shutdown=True)

    def make_context() -> JobContext:
        return JobContext(room_options=RoomOptions(room_id="videosdk-room", edge=edge))

    job = asyncio.create_task(WorkerJob(entrypoint=entrypoint, jobctx=make_context).run())
    connection = await edge.wait_for_connection("videosdk-room")
    for _ in range(20):
        await asyncio.sleep(0)
    assert not agent.entered.is_set()  # nobody is there yet
    await connection.add_participant(User(name="Ada", id="ada"))
    await asyncio.wait_for(agent.entered.wait(), 30)
    await until(lambda: connection.audio_output.seconds_played > 0, what="the greeting")
    for _ in range(20):
        await asyncio.sleep(0)
    assert not job.done()  # start() keeps the session running
    await connection.close()  # the room ends
    await asyncio.wait_for(job, 30)
    assert sessions[0].closed and agent.exited == 1
    assert contexts[0].connection is None  # the job context was shut down


async def test_run_until_shutdown_in_a_job_that_is_told_to_stop_while_waiting() -> None:
    edge = InMemoryEdge(users=(), realtime_playout=False)
    agent = Greeter()
    contexts: list[JobContext] = []
    sessions: list[AgentSession] = []

    async def entrypoint(ctx: JobContext) -> None:
        contexts.append(ctx)
        session, _ = make_session(agent)
        sessions.append(session)
        await session.start(wait_for_participant=True, run_until_shutdown=True)

    def make_context() -> JobContext:
        return JobContext(room_options=RoomOptions(room_id="stop-room", edge=edge))

    job = asyncio.create_task(WorkerJob(entrypoint=entrypoint, jobctx=make_context).run())
    connection = await edge.wait_for_connection("stop-room")
    contexts[0].end()  # what a signal does to the job
    await asyncio.wait_for(job, 30)
    assert not agent.entered.is_set() and agent.exited == 1
    assert sessions[0].state is SessionState.CLOSED  # stopped, not failed
    assert connection.closed


async def test_without_a_connection_or_job_the_error_says_what_to_do() -> None:
    session, _ = make_session()
    with pytest.raises(RuntimeError, match=r"ctx\.connect"):
        await session.start(wait_for_participant=True)


def test_pipeline_is_exported_from_parley() -> None:
    import parley
    from parley.host import Pipeline

    assert "Pipeline" in parley.__all__
    assert parley.Pipeline is Pipeline
