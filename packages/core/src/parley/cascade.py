"""The cascading engine: VAD + STT decide turns, the LLM answers, TTS speaks sentence by sentence.

Media path per input frame: resample (only if rates differ) → VAD (synchronous, cheap) →
``await stt.push`` (back-pressure). No task, event object or lock per frame. Everything else
is driven by a few events per turn: VAD speech start/end, transcripts, timers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parley.audio import AudioResampler
from parley.chat import ChatMessage, ToolCall
from parley.edge import Participant
from parley.events import (
    AgentTurnEnded,
    AgentTurnStarted,
    Interrupted,
    SessionState,
    ToolCalled,
    Transcript,
    UserTurnEnded,
    UserTurnStarted,
)
from parley.frames import AudioFrame
from parley.metrics import TurnMetrics
from parley.pipeline import CascadingParts, CascadingPipeline
from parley.playout import Playout
from parley.speech import SpeechHandle
from parley.stt import STTEvent, STTStream
from parley.text import SentenceSplitter, split_sentences
from parley.tools import ToolError
from parley.vad import VADEvent, VADStream

if TYPE_CHECKING:
    from parley.session import AgentSession

logger = logging.getLogger("parley.engine")

_STT_RESTARTS = 3


@dataclass(slots=True)
class _Speech:
    """A scheduled utterance: fixed text (`say`) or an LLM reply."""

    handle: SpeechHandle
    produce: Callable[[asyncio.Queue[str | None]], Awaitable[None]]
    turn: TurnMetrics | None = None
    pieces: list[tuple[str, float]] = field(default_factory=list)  # (text, seconds spoken)
    final_round_start: int = 0  # index in pieces where the last LLM round began
    task: asyncio.Task[None] | None = None


class CascadingRunner:
    def __init__(self, session: AgentSession, pipeline: CascadingPipeline, parts: CascadingParts):
        self.session = session
        self.pipeline = pipeline
        self.parts = parts
        self.playout = Playout(session.connection_or_raise().audio_output)
        self._stt_rate = parts.stt.capabilities.sample_rate
        self._resampler: AudioResampler | None = None
        self._stt: STTStream | None = None
        self._vad: VADStream | None = parts.vad.stream() if parts.vad else None
        self._stt_task: asyncio.Task[None] | None = None
        self._speech_task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[_Speech] = asyncio.Queue()
        self._current: _Speech | None = None
        self._closed = False
        # user turn state
        self.user_speaking = False
        self._pending: list[str] = []
        self._turn_open = False
        self._speech_ended_at: float | None = None
        self._final_at: float | None = None
        self._endpoint: asyncio.TimerHandle | None = None
        self._eou_task: asyncio.Task[None] | None = None
        # barge-in state
        self._candidate_started: float | None = None
        self._candidate_words = 0
        self._candidate_long_enough = False
        self._duration_timer: asyncio.TimerHandle | None = None
        self._false_timer: asyncio.TimerHandle | None = None
        self._turns = 0
        self._primed = ""  # the user text the LLM was last primed with

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._open_stt()
        self._speech_task = asyncio.create_task(self._speech_loop(), name="parley-speech")

    def _open_stt(self) -> None:
        self._stt = self.parts.stt.stream()
        self._stt_task = asyncio.create_task(self._stt_loop(self._stt), name="parley-stt")

    async def aclose(self) -> None:
        self._closed = True
        self._cancel_timers()
        current = self._current
        if current is not None:
            self._stop_speech(current, interrupted=True, record=True)
        while not self._queue.empty():
            self._queue.get_nowait().handle._finish()
        tasks = [t for t in (self._speech_task, self._stt_task, self._eou_task) if t]
        if current is not None and current.task is not None:
            tasks.append(current.task)
        for task in tasks:
            task.cancel()
        if self._stt is not None:
            await self._stt.aclose()
        await asyncio.gather(*tasks, return_exceptions=True)

    # --- input ---------------------------------------------------------------------------------

    async def push_audio(self, participant: Participant, frame: AudioFrame) -> None:
        if frame.sample_rate != self._stt_rate or frame.channels != 1:
            if self._resampler is None:
                self._resampler = AudioResampler(self._stt_rate, 1, "int16")
            frames = self._resampler.push(frame)
        else:
            frames = [frame]
        for piece in frames:
            if self._vad is not None:
                for event in self._vad.push(piece):
                    self._on_vad(event)
            stt = self._stt
            if stt is not None:
                await stt.push(piece)

    def user_text(self, text: str) -> None:
        """A typed message: a complete user turn."""
        if not text.strip():
            return
        self._interrupt_for_user()
        self._pending.append(text.strip())
        self._open_turn()
        self._commit_turn()

    # --- VAD and STT events --------------------------------------------------------------------

    def _on_vad(self, event: VADEvent) -> None:
        if event.type == "speech_started":
            self._user_started()
        else:
            self._user_stopped(event.speech_duration)

    async def _stt_loop(self, stream: STTStream) -> None:
        restarts = 0
        while True:
            try:
                async for event in stream:
                    self._on_stt(event)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                restarts += 1
                recoverable = restarts <= _STT_RESTARTS
                self.session._report_error("stt", exc, recoverable)
                if not recoverable:
                    self.session._fail(exc)
                    return
                await asyncio.sleep(0.1 * restarts)
                stream = self.parts.stt.stream()
                self._stt = stream

    def _on_stt(self, event: STTEvent) -> None:
        session = self.session
        if event.audio_duration:
            session.metrics.stt_audio_seconds += event.audio_duration
        kind = event.type
        if kind == "speech_started":
            if self._vad is None:
                self._user_started()
        elif kind == "partial":
            if event.text:
                session._emit(Transcript("user", event.text, False))
                self._note_words(event.text)
                self._prime_llm(event.text)
                if self._vad is None:
                    self._cancel_endpoint()
        elif kind == "final":
            if event.text.strip():
                self._final_at = time.perf_counter()
                self._pending.append(event.text.strip())
                self._open_turn()
                session._emit(Transcript("user", event.text, True))
                self._note_words(event.text)
                self._prime_llm()
            if self._vad is None:
                self.user_speaking = False
                self._speech_ended_at = self._speech_ended_at or time.perf_counter()
            if not self.user_speaking:
                self._schedule_endpoint()
        elif kind == "end_of_turn":
            if event.text.strip():
                self._final_at = time.perf_counter()
                self._pending.append(event.text.strip())
                self._open_turn()
                session._emit(Transcript("user", event.text, True))
                self._note_words(event.text)
            self.user_speaking = False
            if self._speech_ended_at is None:
                self._speech_ended_at = self._final_at
            self._commit_turn()

    # --- turn-taking ---------------------------------------------------------------------------

    def _open_turn(self) -> None:
        if not self._turn_open:
            self._turn_open = True
            self.session._emit(UserTurnStarted())

    def _user_started(self) -> None:
        self.user_speaking = True
        self._speech_ended_at = None
        self._cancel_endpoint()
        self.session._touch_activity()
        self._open_turn()
        self._consider_barge_in()

    def _user_stopped(self, speech_duration: float) -> None:
        self.user_speaking = False
        self._speech_ended_at = time.perf_counter()
        if self._candidate_started is not None:
            if self._duration_timer is not None:
                self._duration_timer.cancel()
                self._duration_timer = None
            if speech_duration >= self.pipeline.interruption.min_duration:
                self._candidate_long_enough = True
            if (
                self._candidate_long_enough
                and self._candidate_words >= self.pipeline.interruption.min_words
            ):
                self._confirm_interruption()
            else:
                self._arm_false_interruption()
        if self._stt is not None:
            # Ask the STT to finalize now rather than wait for its own endpointing.
            self.session._spawn(self._flush_stt(self._stt), "stt")
        self._schedule_endpoint()

    async def _flush_stt(self, stream: STTStream) -> None:
        try:
            await stream.flush()
        except Exception as exc:
            self.session._report_error("stt", exc, True)

    def _prime_llm(self, partial: str = "") -> None:
        """Let the LLM read the user's words while the engine waits out endpointing: the
        reply's context will start the same way (local models then only evaluate new tokens)."""
        text = " ".join([*self._pending, partial.strip()]).strip()
        if not text or text == self._primed:
            return
        self._primed = text
        ctx = self.session.chat_ctx.copy()
        ctx.add("user", text)
        if self.pipeline.max_history:
            ctx.truncate(self.pipeline.max_history)
        self.session._spawn(self.parts.llm.prepare(ctx, self.session.tools()), "llm")

    def _schedule_endpoint(self) -> None:
        self._cancel_endpoint()
        loop = asyncio.get_running_loop()
        options = self.pipeline.turn
        if not self._pending:
            # Speech ended but no transcript yet: give the STT time to deliver a final.
            if self._speech_ended_at is not None and self._turn_open:
                self._endpoint = loop.call_later(
                    options.final_transcript_timeout, self._give_up_turn
                )
            return
        detector = self.parts.turn_detector
        if detector is None:
            self._endpoint = loop.call_later(options.min_endpointing_delay, self._commit_turn)
            return
        self._eou_task = asyncio.create_task(self._endpoint_with_detector())

    async def _endpoint_with_detector(self) -> None:
        options = self.pipeline.turn
        detector = self.parts.turn_detector
        assert detector is not None
        started = time.perf_counter()
        ctx = self.session.chat_ctx.copy()
        ctx.add("user", " ".join(self._pending))
        try:
            probability = await detector.end_of_turn_probability(ctx)
        except Exception as exc:
            self.session._report_error("turn", exc, True)
            probability = 1.0
        delay = (
            options.min_endpointing_delay
            if probability >= detector.threshold
            else options.max_endpointing_delay
        )
        delay = max(0.0, delay - (time.perf_counter() - started))
        self._endpoint = asyncio.get_running_loop().call_later(delay, self._commit_turn)

    def _give_up_turn(self) -> None:
        """No transcript arrived for the speech: nothing to answer."""
        if not self._pending:
            self._turn_open = False
            self._speech_ended_at = None
            if self._candidate_started is not None:
                self._resolve_false_interruption()

    def _cancel_endpoint(self) -> None:
        if self._endpoint is not None:
            self._endpoint.cancel()
            self._endpoint = None
        if self._eou_task is not None and not self._eou_task.done():
            self._eou_task.cancel()
        self._eou_task = None

    def _commit_turn(self) -> None:
        self._cancel_endpoint()
        if not self._pending or self._closed:
            return
        text = " ".join(self._pending)
        self._pending = []
        self._turn_open = False
        now = time.perf_counter()
        turn = TurnMetrics(
            turn=self._next_turn(),
            user_text=text,
            end_of_speech=self._speech_ended_at,
            final_transcript=self._final_at,
            turn_committed=now,
        )
        self._speech_ended_at = None
        self._final_at = None
        if self._candidate_started is not None:
            self._confirm_interruption()
        session = self.session
        session.chat_ctx.add("user", text)  # the one place a user turn enters history
        session._emit(UserTurnEnded(text))
        speech = _Speech(SpeechHandle(), lambda q: self._llm_reply(speech, q, text), turn)
        self._schedule(speech)

    def _next_turn(self) -> int:
        self._turns += 1
        return self._turns

    # --- barge-in ------------------------------------------------------------------------------

    def _consider_barge_in(self) -> None:
        current = self._current
        options = self.pipeline.interruption
        if current is None or not options.enabled or not current.handle.interruptible:
            return
        if self._candidate_started is None:
            self._candidate_started = time.perf_counter()
            self._candidate_words = 0
            self._candidate_long_enough = False
            self.playout.pause()
        if self._false_timer is not None:
            self._false_timer.cancel()
            self._false_timer = None
        if self._duration_timer is None:
            remaining = options.min_duration - (time.perf_counter() - self._candidate_started)
            self._duration_timer = asyncio.get_running_loop().call_later(
                max(0.0, remaining), self._duration_reached
            )

    def _duration_reached(self) -> None:
        """The user has been speaking for ``min_duration`` (the timer is cancelled if they stop)."""
        self._duration_timer = None
        if self._candidate_started is None or not self.user_speaking:
            return
        self._candidate_long_enough = True
        if self._candidate_words >= self.pipeline.interruption.min_words:
            self._confirm_interruption()

    def _note_words(self, text: str) -> None:
        if self._candidate_started is None:
            return
        self._candidate_words = max(self._candidate_words, len(text.split()))
        if (
            self._candidate_long_enough
            and self._candidate_words >= self.pipeline.interruption.min_words
        ):
            self._confirm_interruption()

    def _arm_false_interruption(self) -> None:
        if self._false_timer is not None:
            self._false_timer.cancel()
        self._false_timer = asyncio.get_running_loop().call_later(
            self.pipeline.interruption.false_interruption_timeout, self._resolve_false_interruption
        )

    def _resolve_false_interruption(self) -> None:
        self._false_timer = None
        if self._candidate_started is None or self.user_speaking:
            return
        if self._pending and len(" ".join(self._pending).split()) >= max(
            1, self.pipeline.interruption.min_words
        ):
            return  # a real turn is on its way; the commit confirms the interruption
        self._clear_candidate()
        current = self._current
        self.session.metrics.false_interruptions += 1
        if current is not None:
            self.session._emit(Interrupted(current.handle.id, false_interruption=True))
            if self.pipeline.interruption.resume_false_interruption:
                self.playout.resume()
            else:
                self._stop_speech(current, interrupted=True, record=True)
        else:
            self.playout.resume()
        self._pending = []
        self._turn_open = False

    def _confirm_interruption(self) -> None:
        self._clear_candidate()
        self._interrupt_for_user()

    def _clear_candidate(self) -> None:
        self._candidate_started = None
        self._candidate_words = 0
        for timer in (self._duration_timer, self._false_timer):
            if timer is not None:
                timer.cancel()
        self._duration_timer = None
        self._false_timer = None

    def _interrupt_for_user(self) -> None:
        """Stop the current speech and drop queued interruptible ones."""
        current = self._current
        if current is not None and current.handle.interruptible:
            self.session.metrics.interruptions += 1
            self.session._emit(Interrupted(current.handle.id, false_interruption=False))
            self._stop_speech(current, interrupted=True, record=True)
        kept: list[_Speech] = []
        while not self._queue.empty():
            queued = self._queue.get_nowait()
            if queued.handle.interruptible:
                queued.handle.interrupted = True
                queued.handle._finish()
            else:
                kept.append(queued)
        for queued in kept:
            self._queue.put_nowait(queued)

    def interrupt(self) -> None:
        """User-requested interruption (`AgentSession.interrupt`)."""
        self._clear_candidate()
        self._interrupt_for_user()

    def _cancel_timers(self) -> None:
        self._cancel_endpoint()
        self._clear_candidate()

    # --- speaking ------------------------------------------------------------------------------

    def _schedule(self, speech: _Speech) -> None:
        self._queue.put_nowait(speech)

    def say(self, handle: SpeechHandle, text: str) -> None:
        async def produce(queue: asyncio.Queue[str | None]) -> None:
            for piece in split_sentences(text):
                await queue.put(piece)

        self._schedule(_Speech(handle, produce))

    def generate_reply(
        self, handle: SpeechHandle, text: str | None, instructions: str | None
    ) -> None:
        """Answer now: ``text`` joins the history as a user message; ``instructions``
        guide this one reply."""
        if text:
            self.session.chat_ctx.add("user", text)
        turn = TurnMetrics(
            turn=self._next_turn(), user_text=text or "", turn_committed=time.perf_counter()
        )
        speech = _Speech(
            handle, lambda q: self._llm_reply(speech, q, text or "", instructions), turn
        )
        self._schedule(speech)

    async def _speech_loop(self) -> None:
        while True:
            speech = await self._queue.get()
            if speech.handle.done:
                continue
            self._current = speech
            speech.task = asyncio.create_task(
                self._run_speech(speech), name=f"parley-{speech.handle.id}"
            )
            try:
                # wait() does not raise when the speech task is cancelled by an interruption.
                await asyncio.wait([speech.task])
            finally:
                if self._current is speech:
                    self._current = None

    async def _run_speech(self, speech: _Speech) -> None:
        session = self.session
        handle = speech.handle
        session._set_state(SessionState.THINKING if speech.turn else SessionState.SPEAKING)
        self.playout.begin(handle, self.parts.tts.capabilities.sample_rate)
        session._emit(AgentTurnStarted(handle.id))
        queue: asyncio.Queue[str | None] = asyncio.Queue(maxsize=16)
        producer = asyncio.create_task(self._produce(speech, queue), name=f"parley-llm-{handle.id}")
        try:
            finished = await self._speak(speech, queue)
            if finished:
                finished = await self.playout.finish(handle)
            await producer
        except asyncio.CancelledError:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            raise
        except Exception as exc:
            producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)
            session._report_error("tts", exc, True)
            finished = True
        if self._current is speech and not handle.done:
            self._finish_speech(speech, interrupted=not finished)

    async def _produce(self, speech: _Speech, queue: asyncio.Queue[str | None]) -> None:
        try:
            await speech.produce(queue)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            source = "flow" if speech.turn else "say"
            self.session._report_error(getattr(exc, "parley_source", source), exc, True)
        finally:
            # Wake the speaker even if the queue is full of unspoken text.
            while True:
                try:
                    queue.put_nowait(None)
                    break
                except asyncio.QueueFull:
                    queue.get_nowait()

    async def _speak(self, speech: _Speech, queue: asyncio.Queue[str | None]) -> bool:
        """TTS each piece as it arrives; returns False if the speech stopped being current."""
        tts = self.parts.tts
        handle = speech.handle
        turn = speech.turn
        timeouts = self.pipeline.timeouts
        session = self.session
        while (piece := await queue.get()) is not None:
            seconds = 0.0
            index = len(speech.pieces)
            speech.pieces.append((piece, 0.0))
            if turn is not None:
                turn.tts_characters += len(piece)
            else:
                session.metrics.tts_characters += len(piece)
            stream = tts.synthesize(piece)
            try:
                iterator = aiter(stream)
                try:
                    # asyncio.timeout, not wait_for: no extra task on the first-audio path
                    async with asyncio.timeout(timeouts.tts_first_audio):
                        frame = await anext(iterator)
                except StopAsyncIteration:
                    continue
                except TimeoutError as exc:
                    raise TimeoutError(
                        f"TTS produced no audio within {timeouts.tts_first_audio} s"
                    ) from exc
                if turn is not None and turn.tts_first_audio is None:
                    turn.tts_first_audio = time.perf_counter()
                while True:
                    if session.state is not SessionState.SPEAKING:
                        session._set_state(SessionState.SPEAKING)
                    if not await self.playout.write(handle, frame):
                        return False
                    if turn is not None and turn.first_audio_sent is None:
                        turn.first_audio_sent = time.perf_counter()
                    seconds += frame.duration
                    speech.pieces[index] = (piece, seconds)
                    try:
                        frame = await anext(iterator)
                    except StopAsyncIteration:
                        break
            finally:
                closer = getattr(stream, "aclose", None)
                if closer is not None:
                    await closer()
            handle.text = " ".join(p for p, _ in speech.pieces)
        return True

    async def _llm_reply(
        self,
        speech: _Speech,
        queue: asyncio.Queue[str | None],
        user_text: str,
        instructions: str | None = None,
    ) -> None:
        session = self.session
        flow = session.flow
        turn = speech.turn
        assert turn is not None
        if user_text:
            await flow.on_turn_start(user_text)
        tools = session.tools()
        options = self.pipeline.tool_options
        rounds = 0
        queued = 0  # pieces of this reply handed to the speaker, over all rounds
        while True:
            ctx = session.chat_ctx.copy()
            if instructions:
                ctx.add("system", instructions)
            if self.pipeline.max_history:
                ctx.truncate(self.pipeline.max_history)
            offered = tools if rounds < options.max_rounds else []
            # Only the reply's very first piece may be cut short (faster first audio): the
            # first round's, or after a silent tool call the answer round's.
            first_words = (
                self.pipeline.first_piece_words if not speech.pieces and not queued else None
            )
            splitter = SentenceSplitter(first_piece_words=first_words)
            text = ""
            calls: list[ToolCall] = []
            speech.final_round_start = len(speech.pieces)
            async for chunk in self._llm_stream(flow.process_with_llm(ctx, offered), turn):
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
            session.chat_ctx.add_message(ChatMessage("assistant", text, tool_calls=list(calls)))
            speech.final_round_start = len(speech.pieces) + queue.qsize()
            await self._run_tools(calls, turn)

    async def _llm_stream(
        self, stream: AsyncIterator[Any], turn: TurnMetrics
    ) -> AsyncIterator[Any]:
        timeout = self.pipeline.timeouts.llm_first_token
        iterator = aiter(stream)
        try:
            try:
                async with asyncio.timeout(timeout):
                    first = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError as exc:
                error = TimeoutError(f"LLM produced nothing within {timeout} s")
                error.parley_source = "llm"  # type: ignore[attr-defined]
                raise error from exc
            except Exception as exc:
                exc.parley_source = "llm"  # type: ignore[attr-defined]
                raise
            if turn.llm_first_token is None:
                turn.llm_first_token = time.perf_counter()
            yield first
            while True:
                try:
                    chunk = await anext(iterator)
                except StopAsyncIteration:
                    return
                except Exception as exc:
                    exc.parley_source = "llm"  # type: ignore[attr-defined]
                    raise
                yield chunk
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()

    async def _run_tools(self, calls: list[ToolCall], turn: TurnMetrics) -> None:
        session = self.session
        registry = {tool.name: tool for tool in session.tools()}
        results: dict[str, str] = {}

        async def run(call: ToolCall) -> None:
            started = time.perf_counter()
            tool = registry.get(call.name)
            error = True
            try:
                if tool is None:
                    raise ToolError(
                        f"unknown tool {call.name!r}; available: {', '.join(registry) or 'none'}"
                    )
                timeout = tool.timeout or self.pipeline.tool_options.timeout
                try:
                    value = await asyncio.wait_for(tool.invoke(call.arguments), timeout)
                except TimeoutError as exc:
                    raise ToolError(f"tool {call.name} timed out after {timeout} s") from exc
                result = value if isinstance(value, str) else json.dumps(value, default=str)
                error = False
            except asyncio.CancelledError:
                results[call.id] = "cancelled: the user interrupted before this finished"
                raise
            except Exception as exc:
                result = f"error: {exc}"
                session.metrics.tool_errors += 1
                session._report_error("tool", exc, True)
            results[call.id] = result
            turn.tool_calls += 1
            session._emit(
                ToolCalled(call.name, call.arguments, result, error, time.perf_counter() - started)
            )

        try:
            await asyncio.gather(*(run(call) for call in calls))
        finally:
            # Every call gets a result message, also when the turn was interrupted mid-flight:
            # providers reject a history with an unanswered call.
            for call in calls:
                session.chat_ctx.add(
                    "tool",
                    results.get(call.id, "cancelled: the user interrupted before this finished"),
                    tool_call_id=call.id,
                    name=call.name,
                )

    # --- ending speech ---------------------------------------------------------------------------

    def _stop_speech(self, speech: _Speech, *, interrupted: bool, record: bool) -> None:
        played = self.playout.stop(speech.handle)
        if speech.task is not None and not speech.task.done():
            speech.task.cancel()
        self._finish_speech(speech, interrupted=interrupted, played=played if record else None)

    def _finish_speech(
        self, speech: _Speech, *, interrupted: bool, played: float | None = None
    ) -> None:
        handle = speech.handle
        if handle.done:
            return
        if played is None and not interrupted:
            self.playout.release(handle)
        session = self.session
        handle.interrupted = interrupted
        pieces = speech.pieces[speech.final_round_start :] if speech.turn else speech.pieces
        heard = _heard_text(pieces, played) if interrupted else " ".join(p for p, _ in pieces)
        handle.heard_text = heard
        if handle.add_to_history and heard:
            session.chat_ctx.add_message(ChatMessage("assistant", heard, interrupted=interrupted))
        if heard:
            session._emit(Transcript("agent", heard, True))
        session._emit(AgentTurnEnded(handle.id, heard, interrupted))
        if speech.turn is not None:
            speech.turn.speech_id = handle.id
            speech.turn.interrupted = interrupted
            session._turn_completed(speech.turn)
        if self._current is speech:
            self._current = None
        handle._finish()
        session._touch_activity()
        if self._queue.empty() and not self._closed:
            session._set_state(SessionState.LISTENING)
        if speech.turn is not None and speech.turn.user_text:
            session._spawn(session.flow.on_turn_end(), "flow")

    @property
    def busy(self) -> bool:
        return self._current is not None or not self._queue.empty()


def _heard_text(pieces: list[tuple[str, float]], played: float | None) -> str:
    """The prefix of the spoken pieces that ``played`` seconds of audio covered."""
    if played is None:
        return ""
    heard: list[str] = []
    remaining = played
    for text, seconds in pieces:
        if seconds <= 0:
            break
        if remaining >= seconds - 1e-3:
            heard.append(text)
            remaining -= seconds
            continue
        words = text.split()
        keep = int(len(words) * max(0.0, remaining) / seconds)
        if keep:
            heard.append(" ".join(words[:keep]))
        break
    return " ".join(heard)
