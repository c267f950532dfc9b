"""The testing kit's fake LLM: scripted streaming, recording, pacing and failure injection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from parley.chat import ChatContext
from parley.llm import LLMChunk, Usage, collect
from parley.testing import FakeLLM, Reply, tokenize, tool_call
from parley.tools import FunctionTool


async def read_into(stream: AsyncIterator[LLMChunk], received: list[str]) -> None:
    async for chunk in stream:
        received.append(chunk.text)


def context(text: str = "hi") -> ChatContext:
    ctx = ChatContext()
    ctx.add("system", "be brief")
    ctx.add("user", text)
    return ctx


def test_tokens_are_words_with_their_spaces() -> None:
    text = "  Hello there.  How are you?"
    assert tokenize(text) == ["  Hello ", "there.  ", "How ", "are ", "you?"]
    assert "".join(tokenize(text)) == text
    assert tokenize("") == []
    assert tokenize("   ") == ["   "]


async def test_a_scripted_reply_streams_word_by_word_then_usage() -> None:
    llm = FakeLLM(["Hello there. How are you?"])
    chunks = [chunk async for chunk in llm.chat(context("one two three"))]
    assert [c.text for c in chunks[:-1]] == ["Hello ", "there. ", "How ", "are ", "you?"]
    assert chunks[-1] == LLMChunk(usage=Usage(input_tokens=5, output_tokens=5))
    assert llm.calls[0].finished
    assert not llm.calls[0].cancelled
    assert llm.calls[0].tokens_sent == 5


async def test_tool_calls_follow_the_text_and_replies_are_used_in_order() -> None:
    call = tool_call("get_weather", location="Paris")
    llm = FakeLLM([Reply("Let me check.", tool_calls=[call]), "It is sunny."])
    first = await collect(llm.chat(context()))
    assert first.text == "Let me check."
    assert first.tool_calls == [call]
    assert call.arguments == '{"location": "Paris"}'
    second = await collect(llm.chat(context()))
    assert (second.text, second.tool_calls) == ("It is sunny.", [])
    assert llm.pending_replies == 0


async def test_calls_record_a_deep_copy_of_the_context_and_the_tool_names() -> None:
    async def get_weather(location: str) -> str:
        """Weather for a place."""
        return "sunny"

    llm = FakeLLM(["ok"])
    ctx = context("weather?")
    await collect(llm.chat(ctx, [FunctionTool(get_weather)], temperature=0.2))
    ctx.messages[-1].content = "changed later"
    ctx.add("assistant", "ok")
    recorded = llm.calls[0]
    assert recorded.last_user_text == "weather?"
    assert len(recorded.ctx) == 2
    assert recorded.tools == ["get_weather"]
    assert recorded.options == {"temperature": 0.2}
    assert llm.last_call is recorded


async def test_running_out_of_replies_echoes_the_user() -> None:
    llm = FakeLLM()
    assert (await collect(llm.chat(context("what time is it")))).text == (
        "You said: what time is it"
    )
    assert (await collect(llm.chat(ChatContext()))).text == "Hello!"
    llm.add_replies("queued later")
    assert (await collect(llm.chat(context()))).text == "queued later"


async def test_respond_computes_replies_sync_or_async() -> None:
    llm = FakeLLM(respond=lambda ctx: f"{len(ctx)} messages")
    assert (await collect(llm.chat(context()))).text == "2 messages"

    async def respond(ctx: ChatContext) -> Reply:
        await asyncio.sleep(0)
        return Reply("async", usage=Usage(1, 2, 3))

    result = await collect(FakeLLM(respond=respond).chat(context()))
    assert (result.text, result.usage) == ("async", Usage(1, 2, 3))


async def test_an_error_can_strike_at_start_or_mid_stream() -> None:
    llm = FakeLLM(
        [
            Reply("never seen", error=RuntimeError("at start")),
            Reply("one two three four", error=RuntimeError("midway"), error_after_tokens=2),
        ]
    )
    with pytest.raises(RuntimeError, match="at start"):
        await collect(llm.chat(context()))
    received: list[str] = []
    with pytest.raises(RuntimeError, match="midway"):
        await read_into(llm.chat(context()), received)
    assert received == ["one ", "two "]
    assert not llm.calls[1].finished


async def test_a_broken_provider_fails_every_call_without_using_replies() -> None:
    llm = FakeLLM(["kept"], error=ConnectionError("401 bad key"))
    for _ in range(2):
        with pytest.raises(ConnectionError, match="bad key"):
            await collect(llm.chat(context()))
    llm.error = None
    assert (await collect(llm.chat(context()))).text == "kept"


async def test_hang_never_yields_and_records_the_cancellation() -> None:
    llm = FakeLLM(hang=True)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await collect(llm.chat(context()))
    assert llm.calls[0].cancelled

    partial = FakeLLM([Reply("a b c", hang=True, hang_after_tokens=1)])
    received: list[str] = []
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read_into(partial.chat(context()), received), 0.05)
    assert received == ["a "]


async def test_a_reader_that_stops_early_marks_the_call_cancelled() -> None:
    llm = FakeLLM(["one two three"])
    stream = llm.chat(context())
    assert (await anext(stream)).text == "one "
    await stream.aclose()  # type: ignore[attr-defined]
    assert llm.calls[0].cancelled
    assert not llm.calls[0].finished


async def test_pacing_waits_first_token_delay_then_one_gap_per_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def record(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", record)  # as seen by the fake
    llm = FakeLLM(["a b c"], first_token_delay=0.3, tokens_per_second=10)
    await collect(llm.chat(context()))
    assert waits == [0.3, pytest.approx(0.1), pytest.approx(0.1)]

    waits.clear()
    await collect(FakeLLM(["a b c"]).chat(context()))
    assert waits == []  # zero-latency fakes never sleep


async def test_warm_up_and_close_are_recorded() -> None:
    llm = FakeLLM()
    await llm.warm_up()
    await llm.aclose()
    assert llm.warmed_up
    assert llm.closed


async def test_long_sessions_can_skip_recording_contexts() -> None:
    llm = FakeLLM(record_contexts=False)
    result = await collect(llm.chat(context("still echoed")))
    assert result.text == "You said: still echoed"
    assert len(llm.calls[0].ctx) == 0
    assert llm.calls[0].last_user_text == "still echoed"
