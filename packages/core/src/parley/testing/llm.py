"""Fake language model: scripted replies streamed word by word, with failure injection.

``FakeLLM(replies=["Hi!", Reply(tool_calls=[tool_call("get_weather", location="Paris")]),
"It is sunny."])`` answers each `chat` call with the next reply; ``respond=`` computes replies
from the context instead. Once the replies run out it echoes the last user message
(``"You said: …"``). Every call is recorded in ``calls`` with a deep copy of its context.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from parley.chat import ChatContext, ToolCall
from parley.llm import LLM, LLMCapabilities, LLMChunk, Usage
from parley.tools import FunctionTool

_TOKEN = re.compile(r"\s*\S+\s*")


def tokenize(text: str) -> list[str]:
    """Words with their following spaces; joined back they give ``text`` exactly."""
    tokens = _TOKEN.findall(text)
    return tokens if tokens else ([text] if text else [])


def tool_call(name: str, /, **arguments: Any) -> ToolCall:
    """A `ToolCall` with ``arguments`` encoded as the JSON text a model would send."""
    return ToolCall(name=name, arguments=json.dumps(arguments))


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer.

    ``error`` is raised after ``error_after_tokens`` text tokens (0: before the first chunk);
    ``hang`` stops after ``hang_after_tokens`` tokens and never yields again (for timeouts).
    Tool calls follow the text, then usage (``usage`` or an estimate).
    """

    text: str = ""
    tool_calls: Sequence[ToolCall] = ()
    error: BaseException | None = None
    error_after_tokens: int = 0
    hang: bool = False
    hang_after_tokens: int = 0
    usage: Usage | None = None


Respond = Callable[[ChatContext], str | Reply | Awaitable[str | Reply]]


@dataclass(slots=True)
class LLMCall:
    """What one `chat` call received and how its stream ended."""

    ctx: ChatContext  # deep copy taken at call time (empty when contexts are not recorded)
    tools: list[str]
    options: dict[str, Any]
    last_user_text: str | None = None  # the newest user message's content at call time
    reply: Reply | None = None  # known once the stream starts
    tokens_sent: int = 0
    finished: bool = False  # the stream ran to its end
    cancelled: bool = False  # the reader stopped early (closed or cancelled the stream)


def _echo(user_text: str | None) -> Reply:
    return Reply("Hello!" if user_text is None else f"You said: {user_text}")


def _words(ctx: ChatContext) -> int:
    return sum(len(m.content.split()) for m in ctx.messages)


async def _forever() -> None:
    await asyncio.get_running_loop().create_future()


class FakeLLM(LLM):
    """Scripted streaming LLM.

    ``first_token_delay`` waits before the first chunk; ``tokens_per_second`` paces the rest
    (0 = no delay). ``error`` makes every call fail before its first chunk; ``hang`` makes
    every call hang there. ``record_contexts=False`` skips the deep copy of each context
    (it grows with the conversation; benchmarks of long sessions turn it off).
    """

    def __init__(
        self,
        replies: Sequence[str | Reply] = (),
        *,
        respond: Respond | None = None,
        first_token_delay: float = 0.0,
        tokens_per_second: float = 0.0,
        error: BaseException | None = None,
        hang: bool = False,
        record_contexts: bool = True,
        model: str = "fake",
    ) -> None:
        super().__init__()
        self.capabilities = LLMCapabilities(streaming=True, tools=True)
        self.model = model
        self.first_token_delay = float(first_token_delay)
        self.tokens_per_second = float(tokens_per_second)
        self.error = error
        self.hang = hang
        self.record_contexts = record_contexts
        self.calls: list[LLMCall] = []
        self.warmed_up = False
        self.closed = False
        self._replies: deque[str | Reply] = deque(replies)
        self._respond = respond

    def add_replies(self, *replies: str | Reply) -> None:
        """Queue more scripted replies."""
        self._replies.extend(replies)

    @property
    def pending_replies(self) -> int:
        return len(self._replies)

    @property
    def last_call(self) -> LLMCall | None:
        return self.calls[-1] if self.calls else None

    def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncIterator[LLMChunk]:
        last_user = ctx.last("user")
        call = LLMCall(
            ctx.copy() if self.record_contexts else ChatContext(),
            [tool.name for tool in tools],
            dict(options),
            None if last_user is None else last_user.content,
        )
        self.calls.append(call)
        if self.error is not None or self.hang:  # a broken provider consumes no reply
            return self._stream(call, ctx, Reply(error=self.error, hang=self.hang))
        scripted = self._replies.popleft() if self._replies else None
        return self._stream(call, ctx, scripted)

    async def _choose(self, call: LLMCall, ctx: ChatContext, scripted: str | Reply | None) -> Reply:
        if scripted is None and self._respond is not None:
            result = self._respond(ctx)
            scripted = await result if inspect.isawaitable(result) else result
        if scripted is None:
            return _echo(call.last_user_text)
        return Reply(scripted) if isinstance(scripted, str) else scripted

    async def _stream(
        self, call: LLMCall, ctx: ChatContext, scripted: str | Reply | None
    ) -> AsyncIterator[LLMChunk]:
        try:
            reply = call.reply = await self._choose(call, ctx, scripted)
            if self.first_token_delay > 0:
                await asyncio.sleep(self.first_token_delay)
            gap = 1.0 / self.tokens_per_second if self.tokens_per_second > 0 else 0.0
            tokens = tokenize(reply.text)
            for index, token in enumerate(tokens):
                await self._interrupt_point(reply, index)
                if index and gap:
                    await asyncio.sleep(gap)
                call.tokens_sent += 1
                yield LLMChunk(text=token)
            await self._interrupt_point(reply, len(tokens))
            if reply.tool_calls:
                yield LLMChunk(tool_calls=tuple(reply.tool_calls))
            yield LLMChunk(usage=reply.usage or Usage(_words(ctx), len(tokens)))
            call.finished = True
        except (GeneratorExit, asyncio.CancelledError):
            call.cancelled = True
            raise

    @staticmethod
    async def _interrupt_point(reply: Reply, sent: int) -> None:
        if reply.error is not None and sent == reply.error_after_tokens:
            raise reply.error
        if reply.hang and sent == reply.hang_after_tokens:
            await _forever()

    async def warm_up(self) -> None:
        self.warmed_up = True

    async def aclose(self) -> None:
        self.closed = True
