"""Gemini Live driven by Parley's realtime engine over the in-memory edge."""

from __future__ import annotations

from typing import Any

from parley import Agent, AgentSession, RealtimePipeline
from parley.edge import Call
from parley.events import AgentTurnEnded, ToolCalled
from parley.testing import InMemoryEdge, until
from parley_gemini.live import GeminiLive
from parley_gemini.testing import FakeGeminiLive


async def test_voice_turn_with_a_tool_through_the_engine() -> None:
    replies: list[Any] = [{"name": "lookup", "args": {"city": "Oslo"}}, "It is {result}."]
    async with FakeGeminiLive(replies=replies, transcripts=["weather in Oslo?"]) as fake:
        agent = Agent("Be brief.")

        @agent.tools.register
        async def lookup(city: str) -> str:
            """Look up the weather."""
            return f"sunny in {city}"

        edge = InMemoryEdge(realtime_playout=False)
        connection = await edge.join(Call("default", "gemini-live", edge), agent.agent_user)
        model = GeminiLive(api_key=fake.api_key, base_url=fake.url)
        session = AgentSession(agent, RealtimePipeline(model))
        tools: list[ToolCalled] = []
        ended: list[AgentTurnEnded] = []
        session.events.subscribe(tools.append, ToolCalled)
        session.events.subscribe(ended.append, AgentTurnEnded)
        await session.start(connection)
        await connection.push_speech(0.4)
        await connection.push_silence(0.5)
        await until(lambda: bool(ended))
        await session.close()
    assert [(t.name, t.result) for t in tools] == [("lookup", "sunny in Oslo")]
    assert session.chat_ctx.last("user").content == "weather in Oslo?"  # type: ignore[union-attr]
    assert session.chat_ctx.last("assistant").content == "It is sunny in Oslo."  # type: ignore[union-attr]
    assert not ended[0].interrupted
    assert connection.audio_output.seconds_written > 0.1
    assert fake.setups[0]["tools"][0]["functionDeclarations"][0]["name"] == "lookup"
