"""Preemptive replies (`TurnOptions(preemptive_reply=True)`): the reply starts on the final
transcript, while the engine still waits for the end of the turn, and is heard only once the
turn is committed; when the user goes on, it is dropped without a trace.

The fake STT finals come after 0.2 s of quiet, the fake VAD ends speech after 0.32 s, and the
engine then waits ``min_endpointing_delay``: the final comes well before the commit.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from parley import Agent, AgentSession, CascadingPipeline, TurnOptions
from parley.chat import ChatContext
from parley.edge import Call
from parley.events import (
    AgentTurnEnded,
    AgentTurnStarted,
    ErrorOccurred,
    SessionEvent,
    StateChanged,
    ToolCalled,
    Transcript,
    TurnMetricsReady,
    UserTurnEnded,
)
from parley.flow import ConversationFlow
from parley.frames import AudioFrame
from parley.llm import LLMChunk
from parley.segmenting import VADSegmentedSTT
from parley.stt import BatchSTT
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, Reply, tool_call
from parley.testing.edge import InMemoryConnection
from parley.tools import FunctionTool, function_tool


class StampedLLM(FakeLLM):
    """Notes the ``perf_counter`` of every request."""

    def __init__(self, replies: list[Any], **options: Any) -> None:
        super().__init__(replies, **options)
        self.asked_at: list[float] = []

    def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncIterator[LLMChunk]:
        self.asked_at.append(time.perf_counter())
        return super().chat(ctx, tools, **options)


class Rig:
    def __init__(self, session: AgentSession, connection: InMemoryConnection, llm: StampedLLM):
        self.session = session
        self.connection = connection
        self.llm = llm
        self.events: list[tuple[float, SessionEvent]] = []
        session.events.subscribe(
            lambda event: self.events.append((time.perf_counter(), event)), SessionEvent
        )

    def of(self, kind: type) -> list[Any]:
        return [event for _, event in self.events if isinstance(event, kind)]

    def first(self, kind: type) -> float:
        return next(at for at, event in self.events if isinstance(event, kind))

    def history(self) -> list[tuple[str, str]]:
        return [(m.role, m.content) for m in self.session.chat_ctx if m.role != "system"]

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        async with asyncio.timeout(timeout):  # only catches hangs
            while not predicate():
                await asyncio.sleep(0.005)

    async def go_on_after_a_pause(self, calls_by_then: int) -> None:
        """Words, a pause that gets them a final (0.2 s of quiet) while the VAD still holds the
        turn open, ``calls_by_then`` LLM requests, then more words and the end of the turn."""
        await self.connection.push_speech(0.5, realtime=True)
        await self.connection.push_silence(0.25, realtime=True)
        await self.until(lambda: len(self.llm.calls) == calls_by_then)
        await self.connection.push_speech(0.5, realtime=True)
        await self.connection.push_silence(1.0, realtime=True)
        await self.until(lambda: bool(self.of(AgentTurnEnded)))
        await self.until(lambda: self.session.state == "listening")

    @property
    def first_audio(self) -> float:
        return self.connection.audio_output.write_times[0]


async def make_rig(
    script: list[str],
    replies: list[Any],
    *,
    preemptive: bool = True,
    agent: Agent | None = None,
    flow: ConversationFlow | None = None,
    tokens_per_second: float = 0,
) -> Rig:
    edge = InMemoryEdge(realtime_playout=False)
    agent = agent or Agent("You are a test agent.")
    llm = StampedLLM(replies, tokens_per_second=tokens_per_second)
    pipeline = CascadingPipeline(
        stt=FakeSTT(script, min_silence=0.2),
        llm=llm,
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.3, preemptive_reply=preemptive),
    )
    session = AgentSession(agent, pipeline, conversation_flow=flow)
    connection = await edge.join(Call("default", "preempt", edge), agent.agent_user)
    rig = Rig(session, connection, llm)
    await session.start(connection)
    return rig


async def test_the_reply_starts_before_the_commit_and_is_heard_only_after_it() -> None:
    rig = await make_rig(["what is the capital of italy"], ["The capital of Italy is Rome."])
    await rig.connection.push_speech(0.5, realtime=True)
    await rig.connection.push_silence(1.0, realtime=True)
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))

    committed = rig.first(UserTurnEnded)
    assert rig.llm.asked_at[0] < committed  # answered ahead
    assert rig.first(AgentTurnStarted) > committed  # but announced after
    assert rig.first_audio > committed  # and heard after
    thinking = [at for at, e in rig.events if isinstance(e, StateChanged) and e.new == "thinking"]
    assert thinking and thinking[0] > committed
    agent_lines = [at for at, e in rig.events if isinstance(e, Transcript) and e.role == "agent"]
    assert agent_lines and agent_lines[0] > committed
    assert rig.history() == [
        ("user", "what is the capital of italy"),
        ("assistant", "The capital of Italy is Rome."),
    ]
    (metrics,) = [e.metrics for e in rig.of(TurnMetricsReady)]
    assert metrics.turn == 1 and metrics.user_text == "what is the capital of italy"
    assert metrics.llm_first_token is not None and metrics.turn_committed is not None
    assert metrics.llm_first_token < metrics.turn_committed
    assert len(rig.llm.calls) == 1
    await rig.session.close()


async def test_without_the_option_the_reply_starts_at_the_commit() -> None:
    rig = await make_rig(["hello there"], ["Hi."], preemptive=False)
    await rig.connection.push_speech(0.5, realtime=True)
    await rig.connection.push_silence(1.0, realtime=True)
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    assert rig.llm.asked_at[0] > rig.first(UserTurnEnded)
    await rig.session.close()


async def test_a_reply_held_for_words_the_user_then_continued_is_dropped_without_a_trace() -> None:
    tasks_before = set(asyncio.all_tasks())
    rig = await make_rig(
        ["tell me about", "the weather in rome"],
        [Reply("A reply nobody should hear. " * 5), "It is sunny in Rome."],
        tokens_per_second=20,  # the first reply is still streaming when the user goes on
    )
    await rig.go_on_after_a_pause(calls_by_then=1)

    first, second = rig.llm.calls
    assert first.cancelled and not first.finished
    assert [m.content for m in second.ctx if m.role == "user"] == [
        "tell me about the weather in rome"
    ]
    assert rig.history() == [
        ("user", "tell me about the weather in rome"),
        ("assistant", "It is sunny in Rome."),
    ]
    # The dropped reply left nothing: one turn started and ended, numbered 1, one metrics.
    assert len(rig.of(AgentTurnStarted)) == 1 and len(rig.of(AgentTurnEnded)) == 1
    assert [e.metrics.turn for e in rig.of(TurnMetricsReady)] == [1]
    agent_said = [e.text for e in rig.of(Transcript) if e.role == "agent"]
    assert all("nobody" not in text for text in agent_said)
    await rig.session.close()
    await asyncio.sleep(0)
    left = [t for t in asyncio.all_tasks() - tasks_before if t is not asyncio.current_task()]
    assert not [t for t in left if not t.done()]


PARIS_CALL = [Reply(tool_calls=[tool_call("get_weather", location="Paris")]), "Sunny in Paris."]
WEATHER_TURN = [
    ("user", "what is the weather in paris"),
    ("assistant", ""),
    ("tool", "It is sunny in Paris."),
    ("assistant", "Sunny in Paris."),
]


def weather_agent(
    ran_at: list[float],
    *,
    read_only: bool,
    until: asyncio.Event | None = None,
    fails: bool = False,
    result_is_reply: bool = False,
) -> Agent:
    """An agent with a weather tool that notes when it ran and, given ``until``, returns
    only once that is set."""

    @function_tool(
        description="Get the current weather for a location",
        read_only=read_only,
        result_is_reply=result_is_reply,
    )
    async def get_weather(location: str) -> str:
        ran_at.append(time.perf_counter())
        if until is not None:
            await until.wait()
        if fails:
            raise RuntimeError("the weather service is down")
        return f"It is sunny in {location}."

    return Agent("You are a test agent.", tools=[get_weather])


async def ask_the_weather(agent: Agent, *, committed: asyncio.Event | None = None) -> Rig:
    """Ask; ``committed`` is set when the user's turn is committed."""
    rig = await make_rig(["what is the weather in paris"], list(PARIS_CALL), agent=agent)
    if committed is not None:
        rig.session.events.subscribe(lambda _: committed.set(), UserTurnEnded)
    await rig.connection.push_speech(0.5, realtime=True)
    await rig.connection.push_silence(1.0, realtime=True)
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    return rig


def history(rig: Rig) -> list[tuple[str, str]]:
    return [(m.role, m.content) for m in rig.session.chat_ctx if m.role != "system"]


async def test_a_held_reply_runs_its_tools_only_once_the_turn_is_committed() -> None:
    ran_at: list[float] = []
    rig = await ask_the_weather(weather_agent(ran_at, read_only=False))

    committed = rig.first(UserTurnEnded)
    assert rig.llm.asked_at[0] < committed
    assert len(ran_at) == 1 and ran_at[0] > committed
    assert len(rig.of(ToolCalled)) == 1
    assert history(rig) == WEATHER_TURN
    await rig.session.close()


async def test_a_held_reply_runs_read_only_tools_ahead_and_answers_from_them() -> None:
    ran_at: list[float] = []
    rig = await ask_the_weather(weather_agent(ran_at, read_only=True))

    committed = rig.first(UserTurnEnded)
    # The tool ran and the answer round started before the commit ...
    assert len(ran_at) == 1 and ran_at[0] < committed
    assert len(rig.llm.asked_at) == 2 and rig.llm.asked_at[1] < committed
    answer_ctx = [(m.role, m.content) for m in rig.llm.calls[1].ctx if m.role != "system"]
    assert answer_ctx[0] == ("user", "what is the weather in paris")
    assert answer_ctx[-1] == ("tool", "It is sunny in Paris.")
    # ... but its event and its history came with the commit, in a real turn's order.
    (called,) = rig.of(ToolCalled)
    called_at = next(at for at, e in rig.events if e is called)
    assert called_at > committed and called_at > rig.first(AgentTurnStarted)
    assert rig.first_audio > committed
    assert history(rig) == WEATHER_TURN
    (metrics,) = [e.metrics for e in rig.of(TurnMetricsReady)]
    assert metrics.tool_calls == 1
    await rig.session.close()


async def test_a_held_reply_whose_result_is_the_reply_says_it_without_another_round() -> None:
    ran_at: list[float] = []
    rig = await ask_the_weather(weather_agent(ran_at, read_only=True, result_is_reply=True))

    committed = rig.first(UserTurnEnded)
    assert len(ran_at) == 1 and ran_at[0] < committed
    assert len(rig.llm.asked_at) == 1, "the result was the answer: no answer round"
    assert rig.first_audio > committed
    assert history(rig) == [*WEATHER_TURN[:3], ("assistant", "It is sunny in Paris.")]
    await rig.session.close()


async def test_a_read_only_tool_still_running_at_the_commit_joins_the_history_after_it() -> None:
    ran_at: list[float] = []
    committed = asyncio.Event()  # the tool outlasts the wait for the end of the turn
    agent = weather_agent(ran_at, read_only=True, until=committed)
    rig = await ask_the_weather(agent, committed=committed)

    (called,) = rig.of(ToolCalled)
    called_at = next(at for at, e in rig.events if e is called)
    assert ran_at[0] < rig.first(UserTurnEnded) < rig.llm.asked_at[1]  # answered after it
    assert called_at < rig.llm.asked_at[1]
    assert history(rig) == WEATHER_TURN
    await rig.session.close()


async def test_a_read_only_round_ahead_for_words_the_user_continued_leaves_no_trace() -> None:
    ran_at: list[float] = []
    rig = await make_rig(
        ["what is the weather", "in rome please"],
        [
            Reply(tool_calls=[tool_call("get_weather", location="Lima")]),
            Reply("An answer about Lima nobody should hear. " * 5),
            "Sunny in Rome.",
        ],
        agent=weather_agent(ran_at, read_only=True, fails=True),
        tokens_per_second=20,  # the answer round is still streaming when the user goes on
    )
    await rig.go_on_after_a_pause(calls_by_then=2)  # the call ahead and its answer round

    assert rig.llm.calls[1].cancelled
    # The call ahead ran, and failed, for words that were not the turn: nobody is told.
    assert len(ran_at) == 1
    assert rig.of(ToolCalled) == [] and rig.of(ErrorOccurred) == []
    assert rig.history() == [
        ("user", "what is the weather in rome please"),
        ("assistant", "Sunny in Rome."),
    ]
    assert all("Lima" not in text for text in (e.text for e in rig.of(Transcript)))
    await rig.session.close()


async def test_a_flow_with_its_own_turn_start_hook_is_never_answered_ahead() -> None:
    started: list[str] = []

    class Guarded(ConversationFlow):
        async def on_turn_start(self, text: str) -> None:
            started.append(text)

    rig = await make_rig(["hello there"], ["Hi."], flow=Guarded())
    await rig.connection.push_speech(0.5, realtime=True)
    await rig.connection.push_silence(1.0, realtime=True)
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))
    assert started == ["hello there"]
    assert rig.llm.asked_at[0] > rig.first(UserTurnEnded)
    await rig.session.close()


class InstantRecognizer(BatchSTT):
    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        return "what is the capital of italy"


async def test_a_segmenters_guess_in_the_silence_wait_starts_the_reply() -> None:
    """The `local` preset's shape: a batch STT behind the VAD (one VAD, shared), whose guess
    comes during the VAD's silence wait; the commit follows the VAD's end with no delay."""
    vad = FakeVAD()
    llm = StampedLLM(["The capital of Italy is Rome."])
    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("You are a test agent.")
    pipeline = CascadingPipeline(
        stt=VADSegmentedSTT(InstantRecognizer(), vad),
        llm=llm,
        tts=FakeTTS(),
        vad=vad,
        turn=TurnOptions(min_endpointing_delay=0.0, preemptive_reply=True),
    )
    session = AgentSession(agent, pipeline)
    connection = await edge.join(Call("default", "preempt-guess", edge), agent.agent_user)
    rig = Rig(session, connection, llm)
    await session.start(connection)
    await connection.push_speech(0.5, realtime=True)
    await connection.push_silence(1.0, realtime=True)
    await rig.until(lambda: bool(rig.of(AgentTurnEnded)))

    final = next(
        at for at, e in rig.events if isinstance(e, Transcript) and e.role == "user" and e.final
    )
    assert rig.llm.asked_at[0] < final  # on the guess, in the VAD's silence wait
    assert final < rig.first(UserTurnEnded) < rig.first_audio
    assert rig.history() == [
        ("user", "what is the capital of italy"),
        ("assistant", "The capital of Italy is Rome."),
    ]
    await session.close()
