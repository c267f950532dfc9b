"""Anthropic against the real service; skipped unless ANTHROPIC_API_KEY is set."""

from __future__ import annotations

import json
import os

import pytest
from parley.chat import ChatContext
from parley.llm import collect
from parley.tools import FunctionTool

pytestmark = pytest.mark.skipif(
    not os.environ.get("ANTHROPIC_API_KEY"),
    reason="set ANTHROPIC_API_KEY to run the live Anthropic tests",
)

MODEL = os.environ.get("PARLEY_LIVE_ANTHROPIC_MODEL", "claude-haiku-5-5")


async def get_weather(location: str) -> str:
    """Get the current weather for a location.

    Args:
        location: City name.
    """
    return f"The weather in {location} is sunny and 21 degrees."


async def test_streams_text_and_usage() -> None:
    from parley_anthropic.llm import AnthropicLLM

    llm = AnthropicLLM(MODEL, max_tokens=100)
    ctx = ChatContext()
    ctx.set_instructions("Answer in one short sentence.")
    ctx.add("user", "Say the word pong.")
    result = await collect(llm.chat(ctx))
    await llm.aclose()
    assert "pong" in result.text.lower()
    assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0


async def test_calls_a_tool_and_uses_its_result() -> None:
    from parley_anthropic.llm import AnthropicLLM

    llm = AnthropicLLM(MODEL, max_tokens=300)
    tool = FunctionTool(get_weather)
    ctx = ChatContext()
    ctx.set_instructions("Use the tools you have. Answer in one sentence.")
    ctx.add("user", "What is the weather in Paris?")
    first = await collect(llm.chat(ctx, [tool]))
    (call,) = first.tool_calls
    assert call.name == "get_weather"
    assert "paris" in json.loads(call.arguments)["location"].lower()
    ctx.add("assistant", first.text, tool_calls=[call])
    ctx.add("tool", await tool.invoke(call.arguments), tool_call_id=call.id, name=call.name)
    second = await collect(llm.chat(ctx, [tool]))
    await llm.aclose()
    assert "21" in second.text or "sunny" in second.text.lower()
