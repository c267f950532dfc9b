"""Gemini LLM against respx: the documented streamGenerateContent SSE protocol, errors, retries."""

from __future__ import annotations

import asyncio
import copy
import json
import pickle
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import pytest
import respx
from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected, ProviderError
from parley.llm import collect
from parley.plugins import resolve
from parley.tools import FunctionTool
from parley_gemini import GeminiError
from parley_gemini._convert import gemini_schema
from parley_gemini.llm import GeminiLLM
from pydantic import BaseModel

BASE = "https://gemini.test"
URL = f"{BASE}/v1beta/models/gemini-2.5-flash:streamGenerateContent"


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\r\n\r\n" for e in events)


def text_event(text: str) -> dict[str, Any]:
    return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}]}


def usage_event(prompt: int, output: int, thoughts: int = 0) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": ""}]}, "finishReason": "STOP"}
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "thoughtsTokenCount": thoughts,
            "totalTokenCount": prompt + output + thoughts,
        },
    }


class Chunks(httpx.AsyncByteStream):
    """A response body that yields ``parts`` and then fails or stalls, like a broken network."""

    def __init__(self, parts: Iterable[bytes], then: str = "end") -> None:
        self.parts = list(parts)
        self.then = then

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for part in self.parts:
            yield part
        if self.then == "disconnect":
            raise httpx.RemoteProtocolError(
                "peer closed connection without sending complete message body"
            )
        if self.then == "stall":
            await asyncio.Event().wait()


async def drain(stream: AsyncIterator[Any], into: list[str]) -> None:
    async for chunk in stream:
        into.append(chunk.text)


def make_llm(**kwargs: Any) -> GeminiLLM:
    return GeminiLLM(api_key="k-123", base_url=BASE, **kwargs)


def weather_tool() -> FunctionTool:
    async def get_weather(location: str, unit: str | None = None) -> str:
        """Get the weather.

        Args:
            location: City name.
        """
        return "sunny"

    return FunctionTool(get_weather)


@respx.mock
async def test_streams_text_tool_calls_and_usage() -> None:
    call_part = {"functionCall": {"name": "get_weather", "args": {"location": "Oslo"}}}
    route = respx.post(URL).respond(
        200,
        content=sse(
            text_event("Let me "),
            text_event("check."),
            {"candidates": [{"content": {"role": "model", "parts": [call_part]}}]},
            usage_event(12, 7, thoughts=3),
        ),
        headers={"content-type": "text/event-stream"},
    )
    ctx = ChatContext()
    ctx.set_instructions("Be brief.")
    ctx.add("user", "Weather in Oslo?")
    llm = make_llm(temperature=0.2)
    result = await collect(llm.chat(ctx, [weather_tool()]))
    assert result.text == "Let me check."
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"location": "Oslo"})
    ]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 10)
    request = route.calls.last.request
    assert request.url.params["alt"] == "sse"
    assert request.headers["x-goog-api-key"] == "k-123"
    body = json.loads(request.content)
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert body["contents"] == [{"role": "user", "parts": [{"text": "Weather in Oslo?"}]}]
    assert body["generationConfig"] == {"temperature": 0.2}
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["name"] == "get_weather"
    assert declaration["parameters"]["properties"]["location"] == {
        "type": "string",
        "description": "City name.",
    }
    assert declaration["parameters"]["properties"]["unit"] == {"type": "string", "nullable": True}
    assert declaration["parameters"]["required"] == ["location"]
    await llm.aclose()


@respx.mock
async def test_tool_round_trip_history_and_thought_signature() -> None:
    signed = {
        "functionCall": {"name": "get_weather", "args": {"location": "Oslo"}},
        "thoughtSignature": "c2ln",
    }
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, content=sse({"candidates": [{"content": {"parts": [signed]}}]})),
            httpx.Response(200, content=sse(text_event("Sunny in Oslo."))),
        ]
    )
    llm = make_llm()
    ctx = ChatContext()
    ctx.add("user", "Weather?")
    first = await collect(llm.chat(ctx, [weather_tool()]))
    call = first.tool_calls[0]
    ctx.add("assistant", "", tool_calls=[call])
    ctx.add("tool", "sunny", tool_call_id=call.id, name=call.name)
    second = await collect(llm.chat(ctx, [weather_tool()]))
    assert second.text == "Sunny in Oslo."
    body = json.loads(respx.calls.last.request.content)
    assert body["contents"][1] == {"role": "model", "parts": [signed]}
    assert body["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}}],
    }


def test_a_conversation_the_agent_opened_starts_with_a_user_turn() -> None:
    ctx = ChatContext()
    ctx.set_instructions("sys")
    ctx.add("assistant", "Hello! How can I help?")
    ctx.add("user", "Hi.")
    roles = [c["role"] for c in make_llm().request_body(ctx)["contents"]]
    assert roles == ["user", "model", "user"]


def test_parallel_tool_results_share_one_turn_and_calls_from_elsewhere_work() -> None:
    llm = make_llm()
    ctx = ChatContext()
    ctx.add("user", "Two cities")
    calls = [ToolCall("get_weather", '{"location": "A"}'), ToolCall("get_weather", "")]
    ctx.add("assistant", "Checking.", tool_calls=calls)
    for call in calls:
        ctx.add("tool", f"result {call.id}", tool_call_id=call.id, name="get_weather")
    body = llm.request_body(ctx)
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    model_parts = body["contents"][1]["parts"]
    assert model_parts[0] == {"text": "Checking."}
    assert model_parts[2] == {"functionCall": {"name": "get_weather", "args": {}}}
    assert len(body["contents"][2]["parts"]) == 2
    assert "tools" not in body


class Place(BaseModel):
    city: str
    country: str = "NO"


def test_schema_inlines_references_and_drops_unsupported_keys() -> None:
    async def plan(places: list[Place], days: int = 1) -> str:
        return ""

    schema = gemini_schema(FunctionTool(plan).parameters)
    items = schema["properties"]["places"]["items"]
    assert items["type"] == "object"
    assert set(items["properties"]) == {"city", "country"}
    assert "default" not in items["properties"]["country"]
    assert "$defs" not in json.dumps(schema)
    assert schema["required"] == ["places"]


@respx.mock
async def test_rate_limit_is_retried_after_retry_after() -> None:
    route = respx.post(URL).mock(
        side_effect=[
            httpx.Response(
                429,
                json={
                    "error": {
                        "code": 429,
                        "message": "Resource exhausted",
                        "status": "RESOURCE_EXHAUSTED",
                    }
                },
                headers={"retry-after": "0"},
            ),
            httpx.Response(200, content=sse(text_event("ok"))),
        ]
    )
    ctx = ChatContext()
    ctx.add("user", "hi")
    assert (await collect(make_llm().chat(ctx))).text == "ok"
    assert route.call_count == 2


@respx.mock
async def test_provider_error_is_raised_with_its_message_and_not_retried() -> None:
    route = respx.post(URL).respond(
        400,
        json={
            "error": {
                "code": 400,
                "message": "API key not valid. Please pass a valid API key.",
                "status": "INVALID_ARGUMENT",
            }
        },
    )
    ctx = ChatContext()
    ctx.add("user", "hi")
    with pytest.raises(GeminiError, match="API key not valid") as info:
        await collect(make_llm().chat(ctx))
    assert info.value.status == 400
    assert not info.value.retryable
    assert route.call_count == 1


@respx.mock
async def test_retries_are_bounded() -> None:
    route = respx.post(URL).respond(
        503, headers={"retry-after": "0"}, json={"error": {"message": "overloaded"}}
    )
    ctx = ChatContext()
    ctx.add("user", "hi")
    with pytest.raises(GeminiError, match="503") as info:
        await collect(make_llm(max_retries=2).chat(ctx))
    assert route.call_count == 3
    assert isinstance(info.value, ProviderError)  # parley's error type, with its fields
    assert (info.value.provider, info.value.status, info.value.retryable) == ("Gemini", 503, True)


@respx.mock
async def test_mid_stream_disconnect_raises_after_the_text_so_far() -> None:
    respx.post(URL).respond(200, stream=Chunks([sse(text_event("Hello"))], then="disconnect"))
    ctx = ChatContext()
    ctx.add("user", "hi")
    received: list[str] = []
    with pytest.raises(
        ProviderDisconnected, match="Gemini: the connection broke mid-stream"
    ) as info:
        await drain(make_llm().chat(ctx), received)
    assert received == ["Hello"]
    assert respx.calls.call_count == 1  # output was produced: never retried
    assert isinstance(info.value, ProviderError) and not isinstance(info.value, GeminiError)
    assert isinstance(info.value.__cause__, httpx.RemoteProtocolError)
    assert "peer closed connection" in str(info.value)


def test_errors_copy_and_pickle_with_their_fields() -> None:
    refused = GeminiError("Gemini answered HTTP 429", status=429, retryable=True, retry_after="2")
    broken = ProviderDisconnected("Gemini", "peer closed connection", status=None)
    for error in (refused, broken):
        for again in (copy.copy(error), pickle.loads(pickle.dumps(error))):
            assert type(again) is type(error) and str(again) == str(error)
            assert vars(again) == vars(error)


@respx.mock
async def test_a_stalled_stream_times_out() -> None:
    respx.post(URL).respond(200, stream=Chunks([sse(text_event("Hel"))], then="stall"))
    ctx = ChatContext()
    ctx.add("user", "hi")
    with pytest.raises(GeminiError, match="stopped sending"):
        await collect(make_llm(timeout=0.2).chat(ctx))


@respx.mock
async def test_an_unreachable_server_is_retried_then_reported() -> None:
    route = respx.post(URL).mock(side_effect=httpx.ConnectError("connection refused"))
    ctx = ChatContext()
    ctx.add("user", "hi")
    with pytest.raises(GeminiError, match="cannot reach Gemini"):
        await collect(make_llm(max_retries=1).chat(ctx))
    assert route.call_count == 2


@respx.mock
async def test_blocked_prompt_and_error_event_are_errors() -> None:
    respx.post(URL).mock(
        side_effect=[
            httpx.Response(200, content=sse({"promptFeedback": {"blockReason": "SAFETY"}})),
            httpx.Response(
                200,
                content=sse(
                    text_event("a"),
                    {"error": {"code": 500, "status": "INTERNAL", "message": "boom"}},
                ),
            ),
        ]
    )
    ctx = ChatContext()
    ctx.add("user", "hi")
    with pytest.raises(GeminiError, match="blocked the prompt: SAFETY"):
        await collect(make_llm().chat(ctx))
    with pytest.raises(GeminiError, match="INTERNAL boom"):
        await collect(make_llm().chat(ctx))


def test_missing_key_says_which_variable_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ValueError, match="GEMINI_API_KEY"):
        GeminiLLM()
    monkeypatch.setenv("GOOGLE_API_KEY", "from-env")
    assert GeminiLLM()._key == "from-env"


def test_spec_string_builds_the_llm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "from-env")
    llm = resolve("llm", "gemini/gemini-2.5-pro?temperature=0.5")
    assert isinstance(llm, GeminiLLM)
    assert llm.model == "gemini-2.5-pro"
    assert llm.request_body(ChatContext())["generationConfig"] == {"temperature": 0.5}


@respx.mock
async def test_a_closed_llm_serves_again_and_a_given_client_is_left_open() -> None:
    respx.post(URL).respond(200, content=sse(text_event("ok")))
    ctx = ChatContext()
    ctx.add("user", "hi")
    llm = make_llm()
    assert (await collect(llm.chat(ctx))).text == "ok"
    await llm.aclose()  # the session that used it ended
    assert (await collect(llm.chat(ctx))).text == "ok"
    await llm.aclose()
    async with httpx.AsyncClient() as client:
        shared = make_llm(http_client=client)
        assert (await collect(shared.chat(ctx))).text == "ok"
        await shared.aclose()
        assert not client.is_closed
