"""parley-anthropic LLM: the streaming Messages API against respx (httpx2 transport) fakes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpcore2
import httpx
import httpx2
import pytest
import respx
from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected, ProviderError
from parley.llm import LLMChunk, Usage, collect
from parley.tools import FunctionTool
from parley_anthropic.llm import AnthropicLLM

URL = "https://api.anthropic.com/v1/messages"


def event(type: str, **fields: Any) -> bytes:
    return f"event: {type}\ndata: {json.dumps({'type': type, **fields})}\n\n".encode()


def message_start(input_tokens: int = 25, cache_read: int = 5) -> bytes:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-test",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {
            "input_tokens": input_tokens,
            "output_tokens": 1,
            "cache_read_input_tokens": cache_read,
            "cache_creation_input_tokens": 0,
        },
    }
    return event("message_start", message=message)


def text_block(index: int, *pieces: str) -> bytes:
    out = event("content_block_start", index=index, content_block={"type": "text", "text": ""})
    for piece in pieces:
        out += event(
            "content_block_delta", index=index, delta={"type": "text_delta", "text": piece}
        )
    return out + event("content_block_stop", index=index)


def tool_block(index: int, tool_id: str, name: str, *fragments: str) -> bytes:
    block = {"type": "tool_use", "id": tool_id, "name": name, "input": {}}
    out = event("content_block_start", index=index, content_block=block)
    for fragment in fragments:
        delta = {"type": "input_json_delta", "partial_json": fragment}
        out += event("content_block_delta", index=index, delta=delta)
    return out + event("content_block_stop", index=index)


def message_end(output_tokens: int, stop: str = "end_turn") -> bytes:
    delta = {"stop_reason": stop, "stop_sequence": None}
    return event("message_delta", delta=delta, usage={"output_tokens": output_tokens}) + event(
        "message_stop"
    )


def stream_response(body: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "text/event-stream"})


def make_llm(**kwargs: Any) -> AnthropicLLM:
    kwargs.setdefault("api_key", "sk-ant-test")
    kwargs.setdefault("max_retries", 0)
    return AnthropicLLM("claude-test", **kwargs)


async def drain(stream: AsyncIterator[LLMChunk], seen: list[str]) -> None:
    async for piece in stream:
        seen.append(piece.text)


def weather_tool() -> FunctionTool:
    async def get_weather(location: str) -> str:
        """Get the weather for a city."""
        return "sunny"

    return FunctionTool(get_weather)


async def test_text_tool_use_and_usage_stream_out(httpx2_mock: respx.Router) -> None:
    body = (
        message_start()
        + event("ping")
        + text_block(0, "Let me ", "check.")
        + tool_block(1, "toolu_1", "get_weather", "", '{"loca', 'tion": "Pa', 'ris"}')
        + tool_block(2, "toolu_2", "get_weather", '{"location": "Oslo"}')
        + message_end(40, stop="tool_use")
    )
    route = httpx2_mock.post(URL).mock(return_value=stream_response(body))
    ctx = ChatContext()
    ctx.add("system", "You are brief.")
    ctx.add("user", "Weather in Paris and Oslo?")
    ctx.add("system", "Use metric units.")

    pieces = [c async for c in make_llm(temperature=0.3).chat(ctx, [weather_tool()])]

    assert [c.text for c in pieces if c.text] == ["Let me ", "check."]
    calls = [call for c in pieces for call in c.tool_calls]
    assert calls == [
        ToolCall("get_weather", '{"location": "Paris"}', id="toolu_1"),
        ToolCall("get_weather", '{"location": "Oslo"}', id="toolu_2"),
    ]
    assert [c.usage for c in pieces if c.usage] == [Usage(30, 40, 5)]
    request = route.calls.last.request
    assert request.headers["authorization"] == "Bearer sk-ant-test"  # how SDK 2.x sends the key
    assert request.headers["anthropic-version"]
    sent = json.loads(request.content)
    assert sent["model"] == "claude-test"
    assert sent["stream"] is True
    assert sent["max_tokens"] == 1024
    assert sent["temperature"] == 0.3
    assert sent["system"] == "You are brief.\n\nUse metric units."
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris and Oslo?"}]}
    ]
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the weather for a city.",
            "input_schema": weather_tool().parameters,
        }
    ]


async def test_history_becomes_alternating_turns_of_blocks(httpx2_mock: respx.Router) -> None:
    route = httpx2_mock.post(URL).mock(
        return_value=stream_response(message_start() + text_block(0, "ok") + message_end(2))
    )
    ctx = ChatContext()
    ctx.add("user", "Weather in Paris")
    ctx.add("user", "and Oslo?")
    calls = [
        ToolCall("get_weather", '{"location": "Paris"}', id="t1"),
        ToolCall("get_weather", '{"location": "Oslo"}', id="t2"),
    ]
    ctx.add("assistant", "Checking. ", tool_calls=calls)
    ctx.add("tool", "sunny", tool_call_id="t1", name="get_weather")
    ctx.add("tool", "rainy", tool_call_id="t2", name="get_weather")
    ctx.add("assistant", "Paris is sunny and Oslo ", interrupted=True)
    ctx.add("assistant", "", interrupted=True)
    ctx.add("user", "Thanks")

    assert (await collect(make_llm().chat(ctx))).text == "ok"

    sent = json.loads(route.calls.last.request.content)
    assert "system" not in sent
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather in Paris"},
                {"type": "text", "text": "and Oslo?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"location": "Paris"}},  # noqa: E501
                {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {"location": "Oslo"}},  # noqa: E501
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "t2", "content": "rainy"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "Paris is sunny and Oslo…"}]},
        {"role": "user", "content": [{"type": "text", "text": "Thanks"}]},
    ]  # fmt: skip


async def test_rate_limits_are_retried_then_surface(httpx2_mock: respx.Router) -> None:
    limited = httpx.Response(
        429,
        json={"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}},
        headers={"retry-after-ms": "1"},
    )
    ok = stream_response(message_start() + text_block(0, "fine") + message_end(1))
    route = httpx2_mock.post(URL).mock(side_effect=[limited, ok, limited, limited])

    assert (await collect(make_llm(max_retries=1).chat(ChatContext([])))).text == "fine"
    assert route.call_count == 2
    with pytest.raises(anthropic.RateLimitError, match="Slow down"):
        await collect(make_llm(max_retries=1).chat(ChatContext([])))
    assert route.call_count == 4  # bounded: one try and one retry


async def test_an_error_event_mid_stream_raises(httpx2_mock: respx.Router) -> None:
    error = {"type": "overloaded_error", "message": "Overloaded"}
    body = message_start() + text_block(0, "Hi") + event("error", error=error)
    httpx2_mock.post(URL).mock(return_value=stream_response(body))
    seen: list[str] = []
    with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
        await drain(make_llm().chat(ChatContext([])), seen)
    assert seen == ["Hi"]


def peer_closed() -> httpcore2.RemoteProtocolError:
    return httpcore2.RemoteProtocolError("peer closed connection without complete body")


def read_body_unwrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the installed SDK read a stream's body as SDKs before 2.17 do, letting httpx2's
    errors through (2.17 added the wrapper that turns them into ``APIConnectionError``)."""

    def unwrapped(response: httpx2.Response, client: object) -> AsyncIterator[bytes]:
        return response.aiter_bytes()

    streaming = anthropic._streaming
    monkeypatch.setattr(streaming, "async_iter_response_bytes", unwrapped, raising=False)


@pytest.mark.parametrize("surface", ["installed", "unwrapped", "wrapped"])
async def test_a_mid_stream_disconnect_raises_provider_disconnected(
    httpx2_mock: respx.Router, monkeypatch: pytest.MonkeyPatch, surface: str
) -> None:
    """However the SDK surfaces it, a connection lost mid-reply is `ProviderDisconnected`.

    ``installed``: the transport fails and the installed SDK reports it its own way;
    ``unwrapped``: as SDKs before 2.17 do (httpx2's error itself); ``wrapped``: as 2.17 and
    later do (``APIConnectionError``, httpx2's error chained), whatever is installed.
    """
    failure: Exception = peer_closed()
    if surface == "unwrapped":
        read_body_unwrapped(monkeypatch)
    elif surface == "wrapped":
        request = httpx2.Request("POST", URL)
        failure = anthropic.APIConnectionError(message="Connection error.", request=request)
        failure.__cause__ = httpx2.RemoteProtocolError(str(peer_closed()))

    async def body() -> AsyncIterator[bytes]:
        yield message_start() + text_block(0, "Hi")
        raise failure

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    seen: list[str] = []
    with pytest.raises(ProviderDisconnected, match="connection broke mid-stream") as info:
        await drain(make_llm().chat(ChatContext([])), seen)
    assert seen == ["Hi"]  # what was streamed before the break stands
    error = info.value
    assert isinstance(error, ProviderError) and isinstance(error, ConnectionError)
    assert error.retryable and error.provider == "Anthropic (claude-test)"
    assert "peer closed connection" in str(error)
    cause = error.__cause__
    wraps = surface == "wrapped" or (
        surface == "installed" and hasattr(anthropic._streaming, "async_iter_response_bytes")
    )
    if wraps:
        assert isinstance(cause, anthropic.APIConnectionError)
        assert isinstance(cause.__cause__, httpx2.RemoteProtocolError)
    else:
        assert isinstance(cause, httpx2.RemoteProtocolError)


@pytest.mark.parametrize("surface", ["installed", "unwrapped"])
async def test_a_read_timeout_mid_stream_is_a_stall(
    httpx2_mock: respx.Router, monkeypatch: pytest.MonkeyPatch, surface: str
) -> None:
    """The SDK's own read timeout (``APITimeoutError`` from 2.17, httpx2's before) is a
    `TimeoutError`, as our idle timeout is, not a disconnect."""
    if surface == "unwrapped":
        read_body_unwrapped(monkeypatch)

    async def body() -> AsyncIterator[bytes]:
        yield message_start() + text_block(0, "Hi")
        raise httpcore2.ReadTimeout("timed out")

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    seen: list[str] = []
    with pytest.raises(
        TimeoutError, match=r"Anthropic \(claude-test\): the stream stalled"
    ) as info:
        await drain(make_llm().chat(ChatContext([])), seen)
    assert seen == ["Hi"]
    assert not isinstance(info.value, ProviderDisconnected)
    assert isinstance(info.value.__cause__, anthropic.APITimeoutError | httpx2.TimeoutException)


async def test_a_stalled_stream_times_out(httpx2_mock: respx.Router) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield message_start() + text_block(0, "Hi")
        await asyncio.Event().wait()
        yield b""

    httpx2_mock.post(URL).mock(return_value=stream_response(body()))
    seen: list[str] = []
    with pytest.raises(TimeoutError, match=r"sent nothing for 0\.2 s"):
        await drain(make_llm(idle_timeout=0.2).chat(ChatContext([])), seen)
    assert seen == ["Hi"]


async def test_a_bad_request_raises_with_the_api_message(httpx2_mock: respx.Router) -> None:
    httpx2_mock.post(URL).mock(
        return_value=httpx.Response(
            400,
            json={
                "type": "error",
                "error": {"type": "invalid_request_error", "message": "messages: field required"},
            },
        )
    )
    with pytest.raises(anthropic.BadRequestError, match="messages: field required"):
        await collect(make_llm().chat(ChatContext([])))


async def test_images_are_left_out_with_a_warning(
    httpx2_mock: respx.Router, caplog: pytest.LogCaptureFixture
) -> None:
    import numpy as np
    from parley.frames import VideoFrame
    from parley_anthropic._messages import warn_images_dropped

    warn_images_dropped.cache_clear()
    route = httpx2_mock.post(URL).mock(
        return_value=stream_response(message_start() + text_block(0, "ok") + message_end(1))
    )
    ctx = ChatContext()
    ctx.add("user", "What is this?", images=[VideoFrame(np.zeros((2, 2, 3), dtype=np.uint8))])
    await collect(make_llm().chat(ctx))
    sent = json.loads(route.calls.last.request.content)["messages"]
    assert sent == [{"role": "user", "content": [{"type": "text", "text": "What is this?"}]}]
    assert "does not send images" in caplog.text
