"""llama.cpp on one worker thread: load, format with the GGUF's chat template, generate.

A `Llama` object is not thread-safe, so each model gets a single-thread executor and every
call into it (load, tokenize, generate) runs there, one request after another. Requests stream
their output through a `Channel`; closing the channel stops the generation within one token.

Consecutive turns of a conversation share the prompt prefix (system message, few-shot block,
earlier turns); `Llama.generate` keeps the KV cache of the longest common prefix and only
evaluates the new tokens, which is what makes the long few-shot block affordable.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_chat_format import CHATML_CHAT_TEMPLATE, Jinja2ChatFormatter
from parley.chat import ToolCall
from parley.llm import Usage

from parley_llamacpp.channel import Channel
from parley_llamacpp.protocol import could_be_tool_call, json_object_complete

Messages = list[dict[str, str]]
RESULT_MARK = "\ue000"  # stands for a tool result not known yet (a private-use character)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s*$")
STEER_CHOICES = 40
"""How many of the likeliest tokens a decided call's argument may be steered to."""
PREFILL_CHUNK = 128
"""Prompt tokens `Engine.prefill` evaluates at a time (a fraction of a second each)."""

logger = logging.getLogger("parley.llamacpp")

LOAD_LOCK = threading.Lock()
"""Held while a model loads: two loads at once on two threads end the process (seen with
the router's embedding model loading beside the engine's)."""


@dataclass(frozen=True, slots=True)
class Sampling:
    temperature: float = 0.0
    max_tokens: int = 256
    seed: int | None = 0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    repeat_penalty: float = 1.0


@dataclass(frozen=True, slots=True)
class Route:
    """Decided before the reply is generated (`parley_llamacpp.router`): whether it opens
    with a tool call, and for a call the text the held output must continue with."""

    call: bool
    force: Callable[[str], str] | None = None
    said: str = ""  # the user's words, which the call's text arguments are steered to


@dataclass(frozen=True, slots=True)
class Steering:
    """Keeps a decided call's string argument to the user's words, case and all."""

    tokens: np.ndarray[Any, np.dtype[np.intp]]  # tokens that are runs of letters in the words
    said: str  # the user's words, as " word word ..." (letters and digits only)

    def keeps(self, held: str) -> bool:
        """Whether the string ``held`` ends in (if any) still follows the user's words."""
        before, quote, value = held.rpartition('"')
        if not quote or before.count('"') % 2:  # not inside a string
            return True
        written = " ".join(re.findall(r"\w+", value))
        return not written or f" {written}" in self.said


@dataclass(frozen=True, slots=True)
class Request:
    """One generation. ``render(skip)`` gives the messages without the ``skip`` oldest turns."""

    render: Callable[[int], Messages]
    sampling: Sampling
    # With tools, output that opens with "{" is held back and handed to ``accept``: a
    # ToolCall ends the turn, None means "not a valid call" and a plain answer is generated.
    accept: Callable[[str], ToolCall | None] | None = None
    # The answer must be plain text (after a tool result small models tend to repeat the
    # call): a first token that opens a JSON object is replaced before any more is generated.
    plain_only: bool = False
    # Given the held output, the text a valid call must continue with ("" if not fixed).
    force: Callable[[str], str] | None = None
    # Given the held output, whether ``accept`` may still take it (else refused at once).
    viable: Callable[[str], bool] | None = None
    # Given the call, the next request's messages with RESULT_MARK for the tool's result: the
    # prompt up to the result is evaluated while the tool runs.
    after_call: Callable[[ToolCall], Messages] | None = None
    # Starts deciding whether to call a tool, on another thread while the prompt is
    # evaluated (None: the model's first token decides).
    route: Callable[[], Future[Route]] | None = None
    submitted: float = 0.0  # time.perf_counter() when the caller asked

    @property
    def checks_calls(self) -> bool:
        """Whether output opening a JSON object is inspected (and refused if not a call)."""
        return self.accept is not None or self.plain_only


@dataclass(frozen=True, slots=True)
class Stats:
    """Figures for one finished generation (handy for benchmarks and tests)."""

    prompt_tokens: int
    cached_tokens: int  # prompt tokens whose KV came from the previous request
    completion_tokens: int
    first_token_s: float | None  # request submitted -> first generated token
    total_s: float
    cancelled: bool
    rejected_tool_call: bool  # the model began a call that `accept` refused


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Call:
    call: ToolCall


@dataclass(frozen=True, slots=True)
class Done:
    usage: Usage
    stats: Stats


@dataclass(frozen=True, slots=True)
class Failed:
    error: BaseException


Event = Text | Call | Done | Failed


class ModelLoadError(RuntimeError):
    """llama.cpp could not load the model file."""


class Engine:
    def __init__(
        self,
        model_path: Path,
        *,
        n_ctx: int,
        n_threads: int,
        n_threads_batch: int,
        verbose: bool = False,
    ) -> None:
        self.model_path = model_path
        self._settings: dict[str, Any] = {
            "n_ctx": n_ctx,
            "n_threads": n_threads,
            "n_threads_batch": n_threads_batch,
            "verbose": verbose,
        }
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="parley-llamacpp")
        self._llama: Llama | None = None
        self._formatter: Jinja2ChatFormatter | None = None
        # Tokens that open a JSON object, and end/control tokens (see `_special_ids`).
        self._special: (
            tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.intp]]] | None
        ) = None
        # Tokens by their text (letters or digits, a leading space aside), for `_tokens_within`.
        self._pieces: dict[str, list[int]] | None = None
        self.last_stats: Stats | None = None
        # Set by `close` from another thread: a prompt evaluation under way stops at its
        # next chunk instead of holding the close (and the process's exit) for seconds.
        self._closing = False

    @property
    def executor(self) -> ThreadPoolExecutor:
        return self._executor

    # --- everything below runs on the worker thread ---------------------------------------

    def load(self) -> Llama:
        if self._llama is not None:
            return self._llama
        try:
            with LOAD_LOCK:
                llama = Llama(model_path=str(self.model_path), **self._settings)
        except (ValueError, RuntimeError) as exc:
            raise ModelLoadError(
                f"llama.cpp could not load {str(self.model_path)!r} ({exc}): "
                "is it a GGUF model file this llama-cpp-python version supports?"
            ) from exc
        template = llama.metadata.get("tokenizer.chat_template") or CHATML_CHAT_TEMPLATE
        self._formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=_token_text(llama, llama.token_eos()),
            bos_token=_token_text(llama, llama.token_bos()),
        )
        self._llama = llama
        return llama

    def close(self) -> None:
        self._closing = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._llama is not None:
            self._llama.close()
            self._llama = None

    def run(self, request: Request, channel: Channel[Event]) -> None:
        """Serve one request; always ends with Done or Failed unless the reader left."""
        if channel.closed:
            return
        try:
            self._generate(request, channel)
        except Exception as exc:
            channel.put(Failed(exc))

    def prefill(self, request: Request) -> int:
        """Evaluate the request's prompt into the KV cache without answering; returns its size.

        The next request that shares the prefix (same instructions and tools) starts warm.
        """
        llama = self.load()
        if request.checks_calls:
            self._special_ids(llama)  # ~0.4 s over the vocabulary, paid here, not mid-turn
        if request.route is not None:
            self._tokens_within(llama, "")  # the same for the tokens a call is steered to
        prompt = self._fit_prompt(llama, request)
        # In chunks, each evaluated after the cached prefix (generate() keeps it): a close
        # waits for one chunk, not for the whole few-shot block.
        cached = _cached_prefix(llama, prompt)
        for end in [*range(cached + PREFILL_CHUNK, len(prompt), PREFILL_CHUNK), len(prompt)]:
            if self._closing:
                break
            stream = llama.generate(prompt[:end], temp=0.0)
            try:
                next(stream, None)  # evaluates the tokens up to ``end``, then samples one
            finally:
                stream.close()
        return len(prompt)

    def _generate(self, request: Request, channel: Channel[Event]) -> None:
        llama = self.load()
        submitted = request.submitted or time.perf_counter()
        prompt = self._fit_prompt(llama, request)
        cached = _cached_prefix(llama, prompt)
        route = self._await_route(llama, prompt, request.route)
        run = _Run(llama, request.sampling, channel)
        run.start(prompt)
        rejected = False
        call = None
        if request.checks_calls:
            plain_only = request.plain_only or (route is not None and not route.call)
            if plain_only:  # a call is refused at its first visible token, not written out
                held = run.skip_blank()
            elif route is not None:  # a call, whatever the model's first token would be
                brace_ids, _ = self._special_ids(llama)
                steer = Steering(
                    self._tokens_within(llama, route.said),
                    " " + " ".join(re.findall(r"\w+", route.said)),
                )
                held = run.hold(route.force, request.viable, opening=brace_ids, steer=steer)
            else:
                held = run.hold(request.force, request.viable)
            if request.accept is not None and json_object_complete(held):
                call = request.accept(held)
            if call is not None:
                channel.put(Call(call))
            elif could_be_tool_call(held) and held.strip() and not run.cancelled:
                # Not a valid call: answer in plain words instead, restarting from the prompt
                # with the likeliest first token that does not open a JSON object.
                rejected = True
                run.restart(prompt, self._plain_first_token(llama, run.first_logits))
                run.stream_text()
            elif not could_be_tool_call(held):
                run.send(held)
                run.stream_text()
        else:
            run.stream_text()
        run.close()

        stats = Stats(
            prompt_tokens=len(prompt),
            cached_tokens=cached,
            completion_tokens=run.generated,
            first_token_s=None if run.first_token_at is None else run.first_token_at - submitted,
            total_s=time.perf_counter() - submitted,
            cancelled=run.cancelled,
            rejected_tool_call=rejected,
        )
        self.last_stats = stats
        if not run.cancelled:
            usage = Usage(
                input_tokens=len(prompt), output_tokens=run.generated, cached_tokens=cached
            )
            channel.put(Done(usage, stats))
            if call is not None and request.after_call is not None:
                self._evaluate_ahead(llama, request.after_call(call), request.sampling)

    def _await_route(
        self, llama: Llama, prompt: list[int], route: Callable[[], Future[Route]] | None
    ) -> Route | None:
        """Evaluate the prompt while the route is decided on another thread, then wait for it.
        At least the last token is evaluated, so the logits are the prompt's. A router that
        fails leaves the choice to the model (logged), not the turn without an answer."""
        if route is None:
            return None
        decision = route()
        start = min(_cached_prefix(llama, prompt), len(prompt) - 1)
        llama.n_tokens = start
        llama.eval(prompt[start:])
        try:
            return decision.result()
        except Exception:
            logger.warning("routing the question failed; the model decides", exc_info=True)
            return None

    def _fit_prompt(self, llama: Llama, request: Request) -> list[int]:
        """Tokenize, dropping the oldest turns until prompt + max_tokens fits the context."""
        budget = llama.n_ctx() - request.sampling.max_tokens
        skip = 0
        while True:
            messages = request.render(skip)
            prompt = self._tokenize(llama, messages)
            if len(prompt) <= budget:
                return prompt
            if len(request.render(skip + 1)) == len(messages):
                raise ValueError(
                    f"The prompt needs {len(prompt)} tokens but n_ctx={llama.n_ctx()} leaves "
                    f"{budget} after max_tokens={request.sampling.max_tokens}: raise n_ctx, "
                    "lower max_tokens or shorten the instructions."
                )
            skip += 1

    def _tokenize(self, llama: Llama, messages: Messages, *, upto: str | None = None) -> list[int]:
        """The prompt's tokens; with ``upto``, of its text before ``upto`` (which must occur)."""
        assert self._formatter is not None
        formatted = self._formatter(messages=messages)  # type: ignore[arg-type]
        text = formatted.prompt
        if upto is not None:
            text = text[: text.index(upto)].rstrip(" ")
        return llama.tokenize(
            text.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )

    def _evaluate_ahead(self, llama: Llama, messages: Messages, sampling: Sampling) -> None:
        """Evaluate the next prompt up to the tool result into the KV cache (its call, the
        template's turn markers and the result's label), while the caller runs the tool."""
        try:
            tokens = self._tokenize(llama, messages, upto=RESULT_MARK)
            if len(tokens) + sampling.max_tokens > llama.n_ctx():
                return  # the next request will drop old turns: its prompt starts elsewhere
            cached = _cached_prefix(llama, tokens)
            if cached < len(tokens):
                llama.n_tokens = cached
                llama.eval(tokens[cached:])
        except Exception:  # only a head start is lost: the next request evaluates the rest
            logger.warning("evaluating the prompt ahead of a tool result failed", exc_info=True)

    def _plain_first_token(
        self, llama: Llama, logits: np.ndarray[Any, np.dtype[np.float32]] | None
    ) -> int:
        if logits is None:  # cannot happen with a first token, but stay safe
            return int(llama.tokenize(b"Sorry", add_bos=False)[0])
        brace_ids, blocked_ids = self._special_ids(llama)
        masked = logits.copy()
        masked[brace_ids] = -np.inf
        masked[blocked_ids] = -np.inf
        return int(np.argmax(masked))

    def _tokens_within(self, llama: Llama, text: str) -> np.ndarray[Any, np.dtype[np.intp]]:
        """Tokens whose text is a run of letters or digits in ``text`` (a leading space aside):
        what a call's argument taken from the user's words is made of."""
        if self._pieces is None:
            self._pieces = {}
            for token in range(llama.n_vocab()):
                piece = llama.detokenize([token]).decode("utf-8", "replace").lstrip(" ")
                if piece.isalnum():
                    self._pieces.setdefault(piece, []).append(token)
        found = {
            token
            for word in re.findall(r"\w+", text)
            for start in range(len(word))
            for end in range(start + 1, len(word) + 1)
            for token in self._pieces.get(word[start:end], ())
        }
        return np.array(sorted(found), dtype=np.intp)

    def _special_ids(
        self, llama: Llama
    ) -> tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.intp]]]:
        if self._special is None:
            self._special = _special_ids(llama)
        return self._special


def _cached_prefix(llama: Llama, tokens: list[int]) -> int:
    """How many of ``tokens`` the KV cache already holds (from the previous evaluation)."""
    return int(Llama.longest_token_prefix(llama.input_ids[: llama.n_tokens].tolist(), tokens))


def _token_text(llama: Llama, token: int) -> str:
    if token < 0:
        return ""
    return llama.detokenize([token], special=True).decode("utf-8", errors="replace")


def _last_logits(llama: Llama) -> np.ndarray[Any, np.dtype[np.float32]]:
    """A copy of the logits the first token was sampled from (last position of the prompt)."""
    pointer = llama_cpp.llama_get_logits_ith(llama.ctx, -1)
    return np.ctypeslib.as_array(pointer, shape=(llama.n_vocab(),)).copy()


def _special_ids(
    llama: Llama,
) -> tuple[np.ndarray[Any, np.dtype[np.intp]], np.ndarray[Any, np.dtype[np.intp]]]:
    """Tokens that open a JSON object, and end-of-generation/control tokens."""
    vocab = llama_cpp.llama_model_get_vocab(llama.model)
    brace: list[int] = []
    blocked: list[int] = [llama.token_bos()]
    for token in range(llama.n_vocab()):
        if llama.detokenize([token]).lstrip().startswith(b"{"):
            brace.append(token)
        if llama_cpp.llama_vocab_is_eog(vocab, token):
            blocked.append(token)
    return np.array(brace, dtype=np.intp), np.array(blocked, dtype=np.intp)


class _Run:
    """Token-by-token generation for one request, with the bookkeeping `_generate` needs."""

    def __init__(self, llama: Llama, sampling: Sampling, channel: Channel[Event]) -> None:
        self._llama = llama
        self._sampling = sampling
        self._channel = channel
        self._vocab = llama_cpp.llama_model_get_vocab(llama.model)
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._stream: Iterator[int] | None = None
        self._prompt: list[int] = []
        self._tokens: list[int] = []  # what follows the prompt: generated and forced tokens
        self.generated = 0
        self.first_token_at: float | None = None
        self.first_logits: np.ndarray[Any, np.dtype[np.float32]] | None = None
        self.cancelled = False
        if sampling.seed is not None:
            llama.set_seed(sampling.seed)

    def start(self, prompt: list[int], tokens: Sequence[int] = ()) -> None:
        self._prompt, self._tokens = prompt, list(tokens)
        # generate() reuses the KV cache of the longest common prefix: only new tokens cost.
        self._stream = self._llama.generate(
            [*prompt, *tokens],
            temp=self._sampling.temperature,
            top_k=self._sampling.top_k,
            top_p=self._sampling.top_p,
            min_p=self._sampling.min_p,
            repeat_penalty=self._sampling.repeat_penalty,
        )

    def restart(self, prompt: list[int], first: int) -> None:
        """Continue from ``prompt`` + ``first`` (already chosen), emitting ``first`` as text."""
        self.close()
        self._decoder.reset()
        self.generated += 1
        self.send(self._decoder.decode(self._llama.detokenize([first])))
        self.start(prompt, [first])

    def next_piece(self) -> str | None:
        """Text of the next token; None at the end (end of turn, max_tokens, reader gone)."""
        if self._stream is None or self.generated >= self._sampling.max_tokens:
            return None
        if self._channel.closed:
            self.cancelled = True
            return None
        token = next(self._stream, None)
        if token is None:
            return None
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()
            self.first_logits = _last_logits(self._llama)
        if llama_cpp.llama_vocab_is_eog(self._vocab, token) or token == self._llama.token_bos():
            return None
        self.generated += 1
        self._tokens.append(token)
        return self._decoder.decode(self._llama.detokenize([token]))

    def force(self, text: str) -> bool:
        """Continue as if the model had written ``text``: its tokens join the prompt and are
        evaluated in one batch. False (nothing done) if ``text`` does not tokenize back to
        itself, as with tokenizers that prefix a space."""
        tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if not tokens or self._llama.detokenize(tokens).decode("utf-8", "replace") != text:
            return False
        self.close()
        self.start(self._prompt, [*self._tokens, *tokens])
        return True

    def skip_blank(self) -> str:
        """Read up to the first token with visible text; return what was read."""
        held = ""
        while not held.strip():
            piece = self.next_piece()
            if piece is None:
                break
            held += piece
        return held

    def hold(
        self,
        force: Callable[[str], str] | None = None,
        viable: Callable[[str], bool] | None = None,
        *,
        opening: np.ndarray[Any, np.dtype[np.intp]] | None = None,
        steer: Steering | None = None,
    ) -> str:
        """Read while the output may still be a JSON tool call; return what was held.

        ``force`` names the text a call must continue with; it is skipped over, not generated.
        Reading stops early once ``viable`` says the call would be refused anyway.

        With ``opening`` (the tokens that open a JSON object) the call was decided beforehand:
        the output starts with the likeliest of them, whatever the model would have said
        first, and a token that ``viable`` refuses is replaced by the likeliest one it takes,
        among the model's top choices and the ``steer`` tokens (the model wrote "Egypt" for
        "Is it hot in Cairo?", and "Athos" for "Athens").
        """
        held = self._open(opening) if opening is not None else ""
        while (
            could_be_tool_call(held)
            and not json_object_complete(held)
            and (viable is None or viable(held))
        ):
            forced = force(held) if force is not None and held.strip() else ""
            if forced and self.force(forced):
                held += forced
            before = held
            piece = self.next_piece()
            if piece is None:
                break
            held += piece
            if opening is not None and viable is not None and not self._fits(held, viable, steer):
                held = self._replace_last(before, viable, steer) or held
        return held

    def _fits(self, held: str, viable: Callable[[str], bool], steer: Steering | None) -> bool:
        """Whether the token just read may stay: ``viable`` and ``steer`` take it."""
        return viable(held) and (steer is None or steer.keeps(held))

    def _replace_last(
        self, before: str, viable: Callable[[str], bool], steer: Steering | None
    ) -> str | None:
        """Replace the token just read by the likeliest that `_fits`: a ``steer`` token, or
        one of the `STEER_CHOICES` likeliest that ends the string. The new held text, or None
        if none fits."""
        logits = _last_logits(self._llama)  # those the token was sampled from
        choices = np.argsort(logits)[::-1][:STEER_CHOICES]
        allowed: set[int] = set()
        if steer is not None and len(steer.tokens):
            choices = np.union1d(choices, steer.tokens)
            allowed = set(steer.tokens.tolist())
        for token in choices[np.argsort(logits[choices])[::-1]]:
            text = self._llama.detokenize([int(token)]).decode("utf-8", "replace")
            if int(token) not in allowed and not text.startswith('"'):
                continue
            if not self._fits(before + text, viable, steer):
                continue
            self.close()
            self._decoder.reset()
            self.start(self._prompt, [*self._tokens[:-1], int(token)])
            return before + text
        return None

    def _open(self, opening: np.ndarray[Any, np.dtype[np.intp]]) -> str:
        """Start the output with the likeliest of the ``opening`` tokens; return its text.

        The prompt must have been evaluated last (its logits are read); `first_logits` keeps
        them, so a refused call restarts from the model's own choice."""
        self.first_logits = _last_logits(self._llama)
        self.first_token_at = time.perf_counter()
        first = int(opening[np.argmax(self.first_logits[opening])])
        self.close()
        self.generated += 1
        self.start(self._prompt, [first])
        return self._decoder.decode(self._llama.detokenize([first]))

    def send(self, text: str) -> None:
        if text and not self.cancelled and not self._channel.put(Text(text)):
            self.cancelled = True

    def stream_text(self) -> None:
        """Send the output as it comes, until its end or a sentence said before: greedy
        decoding on a small model can loop ("He was brave. He was brave. ..."), and what
        follows a repeat is more of it."""
        said: set[str] = set()
        sentence = ""
        while not self.cancelled:
            piece = self.next_piece()
            if piece is None:
                return
            self.send(piece)
            sentence += piece
            if _SENTENCE_END.search(sentence):
                key = " ".join(sentence.lower().split())
                if key in said:
                    return
                said.add(key)
                sentence = ""

    def close(self) -> None:
        if self._stream is not None:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()
            self._stream = None
