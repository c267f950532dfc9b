"""`WorkerJob` runs until the room ends or the process is told to stop, and then tears down in
order: the entrypoint's ``finally``, ``session.close()`` (``on_exit``), ``ctx.shutdown()``
(shutdown callbacks, leave). Signals are real: the job runs in a subprocess."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from parley import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob
from parley.edge import User
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge

JOB = textwrap.dedent(
    """
    import asyncio
    import sys

    from parley import Agent, AgentSession, CascadingPipeline, JobContext, RoomOptions, WorkerJob
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge

    MODE = sys.argv[1]


    def say(*parts):
        print(*parts, flush=True)


    class MyAgent(Agent):
        def __init__(self):
            super().__init__(instructions="You are a helpful meeting assistant.")

        async def on_enter(self):
            say("on_enter")

        async def on_exit(self):
            say("on_exit")
            if MODE == "stuck":
                await asyncio.Event().wait()  # a teardown that never ends


    async def entrypoint(ctx: JobContext):
        async def goodbye():
            say("shutdown callback; still in the room:", ctx.connection is not None)

        ctx.add_shutdown_callback(goodbye)
        pipeline = CascadingPipeline(stt=FakeSTT(), llm=FakeLLM(), tts=FakeTTS(), vad=FakeVAD())
        session = AgentSession(agent=MyAgent(), pipeline=pipeline)
        if MODE == "lifecycle":
            try:
                await ctx.connect()
                await session.start()
                say("ready")
                await asyncio.Event().wait()
            finally:
                say("finally")
                await session.close()
                await ctx.shutdown()
        else:
            await ctx.connect()
            await session.start()
            # Fires only if the job is still running after the entrypoint returned.
            asyncio.get_running_loop().call_later(0.1, say, "alive after return")
            say("ready")


    def make_context():
        edge = InMemoryEdge(realtime_playout=False)
        return JobContext(room_options=RoomOptions(room_id="lifecycle", edge=edge))


    WorkerJob(entrypoint=entrypoint, jobctx=make_context).start()
    say("job returned")
    """
)


class JobProcess:
    def __init__(self, script: Path, mode: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(script), mode],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_line(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return
            if self.process.poll() is not None:
                time.sleep(0.2)  # let the reader thread take the last lines
                if any(text in line for line in self.lines):
                    return
                break
            time.sleep(0.05)
        raise AssertionError(f"no line with {text!r}:\n" + "\n".join(self.lines))

    def signal(self, sig: signal.Signals) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60.0) -> int:
        code = self.process.wait(timeout=timeout)
        time.sleep(0.2)  # the reader thread takes the last lines
        return code

    def index(self, text: str) -> int:
        return next(i for i, line in enumerate(self.lines) if text in line)


StartJob = Callable[[str], JobProcess]


@pytest.fixture
def job(tmp_path: Path) -> Iterator[StartJob]:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    started: list[JobProcess] = []

    def start(mode: str) -> JobProcess:
        process = JobProcess(script, mode)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def test_the_job_outlives_its_entrypoint_and_one_sigint_tears_down_in_order(job: StartJob) -> None:
    process = job("returns")
    process.wait_for_line("alive after return")  # "Session runs until manually stopped"
    assert process.process.poll() is None
    process.signal(signal.SIGINT)
    assert process.wait() == 0, "\n".join(process.lines)
    order = [process.index(t) for t in ("on_exit", "shutdown callback", "job returned")]
    assert order == sorted(order), process.lines
    assert "shutdown callback; still in the room: True" in process.lines  # leave comes after


def test_sigterm_runs_the_entrypoints_finally_then_on_exit_then_shutdown(job: StartJob) -> None:
    process = job("lifecycle")
    process.wait_for_line("ready")
    process.signal(signal.SIGTERM)
    assert process.wait() == 0, "\n".join(process.lines)
    order = [process.index(t) for t in ("finally", "on_exit", "shutdown callback", "job returned")]
    assert order == sorted(order), process.lines
    assert sum("on_exit" in line for line in process.lines) == 1


def test_a_second_signal_forces_the_exit_when_teardown_hangs(job: StartJob) -> None:
    process = job("stuck")
    process.wait_for_line("ready")
    process.signal(signal.SIGINT)
    process.wait_for_line("on_exit")  # and there it hangs
    assert process.process.poll() is None
    process.signal(signal.SIGINT)
    assert process.wait(timeout=30) == -signal.SIGINT  # killed by it: 130 in a shell
    assert any("forcing the exit" in line for line in process.lines), process.lines
    assert not any("job returned" in line for line in process.lines)


# --- in process: how a room ends ------------------------------------------------------------


class Quiet(Agent):
    def __init__(self) -> None:
        super().__init__("You help.")
        self.exited = 0

    async def on_exit(self) -> None:
        self.exited += 1


def fake_pipeline() -> CascadingPipeline:
    return CascadingPipeline(stt=FakeSTT(), llm=FakeLLM(), tts=FakeTTS(), vad=FakeVAD())


async def test_the_room_ends_after_the_last_person_leaves() -> None:
    edge = InMemoryEdge(users=(), realtime_playout=False)
    agent = Quiet()
    contexts: list[JobContext] = []

    async def entrypoint(ctx: JobContext) -> None:
        contexts.append(ctx)
        await ctx.connect()
        await AgentSession(agent, fake_pipeline()).start()

    options = RoomOptions(room_id="auto-end", edge=edge, session_timeout_seconds=0.05)
    job = asyncio.create_task(WorkerJob(entrypoint, lambda: JobContext(room_options=options)).run())
    connection = await edge.wait_for_connection("auto-end")
    await connection.add_participant(User(name="Ada", id="ada"))
    await connection.add_participant(User(name="Bob", id="bob"))
    await connection.remove_participant("ada")
    for _ in range(20):
        await asyncio.sleep(0)
    assert not job.done()  # Bob is still there
    await connection.remove_participant("bob")
    await asyncio.wait_for(job, 30)
    assert contexts[0].end_reason == "the last participant left"
    assert agent.exited == 1 and connection.closed


async def test_without_auto_end_the_room_stays_open_when_everyone_left() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    contexts: list[JobContext] = []

    async def entrypoint(ctx: JobContext) -> None:
        contexts.append(ctx)
        await ctx.connect()
        await AgentSession(Quiet(), fake_pipeline()).start()

    options = RoomOptions(
        room_id="stays", edge=edge, auto_end_session=False, session_timeout_seconds=0
    )
    job = asyncio.create_task(WorkerJob(entrypoint, lambda: JobContext(room_options=options)).run())
    connection = await edge.wait_for_connection("stays")
    await connection.remove_participant("user")
    for _ in range(50):
        await asyncio.sleep(0)
    assert not job.done()
    contexts[0].end("test over")  # what a signal does
    await asyncio.wait_for(job, 30)


async def test_a_room_nobody_joins_ends_after_no_participant_timeout_seconds() -> None:
    edge = InMemoryEdge(users=(), realtime_playout=False)
    contexts: list[JobContext] = []

    async def entrypoint(ctx: JobContext) -> None:
        contexts.append(ctx)
        await ctx.connect()
        await AgentSession(Quiet(), fake_pipeline()).start()

    options = RoomOptions(room_id="empty", edge=edge, no_participant_timeout_seconds=0.05)
    await asyncio.wait_for(
        WorkerJob(entrypoint, lambda: JobContext(room_options=options)).run(), 30
    )
    assert contexts[0].end_reason == "nobody joined"


async def test_an_entrypoint_that_starts_no_session_ends_the_job() -> None:
    edge = InMemoryEdge(realtime_playout=False)

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()

    options = RoomOptions(room_id="nothing", edge=edge)
    await asyncio.wait_for(
        WorkerJob(entrypoint, lambda: JobContext(room_options=options)).run(), 30
    )


async def test_an_entrypoint_error_is_raised_after_the_teardown() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    agent = Quiet()

    async def entrypoint(ctx: JobContext) -> None:
        await ctx.connect()
        await AgentSession(agent, fake_pipeline()).start()
        raise LookupError("boom")

    options = RoomOptions(room_id="boom", edge=edge)
    with pytest.raises(LookupError, match="boom"):
        await WorkerJob(entrypoint, lambda: JobContext(room_options=options)).run()
    assert agent.exited == 1


# --- RoomOptions that cannot work are refused --------------------------------------------------


async def test_an_auth_token_on_an_edge_parley_does_not_serve_is_refused() -> None:
    ctx = JobContext(room_options=RoomOptions(edge=InMemoryEdge(), auth_token="secret"))
    with pytest.raises(ValueError, match="auth_token"):
        await ctx.connect()


def test_impossible_timeouts_are_refused() -> None:
    with pytest.raises(ValueError, match="session_timeout_seconds"):
        RoomOptions(session_timeout_seconds=-1)
    with pytest.raises(ValueError, match="no_participant_timeout_seconds"):
        RoomOptions(no_participant_timeout_seconds=0)
    with pytest.raises(ValueError, match="auth_token"):
        RoomOptions(auth_token="")
