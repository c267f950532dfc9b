"""Gemini against the real service; skipped unless GEMINI_API_KEY (or GOOGLE_API_KEY) is set."""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from parley.chat import ChatContext
from parley.llm import collect
from parley.tools import FunctionTool

pytestmark = pytest.mark.skipif(
    not (os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")),
    reason="set GEMINI_API_KEY to run the live Gemini tests",
)

LLM_MODEL = os.environ.get("PARLEY_LIVE_GEMINI_MODEL", "gemini-2.5-flash")
LIVE_MODEL = os.environ.get("PARLEY_LIVE_GEMINI_LIVE_MODEL")


async def get_weather(location: str) -> str:
    """Get the current weather for a location.

    Args:
        location: City name.
    """
    return f"The weather in {location} is sunny and 21 degrees."


async def test_llm_streams_text_and_usage() -> None:
    from parley_gemini.llm import GeminiLLM

    llm = GeminiLLM(LLM_MODEL, max_output_tokens=200, thinking_budget=0)
    ctx = ChatContext()
    ctx.set_instructions("Answer in one short sentence.")
    ctx.add("user", "Say the word pong.")
    result = await collect(llm.chat(ctx))
    await llm.aclose()
    assert "pong" in result.text.lower()
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


async def test_llm_calls_a_tool_and_uses_its_result() -> None:
    from parley_gemini.llm import GeminiLLM

    llm = GeminiLLM(LLM_MODEL, thinking_budget=0)
    tool = FunctionTool(get_weather)
    ctx = ChatContext()
    ctx.set_instructions("Use the tools you have. Answer briefly.")
    ctx.add("user", "What's the weather in Oslo right now?")
    first = await collect(llm.chat(ctx, [tool]))
    assert first.tool_calls, f"expected a tool call, got text {first.text!r}"
    call = first.tool_calls[0]
    assert call.name == "get_weather" and "oslo" in json.loads(call.arguments)["location"].lower()
    ctx.add("assistant", first.text, tool_calls=first.tool_calls)
    ctx.add("tool", await tool.invoke(call.arguments), tool_call_id=call.id, name=call.name)
    second = await collect(llm.chat(ctx, [tool]))
    await llm.aclose()
    assert "21" in second.text or "sunny" in second.text.lower()


async def test_live_session_speaks_an_answer() -> None:
    from parley_gemini.live import GeminiLive

    model = GeminiLive(LIVE_MODEL) if LIVE_MODEL else GeminiLive()
    session = await model.connect(instructions="You are terse.", tools=[FunctionTool(get_weather)])
    await session.push_text("Say hello in three words.")
    seconds = 0.0
    async with asyncio.timeout(60):
        async for event in session:
            assert event.type != "error", event.error
            if event.type == "audio" and event.audio is not None:
                assert event.audio.sample_rate == 24000
                seconds += event.audio.duration
            if event.type == "response_done":
                break
    await session.aclose()
    assert seconds > 0.3
