"""When the offline LLM calls a tool: the model's own choice against the router.

Asks SmolLM2-135M, with the demo's tools (`get_weather`, and `tell_joke` with its example
requests) and instructions, each question alone, 40 weather questions, 9 joke requests and
58 other questions, none of them in the prompt's examples or the router's: once with the
model's first token deciding (the baseline: ``route_tools`` off) and once with the router
(`parley_llamacpp.router`, as the demo runs it). Prints, for each: weather questions called
with the right place, joke requests that called the joke tool, other questions that called
a tool, and the time to the first chunk (the call, or the first words).

Usage: ``python bench/tool_routing.py [-v]`` (``-v`` lists every miss). Prints figures;
always exits 0. About a minute.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from typing import Any

from _common import cpu_name, load_demo, load_note
from parley.chat import ChatContext
from parley_llamacpp.llm import LlamaCppLLM

# (question, the place the call must carry)
WEATHER: tuple[tuple[str, str], ...] = (
    ("Do I need an umbrella in Dublin?", "Dublin"),
    ("Will it snow in Moscow?", "Moscow"),
    ("Is it hot in Cairo right now?", "Cairo"),
    ("Should I wear a jacket in Chicago?", "Chicago"),
    ("Is it sunny in Rome?", "Rome"),
    ("What's the forecast for Berlin?", "Berlin"),
    ("How cold is it in Helsinki?", "Helsinki"),
    ("Is it windy in Wellington?", "Wellington"),
    ("Do I need sunscreen in Sydney?", "Sydney"),
    ("Is it going to rain in Seattle?", "Seattle"),
    ("What's the temperature like in Denver?", "Denver"),
    ("How's the weather in Toronto?", "Toronto"),
    ("Is it foggy in San Francisco?", "San Francisco"),
    ("Is it stormy in Miami?", "Miami"),
    ("Is it cloudy in Amsterdam?", "Amsterdam"),
    ("What's it like outside in Madrid?", "Madrid"),
    ("How warm is it in Tokyo?", "Tokyo"),
    ("Is it raining in London?", "London"),
    ("What is the weather in Paris?", "Paris"),
    ("Weather in Oslo?", "Oslo"),
    ("Tell me the weather for Lisbon.", "Lisbon"),
    ("Is it freezing in Montreal?", "Montreal"),
    ("Should I bring a raincoat to Glasgow?", "Glasgow"),
    ("What's the weather like in Mumbai today?", "Mumbai"),
    ("Is there a storm in Manila?", "Manila"),
    ("How humid is it in Singapore?", "Singapore"),
    ("Will it be sunny in Athens tomorrow?", "Athens"),
    ("Can I go swimming in Barcelona, is it warm enough?", "Barcelona"),
    ("Is it snowing in Zurich?", "Zurich"),
    ("What's the high today in Phoenix?", "Phoenix"),
    ("Hows the weather looking in Vienna", "Vienna"),
    ("weather boston", "boston"),
    ("Is it nice out in Prague?", "Prague"),
    ("Do I need gloves in Stockholm?", "Stockholm"),
    ("How hot is it in Dubai?", "Dubai"),
    ("Is it raining in Dublin?", "Dublin"),
    ("What's the temperature in Berlin?", "Berlin"),
    ("Is the weather good in Nairobi?", "Nairobi"),
    ("Any rain in Vancouver today?", "Vancouver"),
    ("Should I take an umbrella to Paris?", "Paris"),
)
JOKES: tuple[str, ...] = (
    "Tell me a short joke.",
    "Can you tell me a joke?",
    "Know any jokes?",
    "I'd like to hear a joke.",
    "Got a joke for me?",
    "tell me a joke about cats",
    "Tell me a funny joke please.",
    "Tell me something funny.",
    "Do you have a joke?",
)
OTHER: tuple[str, ...] = (
    "Where is Berlin?",
    "What is the population of Tokyo?",
    "How do I get to Dublin?",
    "What language do they speak in Brazil?",
    "Tell me about Paris.",
    "What's the best food in Rome?",
    "How far is London from Paris?",
    "What time is it in New York?",
    "Who is the mayor of Chicago?",
    "Is Madrid the capital of Spain?",
    "What currency does Japan use?",
    "How big is Canada?",
    "How many legs does a spider have?",
    "What is your name?",
    "Why is the sky blue?",
    "What do bees make?",
    "How are you today?",
    "Stop.",
    "Who wrote Romeo and Juliet?",
    "What is two plus two?",
    "Can you recommend a good book?",
    "Tell me a short story.",
    "Where is Dublin?",
    "What's a good restaurant in Lisbon?",
    "When was Rome founded?",
    "How old is the Eiffel Tower?",
    "What river runs through London?",
    "Who built the pyramids?",
    "Is Sydney bigger than Melbourne?",
    "What's the capital of Norway?",
    "Thank you.",
    "Wait.",
    "Okay, thanks!",
    "What can you do?",
    "What is a rainbow?",
    "How do clouds form?",
    "What causes rain?",
    "Why is snow white?",
    "What should I cook for dinner?",
    "How do I boil an egg?",
    "Translate hello into Spanish.",
    "What is the biggest ocean?",
    "Name a famous scientist.",
    "Who was the first man on the moon?",
    "What colour is a banana?",
    "Play some music.",
    "Set a timer for five minutes.",
    "What's the news today?",
    "How far is the moon?",
    "Can you help me?",
    "Goodbye!",
    "What day is it today?",
    "Tell me about Tokyo.",
    "Is Paris expensive?",
    "What is the tallest building in Dubai?",
    "Who won the World Cup?",
    "How do I say thank you in French?",
    "Where should I travel in summer?",
)


async def measure(demo: Any, route_tools: bool, verbose: bool) -> None:
    llm = LlamaCppLLM(n_threads_batch=2, history_turns=0, route_tools=route_tools)
    tools = [demo.get_weather, demo.tell_joke]
    base = ChatContext()
    base.add("system", demo.INSTRUCTIONS)
    await llm.warm_up()
    await llm.prefill(base, tools)
    firsts: list[float] = []

    async def ask(question: str) -> tuple[list[tuple[str, str]], str]:
        ctx = base.copy()
        ctx.add("user", question)
        calls: list[tuple[str, str]] = []
        text = ""
        started = time.perf_counter()
        first: float | None = None
        async for chunk in llm.chat(ctx, tools):
            if first is None and (chunk.text or chunk.tool_calls):
                first = time.perf_counter() - started
            text += chunk.text
            for call in chunk.tool_calls:
                calls.append((call.name, json.loads(call.arguments).get("location", "")))
        firsts.append(first or 0.0)
        return calls, text

    right, jokes, misses, wrong_other = 0, 0, [], []
    for question, place in WEATHER:
        calls, text = await ask(question)
        if calls == [("get_weather", place)]:
            right += 1
        else:
            misses.append(f"{question!r} -> {calls or text!r}")
    for question in JOKES:
        calls, text = await ask(question)
        if calls == [("tell_joke", "")]:
            jokes += 1
        else:
            misses.append(f"{question!r} -> {calls or text!r}")
    for question in OTHER:
        calls, text = await ask(question)
        if calls:
            wrong_other.append(f"{question!r} -> {calls}")
    await llm.aclose()
    name = "router" if route_tools else "model's first token (baseline)"
    firsts.sort()
    print(f"-- {name}")
    print(f"   weather questions called with the right place: {right}/{len(WEATHER)}")
    print(f"   joke requests that called the joke tool: {jokes}/{len(JOKES)}")
    print(f"   other questions that got a call: {len(wrong_other)}/{len(OTHER)}")
    print(
        f"   first chunk p50 {1000 * statistics.median(firsts):.0f} ms, "
        f"p90 {1000 * firsts[int(0.9 * len(firsts))]:.0f} ms"
    )
    if verbose:
        for miss in misses + wrong_other:
            print(f"     {miss}")


async def main() -> None:
    verbose = "-v" in sys.argv[1:]
    demo = load_demo()
    print(
        f"== tool routing: SmolLM2-135M with the demo's tools; {len(WEATHER)} weather questions, "
        f"{len(JOKES)} joke requests, {len(OTHER)} others"
    )
    print(f"   {cpu_name()}; {load_note()}")
    await measure(demo, False, verbose)
    await measure(demo, True, verbose)


if __name__ == "__main__":
    asyncio.run(main())
