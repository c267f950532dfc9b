"""Scripted conversations over the in-memory Edge: the behaviours users feel."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from parley import Agent, AgentSession, CascadingPipeline, InterruptionOptions, TurnOptions
from parley.chat import ToolCall
from parley.events import (
    AgentTurnEnded,
    ErrorOccurred,
    Interrupted,
    SessionEvent,
    SessionState,
    ToolCalled,
    WakeUp,
)
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, Reply
from parley.testing.edge import InMemoryConnection
from parley.tools import function_tool


@dataclass
class Rig:
    agent: Agent
    session: AgentSession
    connection: InMemoryConnection
    llm: FakeLLM
    events: list[SessionEvent] = field(default_factory=list)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Wait for state with no event to await; the deadline only catches hangs."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    async def speak(self, seconds: float = 0.5, silence: float = 0.5) -> None:
        await self.connection.push_speech(seconds, realtime=True)
        await self.connection.push_silence(silence, realtime=True)

    def history(self) -> list[tuple[str, str]]:
        return [(m.role, m.content) for m in self.agent.chat_ctx if m.role != "system"]


async def make_rig(
    *,
    script: list[str] | None,
    replies: list[Any],
    agent: Agent | None = None,
    tts: FakeTTS | None = None,
    interruption: InterruptionOptions | None = None,
    wake_up: float | None = None,
    realtime_playout: bool = True,
    llm: FakeLLM | None = None,
    first_piece_words: int | None = None,
) -> Rig:
    edge = InMemoryEdge(realtime_playout=realtime_playout)
    agent = agent or Agent("You are a test agent.")
    llm = llm or FakeLLM(replies)
    pipeline = CascadingPipeline(
        stt=FakeSTT(script, min_silence=0.2),
        llm=llm,
        tts=tts or FakeTTS(),
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.05),
        interruption=interruption
        or InterruptionOptions(min_duration=0.2, false_interruption_timeout=0.4),
        first_piece_words=first_piece_words,
    )
    session = AgentSession(agent, pipeline, wake_up=wake_up)
    from parley.edge import Call

    connection = await edge.join(Call("default", "test", edge), agent.agent_user)
    rig = Rig(agent, session, connection, llm)
    session.events.subscribe(rig.events.append, SessionEvent)
    await session.start(connection)
    return rig


@pytest.fixture
async def tasks_before() -> set[asyncio.Task[Any]]:
    return set(asyncio.all_tasks())


async def assert_no_tasks_left(before: set[asyncio.Task[Any]]) -> None:
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    assert not left, f"tasks left running: {left}"


async def test_multi_turn_context_reaches_the_llm(tasks_before: set[asyncio.Task[Any]]) -> None:
    rig = await make_rig(
        script=["my name is ada", "what is my name"],
        replies=["Nice to meet you, Ada.", "Your name is Ada."],
        realtime_playout=False,
    )
    await rig.speak()
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 1)
    await rig.speak()
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 2)
    second_call = rig.llm.calls[1]
    sent = [(m.role, m.content) for m in second_call.ctx if m.role != "system"]
    assert sent == [
        ("user", "my name is ada"),
        ("assistant", "Nice to meet you, Ada."),
        ("user", "what is my name"),
    ]
    assert rig.history()[-1] == ("assistant", "Your name is Ada.")
    await rig.session.close()
    await assert_no_tasks_left(tasks_before)


async def test_barge_in_flushes_output_and_truncates_history(
    tasks_before: set[asyncio.Task[Any]],
) -> None:
    long_reply = " ".join(f"Sentence number {i} is here." for i in range(1, 30))
    # (a lone "stop" would only interrupt: see test_interruption_only_words.py)
    script = ["tell me a story", "what about cats"]
    rig = await make_rig(script=script, replies=[long_reply, "Okay."])
    await rig.speak()
    output = rig.connection.audio_output
    await rig.until(lambda: rig.session.state is SessionState.SPEAKING)
    await rig.until(lambda: output.seconds_played >= 0.6)  # let some of the reply play
    flushes_before = output.flush_count
    await rig.speak(0.5, 0.5)
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 2)
    assert output.flush_count > flushes_before
    first = rig.of(AgentTurnEnded)[0]
    assert first.interrupted
    assert 0 < len(first.text) < len(long_reply)
    assert long_reply.startswith(first.text.rsplit(" ", 1)[0])
    assistant = [m for m in rig.agent.chat_ctx if m.role == "assistant"]
    assert assistant[0].interrupted and assistant[0].content == first.text
    assert rig.history()[-2:] == [("user", "what about cats"), ("assistant", "Okay.")]
    assert rig.session.metrics.interruptions == 1
    await rig.session.close()
    await assert_no_tasks_left(tasks_before)


async def test_false_interruption_resumes_the_reply() -> None:
    reply = "This is the first sentence. This is the second sentence. And a third one here."
    # manual-mode STT: the cough yields no transcript at all. min_duration is far beyond the
    # cough even if the loop stalls while its frames arrive (the duration timer is wall time).
    rig = await make_rig(
        script=None,
        replies=[reply],
        interruption=InterruptionOptions(min_duration=5.0, false_interruption_timeout=0.3),
    )
    handle = rig.session.generate_reply("talk")
    await rig.until(lambda: rig.session.state is SessionState.SPEAKING)
    await rig.until(lambda: rig.connection.audio_output.seconds_played >= 0.3)
    # a cough: shorter than min_duration, and the STT has nothing to transcribe for it
    await rig.connection.push_speech(0.1, realtime=True)
    await rig.connection.push_silence(0.6, realtime=True)
    await asyncio.wait_for(handle.wait(), 30)
    assert not handle.interrupted
    assert rig.of(Interrupted) and rig.of(Interrupted)[0].false_interruption
    assert rig.session.metrics.false_interruptions == 1
    assert rig.history()[-1] == ("assistant", reply)
    await rig.session.close()


async def test_tool_call_result_is_used() -> None:
    agent = Agent("Use tools.")

    @agent.tools.register
    async def get_weather(location: str) -> str:
        """Get the weather for a location."""
        return f"sunny in {location}"

    llm = FakeLLM(
        [
            Reply(tool_calls=[ToolCall("get_weather", '{"location": "Paris"}')]),
            "It is sunny in Paris.",
        ]
    )
    rig = await make_rig(
        script=["weather in paris"], replies=[], agent=agent, llm=llm, realtime_playout=False
    )
    await rig.speak()
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    called = rig.of(ToolCalled)
    assert called and called[0].result == "sunny in Paris" and not called[0].error
    roles = [m.role for m in agent.chat_ctx if m.role != "system"]
    assert roles == ["user", "assistant", "tool", "assistant"]
    second = rig.llm.calls[1].ctx
    assert next(m for m in second if m.role == "tool").content == "sunny in Paris"
    assert rig.history()[-1] == ("assistant", "It is sunny in Paris.")
    await rig.session.close()


@pytest.mark.parametrize("fails", [False, True])
async def test_a_result_that_is_the_reply_is_said_as_it_is(fails: bool) -> None:
    agent = Agent("Use tools.")

    @agent.tools.register
    @function_tool(result_is_reply=True)
    async def tell_joke() -> str:
        """Tell a joke."""
        if fails:
            raise RuntimeError("the joke book is closed")
        return "Why did the bicycle fall over? It was two tired."

    llm = FakeLLM([Reply(tool_calls=[ToolCall("tell_joke", "{}")]), "Sorry, no joke today."])
    rig = await make_rig(
        script=["tell me a joke"], replies=[], agent=agent, llm=llm, realtime_playout=False
    )
    await rig.speak()
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    said = "Sorry, no joke today." if fails else "Why did the bicycle fall over? It was two tired."
    assert rig.history()[-1] == ("assistant", said)
    # A failed call goes back to the model, which answers it; a result is said without it.
    assert len(rig.llm.calls) == (2 if fails else 1)
    await rig.session.close()


@pytest.mark.parametrize("preamble", ["", "Let me check."])
async def test_first_piece_is_cut_short_in_whichever_round_speaks_first(preamble: str) -> None:
    agent = Agent("Use tools.")

    @agent.tools.register
    async def get_weather(location: str) -> str:
        """Get the weather for a location."""
        return f"sunny in {location}"

    llm = FakeLLM(
        [
            Reply(preamble, tool_calls=[ToolCall("get_weather", '{"location": "Paris"}')]),
            "It is sunny and warm in Paris today.",
        ]
    )
    tts = FakeTTS()
    rig = await make_rig(
        script=["weather in paris"],
        replies=[],
        agent=agent,
        llm=llm,
        tts=tts,
        realtime_playout=False,
        first_piece_words=3,
    )
    await rig.speak()
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    answer = ["It is sunny", "and warm in Paris today."]
    if preamble:  # the preamble was the first piece; the answer is spoken whole
        answer = [preamble, "It is sunny and warm in Paris today."]
    assert tts.texts == answer
    await rig.session.close()


async def test_failing_and_unknown_tools_are_reported_to_the_model() -> None:
    agent = Agent("Use tools.")

    @agent.tools.register
    async def explode() -> str:
        """Always fails."""
        raise RuntimeError("boom")

    calls = [ToolCall("explode", "{}"), ToolCall("missing_tool", "{}")]
    llm = FakeLLM([Reply(tool_calls=calls), "Sorry, that failed."])
    rig = await make_rig(script=["do it"], replies=[], agent=agent, llm=llm, realtime_playout=False)
    await rig.speak()
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    results = {m.name: m.content for m in agent.chat_ctx if m.role == "tool"}
    assert results["explode"] == "error: boom"
    assert "unknown tool" in results["missing_tool"]
    assert rig.session.metrics.tool_errors == 2
    assert rig.history()[-1] == ("assistant", "Sorry, that failed.")
    assert rig.session.state is SessionState.LISTENING
    await rig.session.close()


async def test_tool_interrupted_mid_flight_is_never_spoken(
    tasks_before: set[asyncio.Task[Any]],
) -> None:
    agent = Agent("Use tools.")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    @agent.tools.register
    async def slow_lookup() -> str:
        """Takes a while."""
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late result"

    llm = FakeLLM([Reply(tool_calls=[ToolCall("slow_lookup", "{}")]), "Okay, stopping."])
    rig = await make_rig(script=["look it up", "never mind"], replies=[], agent=agent, llm=llm)
    await rig.speak()
    await asyncio.wait_for(started.wait(), 30)
    await rig.speak(0.4, 0.5)
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 2)
    assert cancelled.is_set()
    # the interrupted turn never went back to the model with the tool's result
    assert len(rig.llm.calls) == 2
    assert [m.content for m in rig.llm.calls[1].ctx if m.role == "user"] == [
        "look it up",
        "never mind",
    ]
    spoken = " ".join(e.text for e in rig.of(AgentTurnEnded))
    assert "late result" not in spoken
    tool_messages = [m for m in agent.chat_ctx if m.role == "tool"]
    assert tool_messages and "cancelled" in tool_messages[0].content
    assert rig.history()[-1] == ("assistant", "Okay, stopping.")
    # the history stays valid for providers: every tool call has its result
    call_ids = {c.id for m in agent.chat_ctx for c in m.tool_calls}
    assert call_ids == {m.tool_call_id for m in tool_messages}
    await rig.session.close()
    await assert_no_tasks_left(tasks_before)


async def test_failing_llm_reports_error_and_session_survives() -> None:
    llm = FakeLLM([Reply(error=RuntimeError("provider down")), "Back again."])
    rig = await make_rig(
        script=["hello", "hello again"], replies=[], llm=llm, realtime_playout=False
    )
    await rig.speak()
    await rig.until(lambda: bool(rig.of(ErrorOccurred)))
    error = rig.of(ErrorOccurred)[0]
    assert error.source == "llm" and error.recoverable and "provider down" in str(error.error)
    await rig.until(lambda: rig.session.state is SessionState.LISTENING)
    await rig.speak()
    await rig.until(lambda: any(e.text == "Back again." for e in rig.of(AgentTurnEnded)))
    await rig.session.close()


async def test_hanging_llm_times_out_instead_of_hanging() -> None:
    from parley.policy import ProviderTimeouts

    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("x")
    pipeline = CascadingPipeline(
        stt=FakeSTT([]),
        llm=FakeLLM([Reply(hang=True)]),
        tts=FakeTTS(),
        timeouts=ProviderTimeouts(llm_first_token=0.2),
    )
    session = AgentSession(agent, pipeline)
    from parley.edge import Call

    await session.start(await edge.join(Call("default", "hang", edge), agent.agent_user))
    errors: list[ErrorOccurred] = []
    session.events.subscribe(errors.append, ErrorOccurred)
    handle = session.generate_reply("hi")
    await asyncio.wait_for(handle.wait(), 30)
    assert errors and isinstance(errors[0].error, TimeoutError)
    await session.close()


async def test_wake_up_fires_after_silence_and_resets_on_speech() -> None:
    # The wake-up period is long next to the moments when nobody speaks (before the VAD hears
    # the user, between the end of speech and the reply), so a slow loop cannot fire it there.
    wake_up = 1.0
    rig = await make_rig(script=["hi"], replies=["Hello."], wake_up=wake_up, realtime_playout=False)
    fired: list[float] = []
    rig.session.on_wake_up = lambda: fired.append(asyncio.get_running_loop().time())
    # keep talking for longer than the wake-up period: it must not fire while the user speaks
    await rig.connection.push_speech(1.5 * wake_up, realtime=True)
    assert not fired
    await rig.connection.push_silence(0.5, realtime=True)  # past the VAD's silence hangover
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    assert not fired
    await rig.until(lambda: bool(fired))
    assert len(rig.of(WakeUp)) == 1
    await asyncio.sleep(1.5 * wake_up)  # another period: still silent, but it fired already
    assert len(fired) == 1, "fires once per silence"
    await rig.session.close()


async def test_close_is_idempotent_and_on_exit_runs_once(
    tasks_before: set[asyncio.Task[Any]],
) -> None:
    class Persona(Agent):
        def __init__(self) -> None:
            super().__init__("persona")
            self.exits = 0
            self.entered = False

        async def on_enter(self) -> None:
            self.entered = True
            await self.session.say("Welcome.")  # type: ignore[union-attr]

        async def on_exit(self) -> None:
            self.exits += 1

    persona = Persona()
    tts = FakeTTS()
    rig = await make_rig(script=[], replies=[], agent=persona, tts=tts, wake_up=10)
    assert persona.entered and rig.history() == [("assistant", "Welcome.")]
    await asyncio.gather(rig.session.close(), rig.session.close())
    await rig.session.close()
    assert persona.exits == 1
    assert rig.session.state is SessionState.CLOSED
    assert rig.connection.closed
    await assert_no_tasks_left(tasks_before)
    with pytest.raises(RuntimeError):
        rig.session.say("too late")
