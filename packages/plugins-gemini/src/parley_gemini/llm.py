"""Gemini as a Parley LLM: the REST ``streamGenerateContent`` endpoint over server-sent events.

Spoken with httpx rather than through google-genai: the SDK picks its HTTP stack at run time
(httpx2, httpx or aiohttp), retries connection errors by itself with sleeps of 1-10 s, and
sends ``timeout=None`` per request unless told otherwise. Here every read has a deadline,
retries are bounded and honour Retry-After, and tests mock the one endpoint with respx.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any

import httpx
from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected
from parley.llm import LLM, LLMCapabilities, LLMChunk, Usage
from parley.tools import FunctionTool

from parley_gemini._convert import contents, function_declarations
from parley_gemini.errors import GeminiError, api_key_from, http_error, retry_delay

logger = logging.getLogger("parley.gemini")

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
# Finish reasons that mean the model refused or could not answer.
_BLOCKED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "MALFORMED_FUNCTION_CALL",
        "IMAGE_SAFETY",
    }
)


class GeminiLLM(LLM):
    """Stream replies from a Gemini model, with function calling.

    ``api_key`` defaults to ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``). ``base_url`` points
    the client elsewhere (a proxy, a test server). ``timeout`` bounds the wait for the first
    byte and for every later read; ``max_retries`` retries a refused or failed request (429,
    5xx, connection errors) before any output, waiting as long as Retry-After says; once the
    reply streams, a broken connection raises `parley.ProviderDisconnected` (not retried).
    Options of `chat` (``temperature``, ``max_output_tokens``, ``top_p``, ``thinking_budget``)
    override the constructor's for one call.
    """

    capabilities = LLMCapabilities(streaming=True, tools=True, vision=True, context_window=1048576)

    def __init__(
        self,
        model: str = "gemini-2.5-flash",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        temperature: float | None = None,
        max_output_tokens: int | None = None,
        thinking_budget: int | None = None,
        timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        super().__init__()
        self.model = model.removeprefix("models/")
        self._key = api_key_from(api_key)
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self._defaults: dict[str, Any] = {
            "temperature": temperature,
            "max_output_tokens": max_output_tokens,
            "thinking_budget": thinking_budget,
        }
        self._owns_client = http_client is None
        self._client = http_client
        self._timeouts = httpx.Timeout(timeout, connect=connect_timeout)
        # Gemini 3 models sign their function calls and want the signature back with the call
        # in the next request; core's ToolCall has no field for it, so it is kept here by id.
        self._signatures: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"GeminiLLM({self.model!r})"

    # --- request ------------------------------------------------------------------------------

    def request_body(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> dict[str, Any]:
        """The JSON body sent for ``ctx`` (public so tests and users can inspect it)."""
        system, turns = contents(ctx, self._signatures)
        body: dict[str, Any] = {"contents": turns}
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if tools:
            body["tools"] = [{"functionDeclarations": function_declarations(tools)}]
        settings = {**self._defaults, **options}
        config: dict[str, Any] = {}
        for name, wire in (
            ("temperature", "temperature"),
            ("max_output_tokens", "maxOutputTokens"),
            ("top_p", "topP"),
            ("top_k", "topK"),
            ("stop", "stopSequences"),
        ):
            if settings.get(name) is not None:
                config[wire] = settings[name]
        if settings.get("thinking_budget") is not None:
            config["thinkingConfig"] = {"thinkingBudget": settings["thinking_budget"]}
        if config:
            body["generationConfig"] = config
        return body

    # --- streaming ----------------------------------------------------------------------------

    async def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncIterator[LLMChunk]:
        body = self.request_body(ctx, tools, **options)
        url = f"{self.base_url}/v1beta/models/{self.model}:streamGenerateContent"
        attempt = 0
        while True:
            attempt += 1
            produced = False
            try:
                async with AsyncExitStack() as stack:
                    response = await self._open(stack, url, body)
                    async for chunk in self._read(response):
                        produced = True
                        yield chunk
                return
            except GeminiError as exc:
                if produced or not exc.retryable or attempt > self.max_retries:
                    raise
                delay = retry_delay(attempt, exc.retry_after)
                logger.warning("Gemini: %s; retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)

    async def _open(self, stack: AsyncExitStack, url: str, body: dict[str, Any]) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout):
                response = await stack.enter_async_context(
                    self._http_client().stream(
                        "POST",
                        url,
                        params={"alt": "sse"},
                        json=body,
                        headers={"x-goog-api-key": self._key},
                    )
                )
                if response.status_code != 200:
                    raise http_error(
                        response.status_code,
                        await response.aread(),
                        response.headers.get("retry-after"),
                    )
        except TimeoutError:
            raise GeminiError(
                f"Gemini did not answer within {self.timeout} s", retryable=True
            ) from None
        except httpx.TransportError as exc:
            raise GeminiError(
                f"cannot reach Gemini at {self.base_url}: {exc}", retryable=True
            ) from exc
        return response

    async def _read(self, response: httpx.Response) -> AsyncIterator[LLMChunk]:
        usage: Usage | None = None
        produced = False
        async for event in self._events(response):
            feedback = event.get("promptFeedback") or {}
            if feedback.get("blockReason"):
                raise GeminiError(f"Gemini blocked the prompt: {feedback['blockReason']}")
            for candidate in (event.get("candidates") or [])[:1]:
                for chunk in self._chunks(candidate.get("content") or {}):
                    produced = True
                    yield chunk
                reason = candidate.get("finishReason")
                if reason in _BLOCKED and not produced:
                    raise GeminiError(f"Gemini stopped without a reply: finish reason {reason}")
            if event.get("usageMetadata"):
                usage = _usage(event["usageMetadata"])  # cumulative: the last one counts
        if usage is not None:
            yield LLMChunk(usage=usage)

    def _chunks(self, content: Mapping[str, Any]) -> list[LLMChunk]:
        chunks: list[LLMChunk] = []
        for part in content.get("parts") or []:
            if part.get("thought"):
                continue  # thought summaries are not part of the spoken reply
            if part.get("text"):
                chunks.append(LLMChunk(text=part["text"]))
            call = part.get("functionCall")
            if call:
                call_id = call.get("id") or f"gemini_{uuid.uuid4().hex[:12]}"
                if part.get("thoughtSignature"):
                    self._signatures[call_id] = part["thoughtSignature"]
                arguments = json.dumps(call.get("args") or {})
                chunks.append(LLMChunk(tool_calls=(ToolCall(call["name"], arguments, call_id),)))
        return chunks

    async def _events(self, response: httpx.Response) -> AsyncIterator[dict[str, Any]]:
        """Server-sent events, each a JSON object; every read has ``timeout`` to arrive."""
        lines = response.aiter_lines()
        data: list[str] = []
        while True:
            try:
                async with asyncio.timeout(self.timeout):
                    line = await anext(lines)
            except StopAsyncIteration:
                break
            except TimeoutError:
                raise GeminiError(
                    f"Gemini stopped sending for {self.timeout} s in the middle of a reply"
                ) from None
            except httpx.TimeoutException as exc:  # httpx's read timeout: the same stall
                raise GeminiError(
                    f"Gemini stopped sending for {self.timeout} s in the middle of a reply"
                ) from exc
            except httpx.TransportError as exc:
                raise ProviderDisconnected("Gemini", exc) from exc
            if line.startswith("data:"):
                data.append(line[5:].strip())
            elif not line.strip() and data:
                yield _decode(data)
                data = []
        if data:
            yield _decode(data)

    def _http_client(self) -> httpx.AsyncClient:
        """The HTTP client, opened on first use (again after `aclose`, so a part closed by
        one session still serves the next)."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self._timeouts)
        return self._client

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:  # a caller's client is theirs
            client, self._client = self._client, None
            await client.aclose()


def _decode(data: list[str]) -> dict[str, Any]:
    text = "\n".join(data)
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise GeminiError(f"Gemini sent an unreadable event: {text[:200]!r}") from exc
    if isinstance(event, dict) and "error" in event:  # an error reported inside the stream
        error = event["error"] or {}
        raise GeminiError(
            f"Gemini failed mid-reply: {error.get('status', '')} {error.get('message', '')}",
            status=error.get("code"),
        )
    if not isinstance(event, dict):
        raise GeminiError(f"Gemini sent an unexpected event: {text[:200]!r}")
    return event


def _usage(metadata: Mapping[str, Any]) -> Usage:
    return Usage(
        input_tokens=int(metadata.get("promptTokenCount", 0)),
        # Thinking tokens are billed as output.
        output_tokens=int(metadata.get("candidatesTokenCount", 0))
        + int(metadata.get("thoughtsTokenCount", 0)),
        cached_tokens=int(metadata.get("cachedContentTokenCount", 0)),
    )
