"""What the demo's offline LLM answers: ten fixed questions, each in a fresh conversation
with the demo's instructions and tools (weather, jokes), at the demo's settings (SmolLM2-135M on
llama.cpp, temperature 0). Prints each answer, its time to first token (the stable prompt
prefix cached first, as in a session), and a rough verdict for the joke and story requests.

Usage: ``python bench/llm_answers.py``. Prints figures; always exits 0.

To compare prompts and decoding in one run (one model load, same machine state):

- ``--instructions TEXT``: the demo's questions under other system instructions.
- ``--variants FILE``: a JSON list of variants, each run in turn, e.g.
  ``[{"name": "demo"}, {"name": "hot", "instructions": "...", "tool_description": "...",
  "options": {"temperature": 0.7, "top_p": 0.9, "repeat_penalty": 1.1, "max_tokens": 80},
  "seeds": [0, 1, 2]}]``. Left out, a field keeps the demo's value; ``options`` go to
  ``LlamaCppLLM.chat``; ``seeds`` repeats the variant once per seed.
- ``--more``: eleven more phrasings (jokes, stories, weather, plain) after the ten, so a good
  answer is not one lucky phrasing.
- ``--demo FILE``: measure another copy of the demo (a change to try before making it).

If the demo defines ``offline_llm()`` (the offline LLM it builds, e.g. with its own help for
what the small model cannot do), that is what is measured; otherwise a plain `LlamaCppLLM`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import DEMO, load_demo
from parley.chat import ChatContext, ToolCall
from parley.llm import LLM
from parley.plugins import resolve
from parley.tools import FunctionTool

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

# Other phrasings (--more): as a person would say them, lower case and all.
MORE_QUESTIONS: tuple[tuple[str, str], ...] = (
    ("Know any jokes?", "joke"),
    ("Make me laugh.", "joke"),
    ("Tell me something funny.", "joke"),
    ("tell me a joke about cats", "joke"),
    ("Tell me a bedtime story.", "story"),
    ("Tell me a story about a robot.", "story"),
    ("Do I need an umbrella in Berlin?", "tool"),
    ("How hot is it in Madrid right now?", "tool"),
    ("What is two plus two?", "plain"),
    ("What color is the sky?", "plain"),
    ("Thank you!", "plain"),
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One setting to measure; None or empty means the demo's own."""

    name: str
    instructions: str | None = None
    tool_description: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # LlamaCppLLM.chat sampling
    seeds: tuple[int | None, ...] = (None,)  # None: the option's or the LLM's seed


@dataclass(slots=True)
class Tally:
    good: Counter[str] = field(default_factory=Counter)
    asked: Counter[str] = field(default_factory=Counter)
    ttfts: list[float] = field(default_factory=list)


def load_variants(path: Path) -> list[Variant]:
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise SystemExit(f"{path}: expected a JSON list of variants")
    variants = []
    for index, entry in enumerate(entries):
        seeds = entry.get("seeds")
        variants.append(
            Variant(
                name=str(entry.get("name", f"variant {index + 1}")),
                instructions=entry.get("instructions"),
                tool_description=entry.get("tool_description"),
                options=dict(entry.get("options", {})),
                seeds=tuple(seeds) if seeds else (None,),
            )
        )
    return variants


def demo_tools(demo: Any) -> list[FunctionTool]:
    """The demo agent's tools, the weather tool first."""
    return [demo.get_weather, demo.tell_joke]


def verdict(kind: str, text: str, called: bool) -> str:
    """A rough check, for the summary line; read the answers too."""
    sentences = [s for s in text.replace("!", ".").replace("?", "?.").split(".") if s.strip()]
    if kind == "tool":
        return "ok" if called and "sunny" in text.lower() else "MISS"
    if kind == "joke":
        # A joke here is a setup question with its punchline after it (the model's own, or
        # the demo's joke book through its tool).
        question = text.find("?")
        return "ok" if 0 < question < len(text.rstrip()) - 1 else "MISS"
    if called:
        return "MISS (tool call)"
    if kind == "story":
        return "ok" if len(sentences) >= 3 else "MISS"
    return "ok" if text.strip() else "MISS"


async def answer(
    llm: LLM,
    instructions: str,
    tools: Sequence[FunctionTool],
    question: str,
    options: Mapping[str, Any] | None = None,
) -> Any:
    ctx = ChatContext()
    ctx.add("system", instructions)
    ctx.add("user", question)
    started = time.perf_counter()
    first: float | None = None
    text, called = "", False
    for _round in range(2):
        calls: list[ToolCall] = []
        async for chunk in llm.chat(ctx, tools, **(options or {})):
            if first is None and (chunk.text or chunk.tool_calls):
                first = time.perf_counter() - started
            text += chunk.text
            calls += chunk.tool_calls
        if not calls:
            break
        called = True
        ctx.add("assistant", "", tool_calls=calls)
        by_name = {tool.name: tool for tool in tools}
        results = [str(await by_name[call.name].invoke(call.arguments)) for call in calls]
        if all(by_name[call.name].result_is_reply for call in calls):
            text += " ".join(results)  # said as it is, as the engine does
            break
        for call, result in zip(calls, results, strict=True):
            ctx.add("tool", result, tool_call_id=call.id, name=call.name)
    return first, text.strip(), called


async def run_questions(
    llm: LLM,
    instructions: str,
    tools: Sequence[FunctionTool],
    questions: Sequence[tuple[str, str]],
    options: Mapping[str, Any],
    tally: Tally,
) -> None:
    """Ask each question after caching the stable prefix; print answers, add to ``tally``."""
    warm = ChatContext()
    warm.add("system", instructions)
    await llm.prepare(warm, tools)  # no user words yet: caches the prompt prefix
    for question, kind in questions:
        first, text, called = await answer(llm, instructions, tools, question, options)
        mark = verdict(kind, text, called)
        tally.asked[kind] += 1
        tally.good[kind] += mark == "ok"
        if first is not None:
            tally.ttfts.append(first)
        ttft = f"{first * 1000:5.0f} ms" if first is not None else "   - ms"
        print(f"[{kind:5}] {mark:4} ttft {ttft}  {question!r}\n          -> {text!r}")


def summary(tally: Tally, total: int, *, by_kind: bool) -> str:
    good = sum(tally.good.values())
    kinds = ", ".join(f"{kind} {tally.good[kind]}/{n}" for kind, n in tally.asked.items())
    ttft = (
        f"TTFT median {statistics.median(tally.ttfts) * 1000:.0f} ms, "
        f"max {max(tally.ttfts) * 1000:.0f} ms"
        if tally.ttfts
        else "no TTFT"
    )
    detail = f" ({kinds})" if by_kind else ""
    return f"{good}/{total} as wanted{detail}; {ttft}"


async def main(args: argparse.Namespace) -> None:
    demo = load_demo(args.demo)
    one, five, _ = os.getloadavg()
    spec = demo.choose_llm({}).spec
    print(f"== llm_answers: demo LLM {spec}; load avg {one:.2f} / {five:.2f}")
    questions = QUESTIONS + (MORE_QUESTIONS if args.more else ())
    variants: list[Variant] | None = None
    if args.variants is not None:
        variants = load_variants(args.variants)
    elif args.instructions is not None:
        variants = [Variant("given instructions", instructions=args.instructions)]
    build = getattr(demo, "offline_llm", None)
    llm: LLM = build() if build is not None else resolve("llm", spec)
    try:
        if variants is None:  # the demo as it is: the original output, one summary line
            tally = Tally()
            await run_questions(llm, demo.INSTRUCTIONS, demo_tools(demo), questions, {}, tally)
            print(f"   {summary(tally, len(questions), by_kind=args.more)}")
            return
        results: list[tuple[str, str]] = []
        for variant in variants:
            instructions = variant.instructions or demo.INSTRUCTIONS
            tools = demo_tools(demo)
            if variant.tool_description is not None:  # the weather tool's
                weather = tools[0]
                tools[0] = FunctionTool(
                    weather.fn,
                    name=weather.name,
                    description=variant.tool_description,
                    read_only=weather.read_only,
                    result_is_reply=weather.result_is_reply,
                )
            tally = Tally()
            for seed in variant.seeds:
                options = dict(variant.options)
                if seed is not None:
                    options["seed"] = seed
                print(f"-- {variant.name}: options {options or 'demo'}")
                await run_questions(llm, instructions, tools, questions, options, tally)
            result = summary(tally, len(questions) * len(variant.seeds), by_kind=True)
            print(f"   {result}")
            results.append((variant.name, result))
        print("== summary")
        for name, result in results:
            print(f"   {name}: {result}")
    finally:
        await llm.aclose()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--instructions", help="system instructions instead of the demo's")
    given.add_argument("--variants", type=Path, help="a JSON list of variants to compare")
    parser.add_argument("--more", action="store_true", help="also ask eleven other phrasings")
    parser.add_argument("--demo", type=Path, default=DEMO, help="the demo module to measure")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
