"""LLM contract: stream text deltas, complete tool calls and usage for a `ChatContext`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from parley.chat import ChatContext, ToolCall
from parley.tools import FunctionTool, ToolRegistry


@dataclass(frozen=True, slots=True)
class LLMCapabilities:
    streaming: bool = True
    tools: bool = True
    vision: bool = False
    context_window: int | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cached_tokens + other.cached_tokens,
        )


@dataclass(frozen=True, slots=True)
class LLMChunk:
    """One piece of a streamed reply: a text delta, finished tool calls, and/or usage."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None


class LLM(ABC):
    """Base class for language models.

    Implement `chat`. The base owns the tool registry that Style A registers into with
    ``@agent.llm.register_function(...)``; the engine passes tools to `chat` explicitly.
    """

    capabilities: LLMCapabilities = LLMCapabilities()
    model: str = ""

    def __init__(self) -> None:
        self.tools = ToolRegistry()

    @abstractmethod
    def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncIterator[LLMChunk]:
        """Stream the reply to ``ctx``. Tool calls arrive complete (arguments assembled)."""

    @overload
    def register_function(self, fn: Callable[..., Any], /) -> FunctionTool: ...

    @overload
    def register_function(
        self, fn: None = None, /, *, name: str | None = None, description: str | None = None
    ) -> Callable[[Callable[..., Any]], FunctionTool]: ...

    def register_function(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
        """Decorator: make ``fn`` a tool this LLM's agent may call."""
        if fn is not None:
            return self.tools.register(fn, name=name, description=description)

        def decorator(func: Callable[..., Any]) -> FunctionTool:
            return self.tools.register(func, name=name, description=description)

        return decorator

    async def warm_up(self) -> None:
        """Load models or open connections ahead of the first turn (optional)."""

    async def prepare(self, ctx: ChatContext, tools: Sequence[FunctionTool] = ()) -> None:
        """The next call will likely be on ``ctx``: prime caches (e.g. a local model's prompt
        prefix) so that call is fast (optional). The engine calls it in the background when a
        session starts and again as the user's words arrive, before the turn is committed; a
        slow prepare never delays the session. An implementation may go as far as starting the
        reply to a ``ctx`` that ends with the user's words (preemptive generation), as long as
        `chat` then gives exactly what it would have given without it, and nothing is kept
        running or executed when a different call comes instead."""

    async def aclose(self) -> None:
        """Release connections and models."""


@dataclass(slots=True)
class LLMResult:
    """A whole reply collected from a stream; handy in tests and simple flows."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)


async def collect(stream: AsyncIterator[LLMChunk]) -> LLMResult:
    result = LLMResult()
    async for chunk in stream:
        result.text += chunk.text
        result.tool_calls.extend(chunk.tool_calls)
        if chunk.usage is not None:
            result.usage = result.usage + chunk.usage
    return result
