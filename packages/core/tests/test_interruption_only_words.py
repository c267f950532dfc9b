"""Interruption-only words: "stop", "wait", "mm-hm" said over the agent stop it and are not
answered (`InterruptionOptions.interruption_only_words`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from parley import Agent, AgentSession, CascadingPipeline, InterruptionOptions, TurnOptions
from parley.barge_in import only_phrases
from parley.edge import Call
from parley.events import AgentTurnEnded, Interrupted, SessionEvent, SessionState, Transcript
from parley.policy import INTERRUPTION_ONLY_WORDS
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge

LONG_REPLY = " ".join(f"Sentence number {i} is here." for i in range(1, 30))


@pytest.mark.parametrize(
    "text",
    ["Stop.", "stop", "Stop, stop!", "Wait.", "Mm-hmm.", "mm hmm", "Okay, wait.", "Hold on!"],
)
def test_what_counts_as_interruption_only(text: str) -> None:
    assert only_phrases(text, INTERRUPTION_ONLY_WORDS)


@pytest.mark.parametrize(
    "text",
    ["", "...", "Stop talking about the weather.", "Wait, what about Paris?", "hold", "okay go"],
)
def test_anything_more_is_a_turn(text: str) -> None:
    assert not only_phrases(text, INTERRUPTION_ONLY_WORDS)


def test_the_list_is_a_setting() -> None:
    assert not only_phrases("stop", ())
    assert only_phrases("Basta!", ["basta"])
    options = InterruptionOptions(interruption_only_words=["basta"])  # type: ignore[arg-type]
    assert options.interruption_only_words == ("basta",)
    assert "stop" in InterruptionOptions().interruption_only_words
    with pytest.raises(TypeError, match="not one string"):
        InterruptionOptions(interruption_only_words="stop")  # type: ignore[arg-type]


class Rig:
    def __init__(self, session: AgentSession, llm: FakeLLM, connection: Any) -> None:
        self.session, self.llm, self.connection = session, llm, connection
        self.events: list[SessionEvent] = []
        session.events.subscribe(self.events.append, SessionEvent)

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    async def until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> None:
        """Waits for state with no event to await; the deadline only catches hangs."""
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.005)

    async def speak(self, seconds: float = 0.5, silence: float = 0.5) -> None:
        await self.connection.push_speech(seconds, realtime=True)
        await self.connection.push_silence(silence, realtime=True)

    def history(self) -> list[tuple[str, str]]:
        return [(m.role, m.content) for m in self.session.chat_ctx if m.role != "system"]


async def make_rig(
    script: list[str], replies: list[str], words: tuple[str, ...] = INTERRUPTION_ONLY_WORDS
) -> Rig:
    edge = InMemoryEdge(realtime_playout=True)
    agent = Agent("You are a test agent.")
    llm = FakeLLM(replies)
    pipeline = CascadingPipeline(
        stt=FakeSTT(script, min_silence=0.2),
        llm=llm,
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.05),
        interruption=InterruptionOptions(
            min_duration=0.2, false_interruption_timeout=0.4, interruption_only_words=words
        ),
    )
    session = AgentSession(agent, pipeline)
    connection = await edge.join(Call("default", "test", edge), agent.agent_user)
    rig = Rig(session, llm, connection)
    await session.start(connection)
    return rig


async def talk_over_the_agent(rig: Rig) -> None:
    """Ask for the long reply, let some of it play, then speak over it."""
    await rig.speak()
    await rig.until(lambda: rig.session.state is SessionState.SPEAKING)
    await rig.until(lambda: rig.connection.audio_output.seconds_played >= 0.4)
    await rig.speak(0.5, 0.5)


async def test_stop_over_the_agent_stops_it_and_is_not_answered() -> None:
    rig = await make_rig(["tell me a story", "Stop."], [LONG_REPLY, "You're welcome!"])
    await talk_over_the_agent(rig)
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 1)
    # The user was heard ("Stop." is a final transcript) ...
    assert ("user", "Stop.") in [(e.role, e.text) for e in rig.of(Transcript) if e.final]
    # ... and listened to: the reply stopped there, and the engine is listening again.
    ended = rig.of(AgentTurnEnded)[0]
    assert ended.interrupted and 0 < len(ended.text) < len(LONG_REPLY)
    assert [e.false_interruption for e in rig.of(Interrupted)] == [False]
    await rig.until(lambda: rig.session.state is SessionState.LISTENING)
    await asyncio.sleep(0.3)  # an answer would be under way by now (endpointing is 0.05 s)
    assert len(rig.llm.calls) == 1
    assert len(rig.of(AgentTurnEnded)) == 1
    assert rig.history() == [("user", "tell me a story"), ("assistant", ended.text)]
    assert rig.session.metrics.interruptions == 1
    await rig.session.close()


async def test_the_next_real_question_is_answered_as_usual() -> None:
    rig = await make_rig(
        ["tell me a story", "wait", "what is the time"], [LONG_REPLY, "It is noon."]
    )
    await talk_over_the_agent(rig)
    await rig.until(lambda: rig.session.state is SessionState.LISTENING)
    await rig.speak()
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 2)
    assert rig.history()[-2:] == [("user", "what is the time"), ("assistant", "It is noon.")]
    sent = [m.content for m in rig.llm.calls[1].ctx if m.role == "user"]
    assert sent == ["tell me a story", "what is the time"]
    await rig.session.close()


async def test_more_than_the_words_over_the_agent_is_a_turn() -> None:
    rig = await make_rig(["tell me a story", "stop, tell me a joke"], [LONG_REPLY, "Ha."])
    await talk_over_the_agent(rig)
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 2)
    assert rig.history()[-2:] == [("user", "stop, tell me a joke"), ("assistant", "Ha.")]
    await rig.session.close()


async def test_the_same_word_when_the_agent_is_quiet_is_answered() -> None:
    rig = await make_rig(["okay"], ["Great, what next?"])
    await rig.speak()
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 1)
    assert rig.history() == [("user", "okay"), ("assistant", "Great, what next?")]
    await rig.session.close()


async def test_an_empty_list_answers_every_turn() -> None:
    rig = await make_rig(["tell me a story", "stop"], [LONG_REPLY, "Okay."], words=())
    await talk_over_the_agent(rig)
    await rig.until(lambda: len(rig.of(AgentTurnEnded)) == 2)
    assert rig.history()[-2:] == [("user", "stop"), ("assistant", "Okay.")]
    await rig.session.close()
