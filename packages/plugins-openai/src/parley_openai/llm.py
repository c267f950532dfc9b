"""Streaming Chat Completions with tools, for OpenAI and any OpenAI-compatible server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from parley.chat import ChatContext, ToolCall
from parley.llm import LLM, LLMCapabilities, LLMChunk, Usage
from parley.tools import FunctionTool

from parley_openai._client import make_client, mid_stream, sdk_kwargs, within
from parley_openai._messages import to_messages

if TYPE_CHECKING:
    from openai import AsyncOpenAI, AsyncStream
    from openai.types.chat import ChatCompletionChunk
    from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall
    from openai.types.completion_usage import CompletionUsage

logger = logging.getLogger("parley.openai")

DEFAULT_MODEL = "gpt-5.4-mini"


class OpenAILLM(LLM):
    """A chat model behind ``/chat/completions``, streamed.

    ``base_url`` points it at any OpenAI-compatible server (Ollama ``http://localhost:11434/v1``,
    vLLM, llama.cpp server, Groq, OpenRouter); the key comes from ``api_key`` or
    ``OPENAI_API_KEY`` and may be left out for a server that needs none. Extra keyword
    arguments (``temperature=...``, ``max_completion_tokens=...``, ``reasoning_effort=...``)
    are sent with every request; `chat`'s own ``**options`` override them per call.

    ``timeout`` bounds each HTTP attempt (the SDK retries ``max_retries`` times with backoff,
    honouring ``Retry-After`` on 429); ``idle_timeout`` bounds the silence between two
    streamed chunks. ``include_usage=False`` is for servers that reject ``stream_options``.
    Once the reply streams, a broken connection raises `parley.ProviderDisconnected` (the
    SDK's error chained); the text already yielded stands.
    """

    capabilities = LLMCapabilities(streaming=True, tools=True)

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        timeout: float = 30.0,
        idle_timeout: float = 30.0,
        max_retries: int = 2,
        include_usage: bool = True,
        client: AsyncOpenAI | None = None,
        **options: Any,
    ) -> None:
        super().__init__()
        self.model = model
        self.idle_timeout = idle_timeout
        self.include_usage = include_usage
        self.options = options
        self._client = client or make_client(
            api_key=api_key,
            base_url=base_url,
            part="openai.LLM",
            timeout=timeout,
            max_retries=max_retries,
            organization=organization,
        )

    @property
    def base_url(self) -> str:
        return str(self._client.base_url)

    async def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncIterator[LLMChunk]:
        request: dict[str, Any] = {**self.options, **options}
        if tools:
            request.setdefault("tools", [tool.schema() for tool in tools])
        if self.include_usage:
            request.setdefault("stream_options", {"include_usage": True})
        messages: Any = to_messages(ctx)  # plain dicts in the SDK's TypedDict shapes
        create = self._client.chat.completions.create
        stream: AsyncStream[ChatCompletionChunk] = await create(
            model=self.model, messages=messages, stream=True, **sdk_kwargs(create, request)
        )
        calls = ToolCallAssembler()
        usage: Usage | None = None
        what = f"OpenAI chat ({self.model})"
        try:
            with mid_stream(what):
                async for chunk in within(stream, self.idle_timeout, what):
                    for text in _texts(chunk):
                        yield LLMChunk(text=text)
                    for choice in chunk.choices:
                        if choice.index == 0 and choice.delta.tool_calls:
                            calls.add(choice.delta.tool_calls)
                        if choice.index == 0 and choice.finish_reason and calls:
                            yield LLMChunk(tool_calls=calls.finish())
                    if chunk.usage is not None:
                        # Kept, not summed: some servers repeat a running total on every chunk.
                        usage = _usage(chunk.usage)
            if calls:
                yield LLMChunk(tool_calls=calls.finish())
            if usage is not None:
                yield LLMChunk(usage=usage)
        finally:
            await stream.close()

    async def aclose(self) -> None:
        await self._client.close()


def _texts(chunk: ChatCompletionChunk) -> list[str]:
    out = []
    for choice in chunk.choices:
        if choice.index != 0:
            continue
        delta = choice.delta
        if delta.content:
            out.append(delta.content)
        if delta.refusal:  # said aloud like any other answer
            out.append(delta.refusal)
    return out


def _usage(usage: CompletionUsage) -> Usage:
    details = usage.prompt_tokens_details
    cached = details.cached_tokens if details is not None else None
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=cached or 0,
    )


@dataclass(slots=True)
class _PartialCall:
    id: str | None = None
    name: str = ""
    arguments: str = ""


class ToolCallAssembler:
    """Joins streamed tool-call deltas into complete `ToolCall`s.

    OpenAI sends a call's id and name once, then argument fragments, all under one ``index``.
    Some compatible servers send each call whole, omit ``index``, or reuse index 0 for every
    call with a new id; each of those starts a new call here.
    """

    def __init__(self) -> None:
        self._calls: list[_PartialCall] = []
        self._by_index: dict[int, _PartialCall] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, deltas: Sequence[ChoiceDeltaToolCall]) -> None:
        for delta in deltas:
            index = getattr(delta, "index", None)
            call = self._by_index.get(index) if index is not None else None
            new_id = getattr(delta, "id", None)
            if call is None or (new_id and call.id and new_id != call.id):
                call = _PartialCall()
                self._calls.append(call)
                if index is not None:
                    self._by_index[index] = call
            if new_id:
                call.id = new_id
            function = getattr(delta, "function", None)
            if function is None:
                continue
            if function.name:
                call.name = function.name
            if function.arguments:
                call.arguments += function.arguments

    def finish(self) -> tuple[ToolCall, ...]:
        """The calls assembled so far (the assembler is then empty)."""
        done = []
        for call in self._calls:
            if not call.name:
                logger.warning("dropping a streamed tool call without a name: %r", call)
                continue
            arguments = call.arguments or "{}"
            done.append(
                ToolCall(call.name, arguments, id=call.id)
                if call.id
                else ToolCall(call.name, arguments)
            )
        self._calls.clear()
        self._by_index.clear()
        return tuple(done)
