"""A realtime model that stops mid-response (audio stops, no response-done) fails the reply
with an error naming it; the session listens again and the next turn gets a full answer."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from parley import Agent, AgentSession, ProviderTimeouts, RealtimePipeline
from parley.chat import ChatContext
from parley.edge import Call
from parley.events import AgentTurnEnded, ErrorOccurred, SessionEvent, SessionState
from parley.frames import AudioFrame
from parley.realtime import RealtimeEvent
from parley.testing import InMemoryEdge
from parley.testing.realtime import FakeRealtime, FakeRealtimeSession
from parley.tools import FunctionTool

# The fake stalls forever, so the bound only decides how soon the test sees the error.
STALL = 0.3


class StallingSession(FakeRealtimeSession):
    """Its first response sends three audio frames and then nothing, ever."""

    async def _speak(self, text: str | None) -> None:
        model = self.model
        assert isinstance(model, StallingRealtime)
        if model.stalled:
            return await super()._speak(text)
        model.stalled = True
        model.next_reply()
        await self._emit(RealtimeEvent("response_started"))
        frames = model.frames(3)
        for frame in frames:
            await self._emit(RealtimeEvent("audio", audio=frame))
        await asyncio.Event().wait()


class StallingRealtime(FakeRealtime):
    stalled = False

    def frames(self, count: int) -> list[AudioFrame]:
        rate = self.capabilities.output_sample_rate
        samples = np.full(int(rate * self.frame_duration), 3000, dtype=np.int16)
        return [AudioFrame(samples, rate) for _ in range(count)]

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] = (),
        chat_ctx: ChatContext | None = None,
    ) -> StallingSession:
        await super().connect(instructions=instructions, tools=tools, chat_ctx=chat_ctx)
        session = StallingSession(self)
        self.sessions[-1] = session
        return session


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """The deadline only catches hangs."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_realtime_model_stalling_mid_response_fails_the_reply_and_the_next_turn_works(
    caplog: pytest.LogCaptureFixture,
) -> None:
    model = StallingRealtime(replies=["A first answer.", "Back again, all of it."])
    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("You are a test agent.")
    pipeline = RealtimePipeline(model, timeouts=ProviderTimeouts(realtime_stall=STALL))
    session = AgentSession(agent, pipeline)
    connection = await edge.join(Call("default", "rt-stalls", edge), agent.agent_user)
    events: list[SessionEvent] = []
    session.events.subscribe(events.append, SessionEvent)
    await session.start(connection)

    def errors() -> list[ErrorOccurred]:
        return [e for e in events if isinstance(e, ErrorOccurred)]

    def ended() -> list[AgentTurnEnded]:
        return [e for e in events if isinstance(e, AgentTurnEnded)]

    with caplog.at_level(logging.WARNING, logger="parley.session"):
        await connection.push_speech(0.4, realtime=True)
        await connection.push_silence(0.4, realtime=True)
        await until(lambda: bool(errors()))
    error = errors()[0]
    assert error.source == "realtime" and error.recoverable
    assert isinstance(error.error, TimeoutError)
    assert str(error.error) == (
        f"Realtime StallingRealtime stalled mid-response: nothing for {STALL} s"
    )
    assert any("StallingRealtime stalled" in r.getMessage() for r in caplog.records)
    await until(lambda: session.state is SessionState.LISTENING and len(ended()) == 1)
    assert ended()[0].interrupted
    # The model is told to drop the response by a task of its own: it may run a step later.
    await until(lambda: bool(model.sessions[0].interruptions))

    await connection.push_speech(0.4, realtime=True)
    await connection.push_silence(0.4, realtime=True)
    await until(lambda: len(ended()) == 2)
    assert not ended()[1].interrupted
    assert ended()[1].text == "Back again, all of it."
    assert len(errors()) == 1
    await session.close()


def test_realtime_stall_bound_has_a_generous_default() -> None:
    assert ProviderTimeouts().realtime_stall >= 10
    assert RealtimePipeline(FakeRealtime()).timeouts.realtime_stall >= 10
