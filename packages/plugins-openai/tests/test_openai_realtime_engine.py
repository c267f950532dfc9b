"""The OpenAI Realtime part driven by Parley's engine, against the local fake server."""

from __future__ import annotations

import asyncio
import base64
from typing import Any

import numpy as np
from parley import Agent, AgentSession
from parley.edge import Call
from parley.events import AgentTurnEnded, ToolCalled
from parley.pipeline import RealtimePipeline
from parley.testing import InMemoryEdge, until


def pcm(seconds: float) -> bytes:
    rng = np.random.default_rng(7)
    return (rng.uniform(-0.3, 0.3, int(seconds * 24000)) * 32767).astype("<i2").tobytes()


async def test_a_spoken_turn_with_a_tool_then_a_barge_in(realtime_server: Any) -> None:
    truncated: dict[str, Any] = {}
    tool_output: dict[str, Any] = {}

    async def scenario(conn: Any) -> None:
        update = await conn.handshake()
        assert update["session"]["instructions"] == "Be brief."
        assert update["session"]["tools"][0]["name"] == "lookup"
        await conn.expect("input_audio_buffer.append")  # the engine streams the user's audio
        await conn.send("input_audio_buffer.speech_started", audio_start_ms=0, item_id="u1")
        await conn.send("input_audio_buffer.speech_stopped", audio_end_ms=300, item_id="u1")
        await conn.send(
            "conversation.item.input_audio_transcription.completed",
            item_id="u1",
            content_index=0,
            transcript="Look up x.",
        )
        await conn.send("response.created", response={"id": "r1", "status": "in_progress"})
        await conn.send(
            "response.function_call_arguments.done",
            response_id="r1",
            item_id="fc1",
            call_id="call_1",
            name="lookup",
            arguments='{"q": "x"}',
        )
        await conn.send("response.done", response={"id": "r1", "status": "completed"})
        while (event := await conn.receive())["type"] != "conversation.item.create":
            assert event["type"] == "input_audio_buffer.append"
        tool_output.update(event["item"])
        while (await conn.receive())["type"] != "response.create":
            pass
        await conn.send("response.created", response={"id": "r2", "status": "in_progress"})
        speech = pcm(2.0)
        for start in range(0, len(speech), 9600):
            await conn.audio("r2", "a2", speech[start : start + 9600])
        await conn.send("response.done", response={"id": "r2", "status": "completed"})
        await asyncio.sleep(0.3)  # part of the reply is played out
        await conn.send("input_audio_buffer.speech_started", audio_start_ms=900, item_id="u2")
        while (event := await conn.receive())["type"] != "conversation.item.truncate":
            assert event["type"] in ("input_audio_buffer.append", "response.cancel")
        truncated.update(event)

    realtime_server.scenario = scenario
    agent = Agent("Be brief.")

    @agent.tools.register
    async def lookup(q: str) -> str:
        """Look something up."""
        return f"found {q}"

    edge = InMemoryEdge()
    connection = await edge.join(Call("default", "openai-rt", edge), agent.agent_user)
    session = AgentSession(agent, RealtimePipeline(realtime_server.model()))
    ended: list[AgentTurnEnded] = []
    tools: list[ToolCalled] = []
    session.events.subscribe(ended.append, AgentTurnEnded)
    session.events.subscribe(tools.append, ToolCalled)
    await session.start(connection)
    pushing = asyncio.create_task(connection.push_silence(3.0, realtime=True))
    try:
        await until(lambda: bool(truncated))
    finally:
        pushing.cancel()
        await asyncio.gather(pushing, return_exceptions=True)
    await until(lambda: any(e.interrupted for e in ended))
    await session.close()

    assert [(t.name, t.result) for t in tools] == [("lookup", "found x")]
    assert tool_output == {"type": "function_call_output", "call_id": "call_1", "output": "found x"}
    assert truncated["item_id"] == "a2"
    assert 0 < truncated["audio_end_ms"] < 2000  # the user heard only part of the reply
    assert any(m.role == "user" and m.content == "Look up x." for m in session.chat_ctx)
    appended = [e for e in realtime_server.received if e["type"] == "input_audio_buffer.append"]
    assert len(base64.b64decode(appended[0]["audio"])) % 2 == 0
