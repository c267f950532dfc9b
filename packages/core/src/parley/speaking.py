"""The cascading engine's speaking side: an utterance's text from the LLM (with tool rounds),
sentence by sentence through the TTS to the playout."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from opentelemetry.trace import INVALID_SPAN

from parley.chat import ChatContext, ChatMessage, ToolCall
from parley.events import (
    AgentTurnEnded,
    AgentTurnStarted,
    SessionEvent,
    SessionState,
    Transcript,
)
from parley.heard import SpeakingRate, SpokenPiece, heard_text
from parley.host import RunnerHost
from parley.logs import turn_context
from parley.metrics import TurnMetrics
from parley.playout import Playout
from parley.policy import ProviderTimeouts, ToolOptions
from parley.providers import describe
from parley.speech import SpeechHandle
from parley.text import SentenceSplitter
from parley.tool_runner import CANCELLED_RESULT, ERROR_PREFIX, run_tool_calls
from parley.tracing import TurnTrace, active
from parley.tracing import end as end_span
from parley.tts import TTS
from parley.watchdog import Watchdog

T = TypeVar("T")


class StreamDeadline:
    """Bounds each wait for a stream's next item: the first chunk (the first-token and
    first-audio timeouts) and every gap after it (the stall timeouts), so a provider that
    stops mid-stream fails the turn instead of hanging it. A TimeoutError says ``silent``.

    Only the waits count, not the time the consumer spends between items (a playout write
    blocked on a full buffer is no stall). One `Watchdog` timer serves the whole stream.

    ``async with StreamDeadline() as deadline: item = await deadline.next(it, 10.0, "…")``
    """

    def __init__(self) -> None:
        self._scope = asyncio.timeout(None)
        self._watchdog = Watchdog(self._expire)
        self._silent = ""
        self._fired: str | None = None

    async def __aenter__(self) -> StreamDeadline:
        await self._scope.__aenter__()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._watchdog.cancel()
        # It calls back into us: dropping it frees us by reference counting, with no cycle
        # left for the collector (one per LLM stream and TTS piece).
        del self._watchdog
        try:
            await self._scope.__aexit__(*exc_info)
        except TimeoutError as exc:
            if self._fired is None:
                raise
            raise TimeoutError(self._fired) from exc

    async def next(self, iterator: AsyncIterator[T], seconds: float, silent: str) -> T:
        """``iterator``'s next item, if it comes within ``seconds``."""
        self._silent = silent
        self._watchdog.watch(seconds)
        try:
            return await anext(iterator)
        finally:
            self._watchdog.rest()

    def _expire(self, seconds: float) -> None:
        self._fired = f"{self._silent} for {seconds} s"
        self._scope.reschedule(asyncio.get_running_loop().time())  # the waiter is cancelled


class CascadingSettings(Protocol):
    """The `CascadingPipeline` options the speaking side reads."""

    @property
    def timeouts(self) -> ProviderTimeouts: ...
    @property
    def tool_options(self) -> ToolOptions: ...
    @property
    def max_history(self) -> int | None: ...
    @property
    def first_piece_words(self) -> int | None: ...


class HeldRounds:
    """A held reply's rounds of read-only tool calls, run before its release: their messages
    (call and results) and what they would have told the session (`ToolCalled` events, error
    reports). Both reach the session when the reply is released; never, if it is dropped."""

    def __init__(self) -> None:
        self.messages: list[ChatMessage] = []
        self._said: list[Callable[[RunnerHost], None]] = []

    def emit(self, event: SessionEvent) -> None:
        self._said.append(lambda host: host.emit(event))

    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None:
        self._said.append(lambda host: host.report_error(source, error, recoverable))

    def commit(self, host: RunnerHost) -> None:
        """Into the history and out to the session, once."""
        messages, self.messages = self.messages, []
        said, self._said = self._said, []
        for message in messages:
            host.chat_ctx.add_message(message)
        for say in said:
            say(host)


@dataclass(slots=True)
class Utterance:
    """A scheduled utterance: fixed text (`say`) or an LLM reply."""

    handle: SpeechHandle
    produce: Callable[[asyncio.Queue[str | None]], Awaitable[None]]
    turn: TurnMetrics | None = None
    pieces: list[SpokenPiece] = field(default_factory=list)
    final_round_start: int = 0  # index in pieces where the last LLM round began
    task: asyncio.Task[None] | None = None  # produces the text (and ends the utterance)
    speaking: asyncio.Task[bool] | None = None  # voices it: TTS into the playout
    trace: TurnTrace | None = None  # the turn's spans, when the session is traced
    # A preemptive reply (`parley.preemption`): produced, but silent and unannounced until set.
    released: asyncio.Event | None = None
    ahead: HeldRounds = field(default_factory=HeldRounds)  # its read-only tool rounds

    @property
    def held(self) -> bool:
        return self.released is not None and not self.released.is_set()

    def abandon(self) -> None:
        """Never spoken (dropped or the engine closed): release its waiters and its trace."""
        if self.trace is not None and self.turn is not None:
            self.trace.finish(self.turn, "dropped")
        self.handle.finish()


class Speaker:
    """Speaks utterances one at a time, in order, and ends them (played or interrupted)."""

    def __init__(
        self, host: RunnerHost, settings: CascadingSettings, tts: TTS, playout: Playout
    ) -> None:
        self.host = host
        self.settings = settings
        self.tts = tts
        self.playout = playout
        self.current: Utterance | None = None
        self.closed = False
        self.rate = SpeakingRate()
        self._queue: deque[Utterance] = deque()
        self._active: asyncio.Task[None] | None = None  # the running utterance's task
        self._speaking: asyncio.Task[bool] | None = None  # and its speaker

    @property
    def busy(self) -> bool:
        return self.current is not None or bool(self._queue)

    def schedule(self, speech: Utterance) -> None:
        # Start at once when idle: one task hop from a committed turn to the LLM.
        self._queue.append(speech)
        if self._active is None:
            self._start_next()

    def drop_queued(self) -> None:
        """Drop the queued interruptible utterances (the user barged in)."""
        kept: deque[Utterance] = deque()
        for queued in self._queue:
            if queued.handle.interruptible:
                queued.handle.interrupted = True
                queued.abandon()
            else:
                kept.append(queued)
        self._queue = kept

    def release(self, speech: Utterance) -> None:
        """Announce a held utterance and let its audio play (its turn was committed)."""
        if speech.held and not speech.handle.done:
            self._announce(speech)
            assert speech.released is not None
            speech.released.set()
            speech.ahead.commit(self.host)

    def discard(self, speech: Utterance) -> None:
        """Drop a held utterance without a trace: no event, no history, nothing was played."""
        for task in (speech.task, speech.speaking):
            if task is not None and not task.done():
                task.cancel()
        if self.current is speech:
            self.current = None
        speech.abandon()

    def stop(self, speech: Utterance) -> None:
        """Interrupt ``speech`` now; the history keeps what the user heard of it."""
        if speech.held:
            self.discard(speech)
            return
        played = self.playout.stop(speech.handle)
        # Both: a reply task cancelled before its first step cannot cancel its speaker.
        for task in (speech.task, speech.speaking):
            if task is not None and not task.done():
                task.cancel()
        self._finish(speech, interrupted=True, played=played)

    async def aclose(self) -> None:
        self.closed = True
        if self.current is not None:
            self.stop(self.current)
        while self._queue:
            self._queue.popleft().abandon()
        running = [task for task in (self._active, self._speaking) if task is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _start_next(self, _done: object = None) -> None:
        self._active = None
        while self._queue and not self.closed:
            speech = self._queue.popleft()
            if speech.handle.done:
                speech.abandon()
                continue
            self.current = speech
            # The reply's logs (LLM, tools, TTS) carry its turn number (`parley.logs`).
            turn_id = speech.turn.turn if speech.turn is not None else None
            context = turn_context(turn_id)
            queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=16)
            speech.task = self._active = asyncio.create_task(
                self._run(speech, queue), name=f"parley-{speech.handle.id}", context=context
            )
            # Created now, after the reply's task: in the loop pass where the LLM hands over
            # its first piece the speaker is already there to take it (one pass sooner than a
            # speaker the reply's task would start).
            speech.speaking = self._speaking = asyncio.create_task(
                self.speak(speech, queue), name=f"parley-{speech.handle.id}-tts", context=context
            )
            speech.task.add_done_callback(self._start_next)
            return

    async def _run(self, speech: Utterance, queue: asyncio.Queue[str | None]) -> None:
        """Produce the text in this task while `speak` voices it in ``speech.speaking``; a TTS
        failure cancels the production, and cancelling this task cancels the speaker."""
        handle = speech.handle
        speaking = speech.speaking
        assert speaking is not None
        producer = asyncio.current_task()
        assert producer is not None

        def stop_producing(task: asyncio.Task[bool]) -> None:
            if not task.cancelled() and task.exception() is not None:
                producer.cancel()

        speaking.add_done_callback(stop_producing)
        if not speech.held:
            self._announce(speech)
        try:
            await self._produce(speech, queue)
            finished = await speaking
        except asyncio.CancelledError:
            if not speaking.done() or speaking.cancelled() or speaking.exception() is None:
                speaking.cancel()
                await asyncio.gather(speaking, return_exceptions=True)
                raise
            producer.uncancel()  # the cancel was stop_producing's, handled here
            finished = self._speaking_failed(speech, speaking.exception())
        except Exception as error:  # the speaker failed while this task waited for it
            finished = self._speaking_failed(speech, error)
        if self.current is speech and not handle.done:
            self._finish(speech, interrupted=not finished)

    def _announce(self, speech: Utterance) -> None:
        self.host.set_state(SessionState.THINKING if speech.turn else SessionState.SPEAKING)
        self.playout.begin(speech.handle)
        self.host.emit(AgentTurnStarted(speech.handle.id))

    def _speaking_failed(self, speech: Utterance, error: BaseException | None) -> bool:
        assert error is not None
        self.host.report_error("tts", error, True)
        if speech.trace is not None:
            speech.trace.tts_failed(error)
        return True

    async def _produce(self, speech: Utterance, queue: asyncio.Queue[str | None]) -> None:
        try:
            await speech.produce(queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            source = "flow" if speech.turn else "say"
            self.host.report_error(getattr(exc, "parley_source", source), exc, True)
        finally:
            # Wake the speaker even if the queue is full of unspoken text.
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()

    def _finish(self, speech: Utterance, *, interrupted: bool, played: float | None = None) -> None:
        handle = speech.handle
        if handle.done:
            return
        if played is None and not interrupted:
            self.playout.release(handle)
        host = self.host
        handle.interrupted = interrupted
        pieces = speech.pieces[speech.final_round_start :] if speech.turn else speech.pieces
        if interrupted:
            heard = heard_text(pieces, played or 0.0, self.rate.seconds_per_character)
        else:
            heard = " ".join(p.text for p in pieces)
        handle.heard_text = heard
        if handle.add_to_history and heard:
            host.chat_ctx.add_message(ChatMessage("assistant", heard, interrupted=interrupted))
        if heard:
            host.emit(Transcript("agent", heard, True))
        host.emit(AgentTurnEnded(handle.id, heard, interrupted))
        if speech.turn is not None:
            speech.turn.speech_id = handle.id
            speech.turn.interrupted = interrupted
            if speech.trace is not None:
                speech.trace.finish(speech.turn, "interrupted" if interrupted else "played")
            host.turn_completed(speech.turn)
        if self.current is speech:
            self.current = None
        handle.finish()
        host.touch_activity()
        if not self._queue and not self.closed:
            host.set_state(SessionState.LISTENING)
        if speech.turn is not None and speech.turn.user_text:
            host.spawn(host.flow.on_turn_end(), "flow")

    async def speak(self, speech: Utterance, queue: asyncio.Queue[str | None]) -> bool:
        """TTS each piece as it arrives and wait for the playout; False if the speech
        stopped being current."""
        handle = speech.handle
        turn = speech.turn
        trace = speech.trace
        host = self.host
        timeouts = self.settings.timeouts
        name = f"TTS {describe(self.tts)}"
        stalled = f"{name} stalled mid-stream: no audio"
        # Here, not before the LLM starts: this runs while the LLM thinks.
        self.playout.prepare(self.tts.capabilities.sample_rate)
        while (text := await queue.get()) is not None:
            piece = SpokenPiece(text)
            speech.pieces.append(piece)
            if turn is not None:
                turn.tts_characters += len(text)
                if trace is not None:
                    trace.tts_started(describe(self.tts))
            else:
                host.metrics.tts_characters += len(text)
            stream = self.tts.synthesize(text)
            try:
                iterator = aiter(stream)
                async with StreamDeadline() as deadline:
                    try:
                        frame = await deadline.next(
                            iterator, timeouts.tts_first_audio, f"{name} produced no audio"
                        )
                    except StopAsyncIteration:
                        piece.complete = True
                        continue
                    if turn is not None and turn.tts_first_audio is None:
                        turn.tts_first_audio = time.perf_counter()
                        if trace is not None:
                            trace.first_audio()
                    if speech.released is not None and not speech.released.is_set():
                        await speech.released.wait()  # a preemptive reply: until committed
                        self.playout.prepare(self.tts.capabilities.sample_rate)
                    while True:
                        if host.state is not SessionState.SPEAKING:
                            host.set_state(SessionState.SPEAKING)
                        if not await self.playout.write(handle, frame):
                            return False
                        if turn is not None and turn.first_audio_sent is None:
                            turn.first_audio_sent = time.perf_counter()
                            if trace is not None:
                                trace.audio_sent()
                        piece.seconds += frame.duration
                        try:
                            frame = await deadline.next(iterator, timeouts.tts_stall, stalled)
                        except StopAsyncIteration:
                            break
                piece.complete = True
                self.rate.add(piece)
            finally:
                closer = getattr(stream, "aclose", None)
                if closer is not None:
                    await closer()
            handle.text = " ".join(p.text for p in speech.pieces)
            # The whole reply, before it has all been heard: pages reveal it with the playout
            # (the final transcript, once played, says what was heard).
            host.emit(Transcript("agent", handle.text, False))
        if trace is not None and turn is not None:
            trace.tts_ended(turn.tts_characters)
        return await self.playout.finish(handle)

    async def llm_reply(
        self,
        speech: Utterance,
        queue: asyncio.Queue[str | None],
        user_text: str,
        instructions: str | None = None,
    ) -> None:
        host = self.host
        settings = self.settings
        flow = host.flow
        turn = speech.turn
        assert turn is not None
        if user_text and not speech.held:
            await flow.on_turn_start(user_text)  # a preemptive reply's flow has no such hook
        tools = host.tools()
        rounds = 0
        queued = 0  # pieces of this reply handed to the speaker, over all rounds

        def first_words() -> int | None:
            # Only the reply's very first piece may be cut short (faster first audio): the
            # first round's, or after a silent tool call the answer round's (or its result's).
            return settings.first_piece_words if not speech.pieces and not queued else None

        while True:
            ctx = host.chat_ctx.copy()
            if speech.held:
                ctx.add("user", user_text)  # the history gets it when the turn is committed
                for message in speech.ahead.messages:
                    ctx.add_message(message)
            if instructions:
                ctx.add("system", instructions)
            if settings.max_history:
                ctx.truncate(settings.max_history)
            offered = tools if rounds < settings.tool_options.max_rounds else []
            splitter = SentenceSplitter(first_piece_words=first_words())
            text = ""
            calls: list[ToolCall] = []
            speech.final_round_start = len(speech.pieces)
            stream = flow.process_with_llm(ctx, offered)
            async for chunk in self._llm_stream(stream, turn, speech.trace):
                if chunk.text:
                    text += chunk.text
                    for piece in splitter.push(chunk.text):
                        first_piece = queue.empty() and not speech.pieces
                        await queue.put(piece)
                        queued += 1
                        if first_piece:
                            # Let the speaker start TTS now rather than after a fast stream ends.
                            await asyncio.sleep(0)
                if chunk.tool_calls:
                    calls.extend(chunk.tool_calls)
                if chunk.usage is not None:
                    turn.input_tokens += chunk.usage.input_tokens
                    turn.output_tokens += chunk.usage.output_tokens
            for piece in splitter.flush():
                await queue.put(piece)
                queued += 1
            if not calls:
                return
            rounds += 1
            speech.final_round_start = len(speech.pieces) + queue.qsize()
            if speech.held and self._all_read_only(calls):
                results = await self._tool_round_ahead(speech, text, calls)
            else:
                if speech.released is not None:
                    await speech.released.wait()  # tools act on the world: only a real turn's
                host.chat_ctx.add_message(ChatMessage("assistant", text, tool_calls=list(calls)))
                results = await run_tool_calls(
                    host,
                    calls,
                    settings.tool_options,
                    turn=turn,
                    history=host.chat_ctx,
                    span=speech.trace.span if speech.trace is not None else None,
                )
            if self._results_are_the_reply(calls, results):
                splitter = SentenceSplitter(first_piece_words=first_words())
                for piece in [*splitter.push(" ".join(results)), *splitter.flush()]:
                    await queue.put(piece)
                return

    def _all_read_only(self, calls: list[ToolCall]) -> bool:
        tools = {tool.name: tool for tool in self.host.tools()}
        return all(call.name in tools and tools[call.name].read_only for call in calls)

    def _results_are_the_reply(self, calls: list[ToolCall], results: list[str]) -> bool:
        """Whether the round's results are said as they are (`FunctionTool.result_is_reply`)
        instead of going back to the model: every tool says so and none failed."""
        tools = {tool.name: tool for tool in self.host.tools()}
        return all(
            call.name in tools
            and tools[call.name].result_is_reply
            and not result.startswith((ERROR_PREFIX, CANCELLED_RESULT))
            for call, result in zip(calls, results, strict=True)
        )

    async def _tool_round_ahead(
        self, speech: Utterance, text: str, calls: list[ToolCall]
    ) -> list[str]:
        """A held reply's round of read-only calls, run now: the answer to their results can
        be ready when the turn is committed. History and events wait for the release."""
        round_ = ChatContext([ChatMessage("assistant", text, tool_calls=list(calls))])
        results = await run_tool_calls(
            self.host,
            calls,
            self.settings.tool_options,
            turn=speech.turn,
            history=round_,
            span=speech.trace.span if speech.trace is not None else None,
            reports=speech.ahead,
        )
        speech.ahead.messages.extend(round_)
        if not speech.held:  # released while the tools ran
            speech.ahead.commit(self.host)
        return results

    async def _llm_stream(
        self, stream: AsyncIterator[Any], turn: TurnMetrics, trace: TurnTrace | None
    ) -> AsyncIterator[Any]:
        timeouts = self.settings.timeouts
        llm = self.host.llm
        name = "LLM" if llm is None else f"LLM {describe(llm)}"
        stalled = f"{name} stalled mid-stream: nothing"
        iterator = aiter(stream)
        span = trace.llm(describe(llm) if llm else "") if trace is not None else INVALID_SPAN
        error: Exception | None = None
        try:
            async with StreamDeadline() as deadline:
                try:
                    # The provider's request goes out here: its own spans nest under ours.
                    with active(span):
                        first = await deadline.next(
                            iterator, timeouts.llm_first_token, f"{name} produced nothing"
                        )
                except StopAsyncIteration:
                    return
                if turn.llm_first_token is None:
                    turn.llm_first_token = time.perf_counter()
                span.add_event("first_token")
                yield first
                while True:
                    try:
                        chunk = await deadline.next(iterator, timeouts.llm_stall, stalled)
                    except StopAsyncIteration:
                        return
                    yield chunk
        except Exception as exc:
            exc.parley_source = "llm"  # type: ignore[attr-defined]
            error = exc
            raise
        finally:
            end_span(span, error)
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()
