"""parley-openai LLM: streamed Chat Completions against respx (httpx2 transport) fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpcore2
import httpx
import httpx2
import numpy as np
import openai
import pytest
import respx
from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected, ProviderError
from parley.llm import LLMChunk, Usage, collect
from parley.tools import FunctionTool
from parley_openai.llm import OpenAILLM

BASE = "https://api.openai.com/v1"
URL = f"{BASE}/chat/completions"


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-test",
        "choices": choices,
        **extra,
    }


def sse(*chunks: dict[str, Any], done: bool = True) -> bytes:
    body = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks)
    return (body + ("data: [DONE]\n\n" if done else "")).encode()


def stream_response(body: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


async def drain(stream: AsyncIterator[LLMChunk], seen: list[str]) -> None:
    async for piece in stream:
        seen.append(piece.text)


def make_llm(**kwargs: Any) -> OpenAILLM:
    kwargs.setdefault("api_key", "sk-test")
    kwargs.setdefault("max_retries", 0)
    return OpenAILLM("gpt-test", base_url=BASE, **kwargs)


def weather_tool() -> FunctionTool:
    async def get_weather(location: str) -> str:
        """Get the weather.

        Args:
            location: City name.
        """
        return "sunny"

    return FunctionTool(get_weather)


async def test_streams_text_then_usage(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(
        return_value=stream_response(
            sse(
                chunk({"role": "assistant", "content": ""}),
                chunk({"content": "Hel"}),
                chunk({"content": "lo."}),
                chunk({}, finish="stop"),
                chunk(
                    None,
                    usage={
                        "prompt_tokens": 12,
                        "completion_tokens": 3,
                        "total_tokens": 15,
                        "prompt_tokens_details": {"cached_tokens": 4},
                    },
                ),
            )
        )
    )
    ctx = ChatContext()
    ctx.add("system", "Be brief.")
    ctx.add("user", "Hi")
    llm = make_llm(temperature=0.2)

    pieces = [c async for c in llm.chat(ctx)]

    assert [c.text for c in pieces if c.text] == ["Hel", "lo."]
    assert [c.usage for c in pieces if c.usage] == [Usage(12, 3, 4)]
    assert pieces[-1].usage is not None  # usage comes last, once
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-test"
    body = json.loads(request.content)
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.2
    assert "tools" not in body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


async def test_tool_call_deltas_are_assembled_into_complete_calls(
    httpx2_mock: respx.Router,
) -> None:
    def call_delta(index: int, **fields: Any) -> dict[str, Any]:
        return {"tool_calls": [{"index": index, **fields}]}

    def opening(index: int, call_id: str, arguments: str) -> dict[str, Any]:
        function = {"name": "get_weather", "arguments": arguments}
        return call_delta(index, id=call_id, type="function", function=function)

    route = httpx2_mock.post(URL).mock(
        return_value=stream_response(
            sse(
                chunk(opening(0, "call_a", "")),
                chunk(call_delta(0, function={"arguments": '{"loc'})),
                chunk(opening(1, "call_b", '{"location"')),
                chunk(call_delta(0, function={"arguments": 'ation": "Paris"}'})),
                chunk(call_delta(1, function={"arguments": ': "Oslo"}'})),
                chunk({}, finish="tool_calls"),
            )
        )
    )
    llm = make_llm(include_usage=False)
    ctx = ChatContext()
    ctx.add("user", "Weather in Paris and Oslo?")

    pieces = [c async for c in llm.chat(ctx, [weather_tool()], tool_choice="auto")]

    with_calls = [c for c in pieces if c.tool_calls]
    assert len(with_calls) == 1  # emitted once, complete
    calls = with_calls[0].tool_calls
    assert [(c.id, c.name) for c in calls] == [("call_a", "get_weather"), ("call_b", "get_weather")]
    assert [json.loads(c.arguments) for c in calls] == [{"location": "Paris"}, {"location": "Oslo"}]
    body = json.loads(route.calls.last.request.content)
    assert body["tool_choice"] == "auto"
    assert "stream_options" not in body
    (tool,) = body["tools"]
    assert tool["type"] == "function"
    assert tool["function"]["name"] == "get_weather"
    assert tool["function"]["parameters"]["required"] == ["location"]


async def test_compatible_servers_that_send_whole_calls_at_one_index(
    httpx2_mock: respx.Router,
) -> None:
    """Ollama-style: each call arrives whole, every one at index 0; no finish before [DONE]."""

    def whole(call_id: str | None, name: str, arguments: str | None, index: int = 0) -> dict:
        function = {"name": name} if arguments is None else {"name": name, "arguments": arguments}
        call = {"index": index, "function": function} | ({"id": call_id} if call_id else {})
        return chunk({"tool_calls": [call]})

    httpx2_mock.post(URL).mock(
        return_value=stream_response(
            sse(whole("c1", "a", "{}"), whole("c2", "b", '{"x": 1}'), whole(None, "c", None, 1))
        )
    )
    result = await collect(make_llm(top_k=20).chat(ChatContext([]), options={"num_ctx": 4096}))
    sent = json.loads(httpx2_mock.calls.last.request.content)
    assert (sent["top_k"], sent["options"]) == (20, {"num_ctx": 4096})  # via extra_body
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls[:2]] == [
        ("c1", "a", "{}"),
        ("c2", "b", '{"x": 1}'),
    ]
    third = result.tool_calls[2]
    assert (third.name, third.arguments) == ("c", "{}")
    assert third.id  # a call without an id still gets one


async def test_history_with_tool_calls_results_and_interruptions(
    httpx2_mock: respx.Router,
) -> None:
    route = httpx2_mock.post(URL).mock(return_value=stream_response(sse(chunk({"content": "ok"}))))
    ctx = ChatContext()
    ctx.add("system", "You help.")
    ctx.add("user", "Weather in Paris?")
    call = ToolCall("get_weather", '{"location": "Paris"}', id="call_1")
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", "sunny", tool_call_id="call_1", name="get_weather")
    ctx.add("assistant", "It is sunny in Paris and tomorrow", interrupted=True)
    ctx.add("assistant", "", interrupted=True)  # heard nothing: left out
    ctx.add("user", "Thanks")

    assert (await collect(make_llm().chat(ctx))).text == "ok"

    assert json.loads(route.calls.last.request.content)["messages"] == [
        {"role": "system", "content": "You help."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "assistant", "content": "It is sunny in Paris and tomorrow…"},
        {"role": "user", "content": "Thanks"},
    ]


async def test_rate_limit_is_retried_with_retry_after(httpx2_mock: respx.Router) -> None:
    limited = httpx.Response(
        429,
        json={"error": {"message": "slow down", "type": "rate_limit"}},
        headers={"retry-after-ms": "5"},
    )
    route = httpx2_mock.post(URL).mock(
        side_effect=[limited, stream_response(sse(chunk({"content": "fine"})))]
    )
    result = await collect(make_llm(max_retries=1).chat(ChatContext([])))
    assert result.text == "fine"
    assert route.call_count == 2


async def test_rate_limit_that_persists_raises(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(
        return_value=httpx.Response(
            429,
            json={"error": {"message": "quota exceeded", "type": "insufficient_quota"}},
            headers={"retry-after-ms": "1"},
        )
    )
    with pytest.raises(openai.RateLimitError, match="quota exceeded"):
        await collect(make_llm(max_retries=1).chat(ChatContext([])))
    assert route.call_count == 2  # bounded: one try and one retry


async def test_provider_error_event_mid_stream_raises(httpx2_mock: respx.Router) -> None:
    error = {"error": {"message": "the server had an error", "type": "server_error"}}
    httpx2_mock.post(URL).mock(
        return_value=stream_response(sse(chunk({"content": "Hi"}), error, done=False))
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="the server had an error"):
        await drain(make_llm().chat(ChatContext([])), seen)
    assert seen == ["Hi"]


def read_events_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the installed SDK read server-sent events without wrapping httpx2's errors in
    its own, as an SDK that lets the transport's error through does."""

    async def unwrapped(self: openai.AsyncStream[Any]) -> AsyncIterator[Any]:
        async for event in self._decoder.aiter_bytes(self.response.aiter_bytes()):
            yield event

    monkeypatch.setattr(openai.AsyncStream, "_iter_events", unwrapped)


@pytest.mark.parametrize("surface", ["installed", "unwrapped"])
async def test_mid_stream_disconnect_raises_provider_disconnected(
    httpx2_mock: respx.Router, monkeypatch: pytest.MonkeyPatch, surface: str
) -> None:
    """The SDK wraps the transport's error in ``APIConnectionError`` (``installed``) or lets
    it through (``unwrapped``): either way the part raises `ProviderDisconnected`."""
    if surface == "unwrapped":
        read_events_unwrapped(monkeypatch)

    async def body() -> AsyncIterator[bytes]:
        yield sse(chunk({"content": "Hi"}), done=False)
        raise httpcore2.RemoteProtocolError("peer closed connection without complete body")

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    seen: list[str] = []
    with pytest.raises(ProviderDisconnected, match="connection broke mid-stream") as info:
        await drain(make_llm().chat(ChatContext([])), seen)
    assert seen == ["Hi"]  # what was streamed before the break stands
    error = info.value
    assert isinstance(error, ProviderError) and error.retryable
    assert error.provider == "OpenAI chat (gpt-test)"
    assert "peer closed connection" in str(error)
    cause = error.__cause__
    if surface == "installed":
        assert isinstance(cause, openai.APIConnectionError)
        assert isinstance(cause.__cause__, httpx2.RemoteProtocolError)
    else:
        assert isinstance(cause, httpx2.RemoteProtocolError)


@pytest.mark.parametrize("surface", ["installed", "unwrapped"])
async def test_a_read_timeout_mid_stream_is_a_stall(
    httpx2_mock: respx.Router, monkeypatch: pytest.MonkeyPatch, surface: str
) -> None:
    if surface == "unwrapped":
        read_events_unwrapped(monkeypatch)

    async def body() -> AsyncIterator[bytes]:
        yield sse(chunk({"content": "Hi"}), done=False)
        raise httpcore2.ReadTimeout("timed out")

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    seen: list[str] = []
    with pytest.raises(TimeoutError, match=r"OpenAI chat \(gpt-test\): the stream stalled") as info:
        await drain(make_llm().chat(ChatContext([])), seen)
    assert seen == ["Hi"]
    assert not isinstance(info.value, ProviderDisconnected)
    assert isinstance(info.value.__cause__, openai.APITimeoutError | httpx2.TimeoutException)


async def test_a_stalled_stream_times_out(httpx2_mock: respx.Router) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield sse(chunk({"content": "Hi"}), done=False)
        await asyncio.Event().wait()  # the server goes quiet
        yield b""

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    seen: list[str] = []
    with pytest.raises(TimeoutError, match=r"sent nothing for 0\.2 s"):
        await drain(make_llm(idle_timeout=0.2).chat(ChatContext([])), seen)
    assert seen == ["Hi"]


async def test_stopping_early_closes_the_stream(
    httpx2_mock: respx.Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[object] = []
    original = openai.AsyncStream.close

    async def close(self: openai.AsyncStream[Any]) -> None:
        closed.append(self)
        await original(self)

    monkeypatch.setattr(openai.AsyncStream, "close", close)

    async def body() -> AsyncIterator[bytes]:
        yield sse(chunk({"content": "one"}), done=False)
        await asyncio.Event().wait()
        yield b""

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    stream = make_llm().chat(ChatContext([]))
    first = await anext(stream)
    assert first.text == "one"
    assert closed == []
    await stream.aclose()  # what the engine does on barge-in
    assert len(closed) == 1


async def test_images_are_left_out_with_a_warning(
    httpx2_mock: respx.Router, caplog: pytest.LogCaptureFixture
) -> None:
    from parley.frames import VideoFrame
    from parley_openai._messages import warn_images_dropped

    warn_images_dropped.cache_clear()
    route = httpx2_mock.post(URL).mock(return_value=stream_response(sse(chunk({"content": "ok"}))))
    ctx = ChatContext()
    ctx.add("user", "What is this?", images=[VideoFrame(np.zeros((2, 2, 3), dtype=np.uint8))])
    await collect(make_llm().chat(ctx))
    sent = json.loads(route.calls.last.request.content)["messages"]
    assert sent == [{"role": "user", "content": "What is this?"}]
    assert "does not send images" in caplog.text
