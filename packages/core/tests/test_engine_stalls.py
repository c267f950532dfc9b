"""A provider that stops mid-stream fails the turn (error event, metric, log line naming it);
the session listens again and the next turn gets a full answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
from parley import Agent, AgentSession, CascadingPipeline, ProviderTimeouts, TurnOptions
from parley.edge import Call
from parley.events import AgentTurnEnded, ErrorOccurred, SessionEvent, SessionState
from parley.frames import AudioFrame
from parley.stt import STTEvent
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, Reply
from parley.testing.edge import InMemoryConnection
from parley.testing.stt import FakeSTTStream

# The fakes stall forever, so the bound only decides how soon the test sees the error.
STALL = 0.3


class StallingTTS(FakeTTS):
    """Its first synthesis stops after ``after_frames`` frames and never sends another."""

    def __init__(self, after_frames: int) -> None:
        super().__init__()
        self.after_frames = after_frames
        self.stalled = False

    def synthesize(self, text: str) -> AsyncIterator[AudioFrame]:
        stream = super().synthesize(text)
        if self.stalled:
            return stream
        self.stalled = True
        return self._stall(stream)

    async def _stall(self, stream: AsyncIterator[AudioFrame]) -> AsyncIterator[AudioFrame]:
        sent = 0
        async for frame in stream:
            if sent == self.after_frames:
                await asyncio.Event().wait()
            sent += 1
            yield frame


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """The deadline only catches hangs."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def start(
    llm: FakeLLM, tts: FakeTTS
) -> tuple[AgentSession, InMemoryConnection, list[SessionEvent]]:
    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("You are a test agent.")
    pipeline = CascadingPipeline(
        stt=FakeSTT(["hello", "hello again"], min_silence=0.2),
        llm=llm,
        tts=tts,
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.05),
        timeouts=ProviderTimeouts(llm_stall=STALL, tts_stall=STALL),
    )
    session = AgentSession(agent, pipeline)
    connection = await edge.join(Call("default", "stalls", edge), agent.agent_user)
    events: list[SessionEvent] = []
    session.events.subscribe(events.append, SessionEvent)
    await session.start(connection)
    return session, connection, events


async def user_turn(connection: InMemoryConnection) -> None:
    await connection.push_speech(0.5, realtime=True)
    await connection.push_silence(0.5, realtime=True)


async def assert_stall_recovers(
    llm: FakeLLM, tts: FakeTTS, source: str, provider: str, caplog: pytest.LogCaptureFixture
) -> None:
    session, connection, events = await start(llm, tts)

    def errors() -> list[ErrorOccurred]:
        return [e for e in events if isinstance(e, ErrorOccurred)]

    def answers() -> list[str]:
        return [e.text for e in events if isinstance(e, AgentTurnEnded)]

    with caplog.at_level(logging.WARNING, logger="parley.session"):
        await user_turn(connection)
        await until(lambda: bool(errors()))
    error = errors()[0]
    assert error.source == source and error.recoverable
    assert isinstance(error.error, TimeoutError)
    assert provider in str(error.error) and "stalled" in str(error.error)
    assert session.metrics.errors == 1
    assert any(provider in r.getMessage() and "stalled" in r.getMessage() for r in caplog.records)
    await until(lambda: session.state is SessionState.LISTENING and len(answers()) == 1)

    await user_turn(connection)
    await until(lambda: "Back again, all of it." in answers())
    assert len(errors()) == 1
    await session.close()


async def test_llm_stalling_mid_stream_fails_the_turn_and_the_next_one_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    llm = FakeLLM(
        [
            Reply("One two three four five.", hang=True, hang_after_tokens=3),
            "Back again, all of it.",
        ]
    )
    await assert_stall_recovers(llm, FakeTTS(), "llm", "FakeLLM", caplog)
    assert llm.calls[0].tokens_sent == 3


async def test_tts_stalling_mid_stream_fails_the_turn_and_the_next_one_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tts = StallingTTS(after_frames=3)
    llm = FakeLLM(["A first answer that is long enough.", "Back again, all of it."])
    await assert_stall_recovers(llm, tts, "tts", "StallingTTS", caplog)


async def test_a_tts_stall_cancels_the_llm_stream_still_running(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The speaker and the text's producer are separate tasks: the speaker's failure must
    end the LLM stream that is still producing, not leave it running."""
    tts = StallingTTS(after_frames=1)
    long_reply = "First part. " + " ".join(["and then more words"] * 40) + "."
    llm = FakeLLM([Reply(long_reply), "Back again, all of it."], tokens_per_second=50)
    await assert_stall_recovers(llm, tts, "tts", "StallingTTS", caplog)
    first = llm.calls[0]
    assert first.cancelled and not first.finished
    assert first.tokens_sent < len(long_reply.split())


def test_stall_bounds_have_generous_defaults() -> None:
    timeouts = ProviderTimeouts()
    assert timeouts.llm_stall >= 5 and timeouts.tts_stall >= 5


class StallingSTT(FakeSTT):
    """Its first stream goes quiet once the user starts speaking and never says more."""

    def stream(self, *, language: str | None = None) -> FakeSTTStream:
        stream = super().stream(language=language)
        if len(self.streams) == 1:
            emit = stream._emit

            async def emit_only_the_first(event: STTEvent) -> None:
                if not stream.emitted:
                    await emit(event)

            stream._emit = emit_only_the_first  # type: ignore[method-assign]
        return stream


async def test_stt_stalling_mid_stream_reopens_it_and_the_next_turn_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stt = StallingSTT(["lost words", "are you back again now"], min_silence=0.2)
    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("You are a test agent.")
    pipeline = CascadingPipeline(
        stt=stt,
        llm=FakeLLM(["Back again, all of it."]),
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.05),
        # Above the fake's longest honest gap (last word to final, ~0.25 s of audio).
        timeouts=ProviderTimeouts(stt_stall=1.0),
    )
    session = AgentSession(agent, pipeline)
    connection = await edge.join(Call("default", "stt-stall", edge), agent.agent_user)
    events: list[SessionEvent] = []
    session.events.subscribe(events.append, SessionEvent)
    await session.start(connection)

    def errors() -> list[ErrorOccurred]:
        return [e for e in events if isinstance(e, ErrorOccurred)]

    def answers() -> list[str]:
        return [e.text for e in events if isinstance(e, AgentTurnEnded)]

    with caplog.at_level(logging.WARNING, logger="parley.session"):
        # The user is still speaking when the STT stall shows; the rest is silence.
        await connection.push_speech(0.5)
        await until(lambda: bool(errors()))
        await connection.push_silence(0.5, realtime=True)
    error = errors()[0]
    assert error.source == "stt" and error.recoverable
    assert isinstance(error.error, TimeoutError)
    assert "StallingSTT" in str(error.error) and "stalled" in str(error.error)
    assert session.metrics.errors == 1
    assert any("StallingSTT" in r.getMessage() for r in caplog.records)
    await until(lambda: len(stt.streams) == 2 and session.state is SessionState.LISTENING)
    assert stt.streams[0].closed and not answers()

    await user_turn(connection)
    await until(lambda: answers() == ["Back again, all of it."])
    assert len(errors()) == 1 and stt.finals == ["are you back again now"]
    await session.close()


def test_stt_stall_bound_has_a_generous_default() -> None:
    assert ProviderTimeouts().stt_stall >= 5
