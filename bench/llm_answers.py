"""What the demo's offline LLM answers: ten fixed questions, each in a fresh conversation
with the demo's instructions and weather tool, at the demo's settings (SmolLM2-135M on
llama.cpp, temperature 0). Prints each answer, its time to first token (the stable prompt
prefix cached first, as in a session), and a rough verdict for the joke and story requests.

Usage: ``python bench/llm_answers.py``. Prints figures; always exits 0.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from parley.chat import ChatContext, ToolCall
from parley.tools import FunctionTool
from parley_llamacpp.llm import LlamaCppLLM

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"

# (question, what a good answer is): "joke", "story", "tool" (the weather call) or "plain".
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("Tell me a joke.", "joke"),
    ("Tell me a short joke.", "joke"),
    ("Do you know any good jokes?", "joke"),
    ("Tell me a short story.", "story"),
    ("Can you tell me a story about a dragon?", "story"),
    ("What's the weather in Paris?", "tool"),
    ("Is it raining in London?", "tool"),
    ("What is the capital of France?", "plain"),
    ("How are you today?", "plain"),
    ("Who wrote Romeo and Juliet?", "plain"),
)


def _load_demo() -> Any:
    spec = importlib.util.spec_from_file_location("parley_demo", DEMO)
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = demo
    spec.loader.exec_module(demo)
    return demo


def verdict(kind: str, text: str, called: bool) -> str:
    """A rough check, for the summary line; read the answers too."""
    sentences = [s for s in text.replace("!", ".").replace("?", "?.").split(".") if s.strip()]
    if kind == "tool":
        return "ok" if called and "sunny" in text.lower() else "MISS"
    if called:
        return "MISS (tool call)"
    if kind == "joke":
        # A joke here is a setup question with its punchline after it.
        question = text.find("?")
        return "ok" if 0 < question < len(text.rstrip()) - 1 else "MISS"
    if kind == "story":
        return "ok" if len(sentences) >= 3 else "MISS"
    return "ok" if text.strip() else "MISS"


async def answer(llm: LlamaCppLLM, instructions: str, tool: FunctionTool, question: str) -> Any:
    ctx = ChatContext()
    ctx.add("system", instructions)
    ctx.add("user", question)
    started = time.perf_counter()
    first: float | None = None
    text, called = "", False
    for _round in range(2):
        calls: list[ToolCall] = []
        async for chunk in llm.chat(ctx, [tool]):
            if first is None and (chunk.text or chunk.tool_calls):
                first = time.perf_counter() - started
            text += chunk.text
            calls += chunk.tool_calls
        if not calls:
            break
        called = True
        ctx.add("assistant", "", tool_calls=calls)
        for call in calls:
            result = await tool.invoke(call.arguments)
            ctx.add("tool", str(result), tool_call_id=call.id, name=call.name)
    return first, text.strip(), called


async def main() -> None:
    demo = _load_demo()
    one, five, _ = os.getloadavg()
    spec = demo.choose_llm({}).spec
    print(f"== llm_answers: demo LLM {spec}; load avg {one:.2f} / {five:.2f}")
    llm = LlamaCppLLM(n_threads_batch=2)
    tool = demo.get_weather
    try:
        warm = ChatContext()
        warm.add("system", demo.INSTRUCTIONS)
        await llm.prefill(warm, [tool])
        ttfts: list[float] = []
        good = 0
        for question, kind in QUESTIONS:
            first, text, called = await answer(llm, demo.INSTRUCTIONS, tool, question)
            mark = verdict(kind, text, called)
            good += mark == "ok"
            if first is not None:
                ttfts.append(first)
            ttft = f"{first * 1000:5.0f} ms" if first is not None else "   - ms"
            print(f"[{kind:5}] {mark:4} ttft {ttft}  {question!r}\n          -> {text!r}")
        print(
            f"   {good}/{len(QUESTIONS)} as wanted; TTFT median "
            f"{statistics.median(ttfts) * 1000:.0f} ms, max {max(ttfts) * 1000:.0f} ms"
        )
    finally:
        await llm.aclose()


if __name__ == "__main__":
    asyncio.run(main())
