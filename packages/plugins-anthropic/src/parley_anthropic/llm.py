"""Claude through the streaming Messages API, with tools."""

from __future__ import annotations

import asyncio
import functools
import inspect
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from parley.chat import ChatContext, ToolCall
from parley.errors import ProviderDisconnected
from parley.llm import LLM, LLMCapabilities, LLMChunk, Usage
from parley.providers import find_api_key
from parley.tools import FunctionTool

from parley_anthropic._messages import to_messages, to_system, to_tools

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic

T = TypeVar("T")

DEFAULT_MODEL = "claude-haiku-5-5"
KEY_VARIABLE = "ANTHROPIC_API_KEY"
BASE_URL_VARIABLE = "ANTHROPIC_BASE_URL"
DEFAULT_BASE_URL = "https://api.anthropic.com"
NO_KEY = "no-key"  # sent to a compatible server that wants none


class AnthropicLLM(LLM):
    """Claude, streamed: text deltas as they come, ``tool_use`` blocks as complete
    `ToolCall`s (their ``input_json_delta`` fragments joined), usage once at the end.

    The system prompt is the `ChatContext`'s system messages; tool results go back as
    ``tool_result`` blocks in a user turn. The key comes from ``api_key`` or
    ``ANTHROPIC_API_KEY``. ``max_tokens`` caps each reply (the API requires a cap); extra
    keyword arguments (``temperature=...``, ``thinking=...``) go with every request and
    `chat`'s own ``**options`` override them. ``timeout`` bounds each HTTP attempt (the SDK
    retries ``max_retries`` times with backoff, honouring ``Retry-After`` on 429 and 529);
    ``idle_timeout`` bounds the silence between two streamed events.

    Once the reply streams, a broken connection raises `parley.ProviderDisconnected` (the
    SDK's error chained, raw or wrapped in ``APIConnectionError`` as newer SDKs do) and a
    stall `TimeoutError`; the text already yielded stands.
    """

    capabilities = LLMCapabilities(streaming=True, tools=True)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        max_tokens: int = 1024,
        timeout: float = 30.0,
        idle_timeout: float = 30.0,
        max_retries: int = 2,
        client: AsyncAnthropic | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.max_tokens = max_tokens
        self.idle_timeout = idle_timeout
        self.options = options
        if client is None:
            from anthropic import AsyncAnthropic

            url = (base_url or os.environ.get(BASE_URL_VARIABLE) or DEFAULT_BASE_URL).rstrip("/")
            client = AsyncAnthropic(
                api_key=_api_key(api_key, url),
                base_url=url,
                timeout=timeout,
                max_retries=max_retries,
            )
        self._client = client

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncIterator[LLMChunk]:
        request: dict[str, Any] = {"max_tokens": self.max_tokens, **self.options, **options}
        system = to_system(ctx)
        if system:
            request.setdefault("system", system)
        if tools:
            request.setdefault("tools", to_tools(tools))
        messages: Any = to_messages(ctx)  # plain dicts in the SDK's TypedDict shapes
        create = self._client.messages.create
        stream = await create(
            model=self.model, messages=messages, stream=True, **_sdk_kwargs(create, request)
        )
        what = f"Anthropic ({self.model})"
        stalls, breaks = _stream_errors()
        blocks: dict[int, _ToolUse] = {}
        input_tokens = cached = output_tokens = 0
        try:
            async for event in _within(stream, self.idle_timeout, what):
                kind = event.type
                if kind == "message_start":
                    input_tokens, cached = _input_tokens(event.message.usage)
                    output_tokens = event.message.usage.output_tokens or 0
                elif kind == "content_block_start":
                    block = event.content_block
                    if block.type == "tool_use":
                        blocks[event.index] = _ToolUse(block.id, block.name)
                elif kind == "content_block_delta":
                    delta = event.delta
                    if delta.type == "text_delta" and delta.text:
                        yield LLMChunk(text=delta.text)
                    elif delta.type == "input_json_delta" and event.index in blocks:
                        blocks[event.index].arguments += delta.partial_json
                elif kind == "content_block_stop":
                    if (tool_use := blocks.pop(event.index, None)) is not None:
                        yield LLMChunk(tool_calls=(tool_use.call(),))
                elif kind == "message_delta":
                    # Running totals: the last message_delta holds the final counts.
                    output_tokens = event.usage.output_tokens or output_tokens
                    if event.usage.input_tokens is not None:
                        input_tokens, cached = _input_tokens(event.usage)
            if input_tokens or output_tokens:
                yield LLMChunk(usage=Usage(input_tokens, output_tokens, cached))
        except stalls as exc:  # the SDK's read timeout, before our idle_timeout
            raise TimeoutError(f"{what}: the stream stalled: {exc}") from exc
        except breaks as exc:  # an `error` event is an APIStatusError: not caught here
            raise ProviderDisconnected(what, exc) from exc
        finally:
            await stream.close()

    async def aclose(self) -> None:
        await self._client.close()


class _ToolUse:
    __slots__ = ("arguments", "id", "name")

    def __init__(self, id: str, name: str) -> None:
        self.id = id
        self.name = name
        self.arguments = ""

    def call(self) -> ToolCall:
        return ToolCall(self.name, self.arguments or "{}", id=self.id)


def _sdk_kwargs(method: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` as keyword arguments of an SDK ``method``: the ones it names are passed as
    such, the rest in ``extra_body`` (e.g. ``temperature``, which this SDK no longer names)."""
    known = _parameters(getattr(method, "__func__", method))
    kwargs = {k: v for k, v in options.items() if k in known}
    extra = {k: v for k, v in options.items() if k not in known}
    if extra:
        kwargs["extra_body"] = {**extra, **(kwargs.get("extra_body") or {})}
    return kwargs


@functools.cache
def _parameters(method: Callable[..., Any]) -> frozenset[str]:
    return frozenset(inspect.signature(method).parameters)


def _stream_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """What a started stream raises when it stalls, and when its connection breaks.

    SDK 2.17 and later wrap a failed read of the body in ``APITimeoutError`` or
    ``APIConnectionError`` (the transport's error chained); earlier ones let httpx2's own
    error through, or a TLS failure httpx2 leaves unmapped (``ssl.SSLError``,
    ``anyio.EndOfStream``). Timeouts come first: they are subclasses of the others.
    """
    import ssl

    import anthropic
    import anyio
    import httpx2

    stalls = (anthropic.APITimeoutError, httpx2.TimeoutException)
    breaks = (anthropic.APIConnectionError, httpx2.TransportError, ssl.SSLError, anyio.EndOfStream)
    return stalls, breaks


def _input_tokens(usage: Any) -> tuple[int, int]:
    """All input tokens (the API counts cache reads and writes apart) and the cached ones."""
    cached = usage.cache_read_input_tokens or 0
    return (usage.input_tokens or 0) + cached + (usage.cache_creation_input_tokens or 0), cached


def _api_key(api_key: str | None, base_url: str) -> str:
    if urlsplit(base_url).hostname != "api.anthropic.com":
        return api_key or os.environ.get(KEY_VARIABLE) or NO_KEY
    return find_api_key(
        api_key,
        KEY_VARIABLE,
        part="anthropic.LLM",
        signup="https://console.anthropic.com/settings/keys",
    )


async def _within(stream: AsyncIterable[T], timeout: float, what: str) -> AsyncIterator[T]:
    """Items of ``stream``; a gap longer than ``timeout`` seconds raises `TimeoutError`."""
    iterator = aiter(stream)
    while True:
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                item = await anext(iterator)
        except StopAsyncIteration:
            return
        except TimeoutError as exc:
            if scope.expired():
                raise TimeoutError(f"{what}: the server sent nothing for {timeout:g} s") from exc
            raise
        yield item
