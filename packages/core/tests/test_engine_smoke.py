from __future__ import annotations

import asyncio
from dataclasses import dataclass

from parley import Agent, AgentSession, CascadingPipeline
from parley.events import AgentTurnEnded, SessionEvent, SessionState, TurnMetricsReady
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge


async def test_greeting_then_one_turn() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("You are terse.", edge=edge)
    pipeline = CascadingPipeline(
        stt=FakeSTT(["what is the weather"]),
        llm=FakeLLM(["It is sunny today. Anything else?"]),
        tts=FakeTTS(),
        vad=FakeVAD(),
    )
    session = AgentSession(agent, pipeline)
    call = await agent.create_call("default", "smoke")
    connection = await edge.join(call, agent.agent_user)
    ended: list[AgentTurnEnded] = []
    metrics: list[TurnMetricsReady] = []
    session.events.subscribe(ended.append, AgentTurnEnded)
    session.events.subscribe(metrics.append, TurnMetricsReady)
    await session.start(connection)
    await session.say("Hello!")
    assert ended[-1].text == "Hello!"
    await connection.push_speech(0.6)
    await connection.push_silence(1.2)
    async with asyncio.timeout(30):  # wait for the reply; the deadline only catches a hang
        while len(ended) < 2:
            await asyncio.sleep(0.01)
    assert ended[-1].text == "It is sunny today. Anything else?"
    roles = [(m.role, m.content) for m in agent.chat_ctx]
    assert roles[1:] == [
        ("assistant", "Hello!"),
        ("user", "what is the weather"),
        ("assistant", "It is sunny today. Anything else?"),
    ]
    assert metrics and metrics[-1].metrics.end_to_end is not None
    await session.close()
    assert session.state is SessionState.CLOSED


async def test_an_edges_own_session_events_reach_the_session() -> None:
    @dataclass(frozen=True)
    class KeyPressed(SessionEvent):
        key: str

    edge = InMemoryEdge(realtime_playout=False)
    agent = Agent("You are terse.", edge=edge)
    pipeline = CascadingPipeline(stt=FakeSTT([]), llm=FakeLLM([]), tts=FakeTTS(), vad=FakeVAD())
    session = AgentSession(agent, pipeline)
    connection = await edge.join(await agent.create_call("default", "keys"), agent.agent_user)
    pressed: list[KeyPressed] = []
    session.events.subscribe(pressed.append, KeyPressed)
    await session.start(connection)
    try:
        connection.events.emit(KeyPressed("5"))
        await session.events.drain()
        assert pressed == [KeyPressed("5")]
    finally:
        await session.close()
