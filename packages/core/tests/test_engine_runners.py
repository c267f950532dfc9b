"""Both runners against a fake host: no session, no Edge; the history keeps what was heard.

The agent's audio goes to a gated output that accepts exactly ``limit`` seconds and then holds
the next write until a flush, so the playout position at an interruption is known exactly
(no wall clock): a user who interrupts there heard that much and no more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import numpy as np
import pytest
from parley.cascade import CascadingParts, CascadingRunner
from parley.chat import ChatContext, ToolCall
from parley.edge import AudioOutput, Connection
from parley.events import (
    AgentTurnEnded,
    Interrupted,
    SessionEvent,
    SessionState,
    ToolCalled,
    Transcript,
)
from parley.flow import ConversationFlow
from parley.frames import AudioFrame
from parley.llm import LLM
from parley.metrics import SessionMetrics, TurnMetrics
from parley.pipeline import CascadingPipeline, RealtimePipeline
from parley.policy import InterruptionOptions
from parley.realtime import Realtime, RealtimeCapabilities, RealtimeEvent, RealtimeSession
from parley.realtime_runner import RealtimeRunner
from parley.testing import FakeLLM, FakeSTT, FakeTTS
from parley.tools import FunctionTool, function_tool

RATE = 48000
FRAME = 0.02
PER_CHAR = 0.05  # seconds of audio per character, for both fake voices


class FakeHost:
    """A `RunnerHost` that records what the runner did."""

    def __init__(self, tools: Sequence[FunctionTool] = ()) -> None:
        self.chat_ctx = ChatContext()
        self.metrics = SessionMetrics()
        self.state = SessionState.LISTENING
        self.flow = ConversationFlow()
        self.flow.session = self
        self.instructions = "Be brief."
        self.llm: LLM | None = None
        self.events: list[SessionEvent] = []
        self.errors: list[tuple[str, BaseException]] = []
        self.turns: list[TurnMetrics] = []
        self.failed: BaseException | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self._tools = list(tools)

    def tools(self) -> list[FunctionTool]:
        return list(self._tools)

    def emit(self, event: SessionEvent) -> None:
        self.events.append(event)

    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None:
        self.errors.append((source, error))

    def fail(self, error: BaseException) -> None:
        self.failed = error

    def close_soon(self) -> None:
        pass

    def set_state(self, state: SessionState) -> None:
        self.state = state

    def touch_activity(self) -> None:
        pass

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        async def run() -> None:
            await awaitable

        task = asyncio.ensure_future(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def turn_completed(self, turn: TurnMetrics) -> None:
        self.turns.append(turn)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


class GatedOutput(AudioOutput):
    """Plays whatever it gets at once, up to ``limit`` seconds; the write past it waits for a
    flush (which drops it). ``limit=None``: no gate."""

    sample_rate = RATE
    channels = 1

    def __init__(self) -> None:
        self.limit: float | None = None
        self.played = 0.0
        self.at_gate = asyncio.Event()
        self._waiting: tuple[asyncio.Future[None], float] | None = None

    async def write(self, frame: AudioFrame) -> None:
        if self.limit is not None and self.played + frame.duration > self.limit + 1e-9:
            waiter = asyncio.get_running_loop().create_future()
            self._waiting = (waiter, frame.duration)
            self.at_gate.set()
            await waiter
            return
        self.played += frame.duration

    def open(self) -> None:
        """Lift the gate; a held write is played."""
        self.limit = None
        if self._waiting is not None:
            (waiter, seconds), self._waiting = self._waiting, None
            self.played += seconds
            waiter.set_result(None)

    def flush(self) -> float:
        if self._waiting is None:
            return 0.0
        (waiter, seconds), self._waiting = self._waiting, None
        waiter.set_result(None)
        return seconds

    async def wait_for_playout(self) -> None:
        pass

    @property
    def buffered(self) -> float:
        return 0.0


class FakeConnection:
    def __init__(self) -> None:
        self.audio_output = GatedOutput()


async def until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


def cascading(host: FakeHost, llm: LLM) -> tuple[CascadingRunner, GatedOutput]:
    connection = FakeConnection()
    parts = CascadingParts(
        FakeSTT(None), llm, FakeTTS(sample_rate=RATE, seconds_per_char=PER_CHAR), None, None
    )
    runner = CascadingRunner(host, cast(Connection, connection), CascadingPipeline(), parts)
    host.llm = llm
    return runner, connection.audio_output


# Long and short words, interrupted inside a long word and inside a short one.
LONG_THEN_SHORT = "Unquestionably it is a magnificent, breathtaking, extraordinary panorama."
SHORT_THEN_LONG = "I am so very incomprehensibly tired of waiting around."
CASES = [
    (LONG_THEN_SHORT, 1.54, "Unquestionably it is a"),  # cut inside "magnificent,"
    (LONG_THEN_SHORT, 0.5, ""),  # cut inside "Unquestionably"
    (SHORT_THEN_LONG, 1.0, "I am so very"),  # cut inside "incomprehensibly"
    (SHORT_THEN_LONG, 1.52, "I am so very incomprehensibly"),  # cut inside "tired"
]


@pytest.mark.parametrize(("text", "cut", "heard"), CASES)
async def test_cascading_history_keeps_what_was_heard_of_an_interrupted_reply(
    text: str, cut: float, heard: str
) -> None:
    host = FakeHost()
    llm = FakeLLM(["Okay.", text])
    runner, output = cascading(host, llm)
    await runner.start()
    try:
        runner.user_text("Hello.")  # a first, whole reply teaches the voice's rate
        await until(lambda: len(host.of(AgentTurnEnded)) == 1)
        output.limit = output.played + round(cut / FRAME) * FRAME
        runner.user_text("Describe the view.")
        await output.at_gate.wait()
        runner.interrupt()
        await until(lambda: len(host.of(AgentTurnEnded)) == 2)
    finally:
        await runner.aclose()
    ended = host.of(AgentTurnEnded)[-1]
    assert ended.interrupted and ended.text == heard
    said = [m.content for m in host.chat_ctx if m.role == "assistant"]
    assert said == ["Okay.", heard] if heard else said == ["Okay."]
    assert len(host.of(Interrupted)) == 1


async def test_cascading_runner_answers_a_turn_and_reports_it_to_the_host() -> None:
    host = FakeHost()
    runner, _ = cascading(host, FakeLLM(["Hi there."]))
    await runner.start()
    try:
        runner.user_text("Hello.")
        await until(lambda: host.turns)
    finally:
        await runner.aclose()
    assert [(m.role, m.content) for m in host.chat_ctx] == [
        ("user", "Hello."),
        ("assistant", "Hi there."),
    ]
    assert host.turns[0].user_text == "Hello." and not host.turns[0].interrupted
    assert Transcript("agent", "Hi there.", True) in host.events
    assert host.state is SessionState.LISTENING and not host.errors


class ScriptedRealtimeSession(RealtimeSession):
    """Speaks a text on request: audio at ``PER_CHAR`` seconds a character, then its
    transcript; a partial user transcript marks the end of each script."""

    def __init__(self) -> None:
        super().__init__()
        self.interruptions: list[float | None] = []
        self.tool_results: list[str] = []

    async def speak(self, text: str) -> None:
        await self._emit(RealtimeEvent("response_started"))
        tone = (np.ones(int(RATE * FRAME)) * 3000).astype(np.int16)
        for _ in range(round(len(text) * PER_CHAR / FRAME)):
            await self._emit(RealtimeEvent("audio", audio=AudioFrame(tone, RATE)))
        await self._emit(RealtimeEvent("agent_transcript", text=text, final=True))
        await self._emit(RealtimeEvent("response_done"))
        await self.mark()

    async def call_tool(self, call: ToolCall) -> None:
        await self._emit(RealtimeEvent("tool_call", tool_call=call))

    async def user_coughs(self) -> None:
        await self._emit(RealtimeEvent("user_speech_started"))
        await self._emit(RealtimeEvent("user_speech_stopped"))
        await self.mark()

    async def mark(self) -> None:
        await self._emit(RealtimeEvent("user_transcript", text="(mark)", final=False))

    async def push_audio(self, frame: AudioFrame) -> None:
        pass

    async def push_text(self, text: str, *, respond: bool = True) -> None:
        pass

    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        self.interruptions.append(played_seconds)

    async def send_tool_result(self, call: ToolCall, output: str) -> None:
        self.tool_results.append(output)


class ScriptedRealtime(Realtime):
    capabilities = RealtimeCapabilities(input_sample_rate=RATE, output_sample_rate=RATE)

    def __init__(self) -> None:
        self.session = ScriptedRealtimeSession()

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] = (),
        chat_ctx: ChatContext | None = None,
    ) -> RealtimeSession:
        return self.session


def realtime(host: FakeHost) -> tuple[RealtimeRunner, GatedOutput, ScriptedRealtimeSession]:
    connection = FakeConnection()
    model = ScriptedRealtime()
    runner = RealtimeRunner(host, cast(Connection, connection), RealtimePipeline(model), model)
    return runner, connection.audio_output, model.session


def marks(host: FakeHost) -> int:
    return sum(1 for e in host.of(Transcript) if e.text == "(mark)")


@pytest.mark.parametrize(("text", "cut", "heard"), CASES)
async def test_realtime_history_keeps_what_was_heard_of_an_interrupted_reply(
    text: str, cut: float, heard: str
) -> None:
    host = FakeHost()
    runner, output, model = realtime(host)
    await runner.start()
    try:
        output.limit = round(cut / FRAME) * FRAME
        await model.speak(text)
        await output.at_gate.wait()
        await until(lambda: marks(host) == 1)  # the whole reply reached the runner
        runner.interrupt()
        await until(lambda: host.of(AgentTurnEnded))
        await until(lambda: model.interruptions)
    finally:
        await runner.aclose()
    ended = host.of(AgentTurnEnded)[-1]
    assert ended.interrupted and ended.text == heard
    said = [m.content for m in host.chat_ctx if m.role == "assistant"]
    assert said == ([heard] if heard else [])
    assert model.interruptions == [pytest.approx(round(cut / FRAME) * FRAME)]


async def test_realtime_runner_honours_its_interruption_options() -> None:
    """A cough (speech shorter than ``min_duration``) only pauses the reply: it resumes."""
    host = FakeHost()
    connection = FakeConnection()
    model = ScriptedRealtime()
    options = RealtimePipeline(
        model, interruption=InterruptionOptions(min_duration=30.0, false_interruption_timeout=0.01)
    )
    runner = RealtimeRunner(host, cast(Connection, connection), options, model)
    output = connection.audio_output
    output.limit = 0.5
    await runner.start()
    try:
        await model.session.speak("Hello there, how are you?")
        await output.at_gate.wait()
        await until(lambda: marks(host) == 1)
        await model.session.user_coughs()
        await until(lambda: marks(host) == 2)
        output.open()
        await until(lambda: host.of(AgentTurnEnded))
    finally:
        await runner.aclose()
    assert [e.false_interruption for e in host.of(Interrupted)] == [True]
    assert not host.of(AgentTurnEnded)[0].interrupted
    assert model.session.interruptions == [] and host.metrics.false_interruptions == 1


async def test_realtime_tools_run_through_the_shared_tool_runner() -> None:
    @function_tool
    async def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    host = FakeHost([lookup])
    runner, _, model = realtime(host)
    await runner.start()
    try:
        await model.call_tool(ToolCall("lookup", '{"q": "x"}', id="c1"))
        await until(lambda: model.tool_results)
    finally:
        await runner.aclose()
    assert model.tool_results == ["found x"]
    assert [(e.name, e.result) for e in host.of(ToolCalled)] == [("lookup", "found x")]
    assert host.metrics.tool_calls == 1
