"""Routing a question to a tool by its nearest examples, and steering the call's argument.

The first tests use made-up embeddings (the decision rule alone); the rest run the real
default model with ``route_tools=True`` against questions its own first token gets wrong.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest
from parley.chat import ChatContext
from parley.llm import collect
from parley.tools import FunctionTool
from parley_llamacpp import protocol
from parley_llamacpp.engine import Steering
from parley_llamacpp.llm import LlamaCppLLM
from parley_llamacpp.router import ExampleRouter

# --- the decision rule, on made-up embeddings ----------------------------------------------

AXES = {"rain": 0, "sun": 1, "city": 2, "joke": 3, "math": 4}


def embed(text: str) -> np.ndarray:
    """A bag of topic words as a unit vector: near questions share words."""
    vector = np.zeros(len(AXES), dtype=np.float32)
    for word in re.findall(r"\w+", text.lower()):
        if word in AXES:
            vector[AXES[word]] += 1.0
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector


def router() -> ExampleRouter:
    return ExampleRouter(
        embed,
        {"weather": ["rain city", "sun city", "rain sun"], "joke": ["joke", "joke city"]},
        plain=["city", "math", "math city"],
    )


@pytest.mark.parametrize(
    ("question", "route"),
    [
        ("rain in the city?", "weather"),
        ("a joke please", "joke"),
        ("math homework", None),
        ("where is the city", None),  # the place alone is nearer the plain examples
    ],
)
def test_the_nearest_examples_decide(question: str, route: str | None) -> None:
    assert router().route(question) == route


def test_a_required_call_goes_to_the_nearest_tool() -> None:
    assert router().route("where is the city", plain_allowed=False) == "weather"


def test_a_word_only_one_kinds_examples_use_decides_a_tie() -> None:
    def same(text: str) -> np.ndarray:  # embeddings that cannot tell anything apart
        return np.full(2, 2**-0.5, dtype=np.float32)

    routes = ExampleRouter(
        same, {"joke": ["Tell me a joke.", "Know any jokes?"]}, ["Tell me a story."]
    )
    assert routes.route("Tell me a short joke.") == "joke"
    assert routes.route("Any jokes?") == "joke"  # "jokes" is "joke"
    assert routes.route("Tell me a long story.") is None
    assert routes.route("Tell me something.") is None  # a tie is not enough for a tool


def test_the_examples_are_embedded_once() -> None:
    seen: list[str] = []

    def counting(text: str) -> np.ndarray:
        seen.append(text)
        return embed(text)

    routes = ExampleRouter(counting, {"weather": ["rain city"]}, plain=["math"])
    routes.warm()
    routes.route("rain")
    routes.route("sun")
    assert sorted(seen) == ["math", "rain", "rain city", "sun"]


def test_a_router_needs_plain_examples() -> None:
    with pytest.raises(ValueError, match="plain"):
        ExampleRouter(embed, {"weather": ["rain"]}, plain=[])


@pytest.mark.parametrize(
    ("held", "kept"),
    [
        ('{"tool": "get_weather", "arguments": {"location": "Gla', True),
        ('{"tool": "get_weather", "arguments": {"location": "Glasgow', True),
        ('{"tool": "get_weather", "arguments": {"location": "GlaS', False),  # case counts
        ('{"tool": "get_weather", "arguments": {"location": "Egypt', False),
        ('{"tool": "get_weather", "arguments": {"location": "Glasgow"', True),  # closed
        ('{"tool": "get_weather", "arguments": {"location": "', True),  # nothing written
        ('{"tool": "get_weather", "arguments": {"location": "Should I', True),
    ],
)
def test_steering_keeps_an_argument_to_the_users_words(held: str, kept: bool) -> None:
    steering = Steering(np.array([], dtype=np.intp), " Should I bring a raincoat to Glasgow")
    assert steering.keeps(held) is kept


def test_a_plain_example_asking_what_a_tool_answers_is_left_out() -> None:
    joke = protocol.ToolSpec("tell_joke", "Tell a joke", {})
    messages = protocol.few_shot_messages([joke], {"tell_joke": [("Tell me a joke.", {})]})
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    asked = [m["content"] for m in messages if m["role"] == "user"]
    assert asked.count("Tell me a joke.") == 1
    assert "Why did the computer go to the doctor? It had a virus." not in answers


# --- the real model -------------------------------------------------------------------------

INSTRUCTIONS = "You are a friendly voice assistant. Answer in one or two short sentences."


def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"Rainy and 12 degrees in {location}."


WEATHER_TOOL = FunctionTool(get_weather)


@pytest.fixture(scope="module")
def routed() -> Iterator[LlamaCppLLM]:
    model = LlamaCppLLM(max_tokens=48, route_tools=True)
    yield model
    asyncio.run(model.aclose())


def ask(question: str) -> ChatContext:
    ctx = ChatContext()
    ctx.add("system", INSTRUCTIONS)
    ctx.add("user", question)
    return ctx


# Each of these, without the router, SmolLM2 answers in words ("You don't need an umbrella in
# Dublin.") or calls with a place it made up ("Egypt" for Cairo, "Athos" for Athens).
@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("Do I need an umbrella in Dublin?", "Dublin"),
        ("Is it hot in Cairo right now?", "Cairo"),
        ("Will it be sunny in Athens tomorrow?", "Athens"),
        ("Should I bring a raincoat to Glasgow?", "Glasgow"),
    ],
)
async def test_a_weather_question_the_model_misjudges_is_routed_to_the_tool(
    routed: LlamaCppLLM, question: str, place: str
) -> None:
    result = await collect(routed.chat(ask(question), [WEATHER_TOOL]))
    assert result.text == ""
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"location": place})
    ]


# Without the router SmolLM2 calls the weather tool for each of these.
@pytest.mark.parametrize(
    "question", ["Where is Berlin?", "What time is it in New York?", "When was Rome founded?"]
)
async def test_a_question_about_a_place_is_not_routed_to_the_weather(
    routed: LlamaCppLLM, question: str
) -> None:
    result = await collect(routed.chat(ask(question), [WEATHER_TOOL]))
    assert result.tool_calls == []
    assert result.text.strip() and not result.text.lstrip().startswith("{")


async def test_a_failing_router_leaves_the_choice_to_the_model(
    routed: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(self: ExampleRouter, text: str, *, plain_allowed: bool = True) -> str | None:
        raise RuntimeError("embedding failed")

    monkeypatch.setattr(ExampleRouter, "route", broken)
    result = await collect(routed.chat(ask("Is it raining in Madrid?"), [WEATHER_TOOL]))
    # The model's own choice: SmolLM2 calls for this one.
    assert [json.loads(c.arguments) for c in result.tool_calls] == [{"location": "Madrid"}]
    assert "routing the question failed" in caplog.text


async def test_required_routes_even_a_plain_question_to_a_tool(routed: LlamaCppLLM) -> None:
    ctx = ask("Tell me about Paris.")
    result = await collect(routed.chat(ctx, [WEATHER_TOOL], tool_choice="required"))
    assert [json.loads(c.arguments) for c in result.tool_calls] == [{"location": "Paris"}]


async def test_a_routed_tool_result_is_answered(routed: LlamaCppLLM) -> None:
    ctx = ask("Do I need an umbrella in Dublin?")
    [call] = (await collect(routed.chat(ctx, [WEATHER_TOOL]))).tool_calls
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", get_weather("Dublin"), tool_call_id=call.id, name=call.name)
    answer = await collect(routed.chat(ctx, [WEATHER_TOOL]))
    assert answer.tool_calls == []
    assert "12" in answer.text


IN_A_NEW_PROCESS = """
import asyncio
import sys
import llama_cpp
from parley.chat import ChatContext
from parley.tools import function_tool
from parley_llamacpp.llm import LlamaCppLLM

@function_tool(description="Get the current weather for a location")
def get_weather(location: str) -> str:
    return "Sunny."

def no_more_loads(*args, **kwargs):
    raise AssertionError("a model loaded after warm_up")

async def main():
    model = LlamaCppLLM(max_tokens=16, route_tools=True)
    if sys.argv[1] == "warm":
        await model.warm_up()
        llama_cpp.Llama.__init__ = no_more_loads
    ctx = ChatContext()
    ctx.add("system", "You are brief.")
    print("prefilled", await model.prefill(ctx, [get_weather]) > 0)
    ctx.add("user", "Is it raining in Oslo?")
    async for chunk in model.chat(ctx, [get_weather]):
        for call in chunk.tool_calls:
            print("called", call.name, call.arguments)
    await model.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("start", ["warm", "cold"])
def test_both_models_load_in_a_new_process(start: str) -> None:
    # Two models loading at once on two threads (cold: prefill starts both) ended a new
    # process without a word, exit status 0. And while llama.cpp loads, stdout goes to
    # /dev/null: the demo's URL, printed while the embedding model loaded at the first turn,
    # was lost; warm_up now loads both, and nothing loads after it.
    done = subprocess.run(
        [sys.executable, "-c", IN_A_NEW_PROCESS, start],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "prefilled True" in done.stdout
    assert 'called get_weather {"location": "Oslo"}' in done.stdout
