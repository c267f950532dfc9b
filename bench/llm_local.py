"""Offline LLM (parley-llamacpp, SmolLM2-135M by default): load, TTFT cold vs cached, tok/s,
and tool-call reliability on a fixed question set at temperature 0.

Usage: ``python bench/llm_local.py [--quick] [--threads N]``. Prints figures; always exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time

from parley.chat import ChatContext
from parley.llm import collect
from parley.tools import FunctionTool
from parley_llamacpp.llm import LlamaCppLLM

INSTRUCTIONS = "You are a helpful voice assistant. Answer in one or two short sentences."

# Questions a weather tool should answer (with the place as it was said) ...
WEATHER = {
    "What's the weather like in London?": "London",
    "What is the weather in Berlin today?": "Berlin",
    "Is it raining in Madrid?": "Madrid",
    "How hot is it in Cairo right now?": "Cairo",
    "Tell me the weather for New York.": "New York",
    "Do I need an umbrella in Seattle today?": "Seattle",
    "What's the temperature in Sydney?": "Sydney",
    "weather in rome please": "rome",
    "Will it snow in Denver tomorrow?": "Denver",
    "How cold is it in Moscow?": "Moscow",
    "Is it sunny in Miami?": "Miami",
    "What's the forecast for Chicago?": "Chicago",
}
# ... and questions that need no tool.
PLAIN = [
    "What is the capital of France?",
    "Hello, how are you?",
    "Tell me a fun fact about cats.",
    "What is two plus two?",
    "Who wrote Romeo and Juliet?",
    "Can you recommend a good book?",
    "What time is it?",
    "Translate hello into Spanish.",
    "How far is the moon?",
    "What should I cook for dinner?",
    "Tell me about the Eiffel Tower.",
    "What is the weather like on Mars?",
]


def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"Sunny and 21 degrees in {location}."


def conversation(question: str) -> ChatContext:
    ctx = ChatContext()
    ctx.add("system", INSTRUCTIONS)
    ctx.add("user", question)
    return ctx


async def timing(llm: LlamaCppLLM, tool: FunctionTool, quick: bool) -> None:
    start = time.perf_counter()
    await llm.warm_up()
    print(f"   load {time.perf_counter() - start:.2f} s ({llm.model_path.name})")

    await collect(llm.chat(conversation("Hi!")))  # a different prompt: nothing useful cached
    await collect(llm.chat(conversation("What's the weather like in Paris?"), [tool]))
    cold = llm.last_stats
    await collect(llm.chat(conversation("Is it raining in Oslo?"), [tool]))
    cached = llm.last_stats
    assert cold is not None and cached is not None
    print(
        f"   TTFT with tools, cold prompt: {cold.first_token_s:.3f} s "
        f"({cold.prompt_tokens} prompt tokens, {cold.cached_tokens} cached)"
    )
    print(
        f"   TTFT with tools, cached prefix: {cached.first_token_s:.3f} s "
        f"({cached.prompt_tokens} prompt tokens, {cached.cached_tokens} cached)"
    )

    rates = []
    for _ in range(1 if quick else 3):
        ctx = conversation("Write a short story about a robot who learns to paint.")
        await collect(llm.chat(ctx, max_tokens=128))
        stats = llm.last_stats
        assert stats is not None and stats.first_token_s is not None
        generating = stats.total_s - stats.first_token_s
        if stats.completion_tokens > 1 and generating > 0:
            rates.append((stats.completion_tokens - 1) / generating)
    print(f"   generation: {', '.join(f'{r:.0f}' for r in rates)} tok/s")


async def reliability(llm: LlamaCppLLM, tool: FunctionTool) -> None:
    calls = wrong_place = 0
    misses: list[str] = []
    for question, place in WEATHER.items():
        result = await collect(llm.chat(conversation(question), [tool], temperature=0.0))
        if result.tool_calls and result.tool_calls[0].name == "get_weather":
            arguments = json.loads(result.tool_calls[0].arguments)
            if str(arguments.get("location", "")).lower() == place.lower():
                calls += 1
            else:
                wrong_place += 1
                misses.append(f"{question!r} -> {arguments}")
        else:
            misses.append(f"{question!r} -> text {result.text[:50]!r}")
    plain_ok = 0
    for question in PLAIN:
        result = await collect(llm.chat(conversation(question), [tool], temperature=0.0))
        if result.tool_calls:
            misses.append(f"{question!r} -> call {result.tool_calls[0].arguments}")
        else:
            plain_ok += 1
    print(
        f"   weather questions -> correct call: {calls}/{len(WEATHER)} (wrong place {wrong_place})"
    )
    print(f"   other questions -> plain answer: {plain_ok}/{len(PLAIN)}")
    for miss in misses:
        print(f"     miss: {miss}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one generation-speed run")
    parser.add_argument("--threads", type=int, default=1, help="llama.cpp n_threads")
    args = parser.parse_args()
    one, five, _ = os.getloadavg()
    print(f"== llm_local: llama.cpp n_threads={args.threads}; load avg {one:.2f} / {five:.2f}")
    llm = LlamaCppLLM(n_threads=args.threads, n_threads_batch=args.threads)
    tool = FunctionTool(get_weather)
    try:
        await timing(llm, tool, args.quick)
        await reliability(llm, tool)
    finally:
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
