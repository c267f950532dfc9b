"""The cascading engine: VAD + STT decide turns, the LLM answers, TTS speaks sentence by sentence.

Media path per input frame: resample (only if rates differ) → VAD (synchronous, cheap) →
``await stt.push`` (back-pressure). No task, event object or lock per frame. Everything else
is driven by a few events per turn: VAD speech start/end, transcripts, timers. The runner
talks to its session only through `RunnerHost`; barge-in (`parley.barge_in`), endpointing
(`parley.endpointing`), speaking (`parley.speaking`) and tools (`parley.tool_runner`) live in
their own modules.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Protocol

from parley.audio import AudioResampler
from parley.barge_in import BargeIn
from parley.edge import Connection, Participant
from parley.endpointing import Endpointing
from parley.events import (
    Interrupted,
    Transcript,
    UserTurnEnded,
    UserTurnStarted,
)
from parley.frames import AudioFrame, VideoFrame
from parley.host import RunnerHost
from parley.llm import LLM
from parley.metrics import TurnMetrics
from parley.playout import Playout
from parley.policy import InterruptionOptions, TurnOptions
from parley.segmenting import VADSegmentedStream, VADSegmentedSTT
from parley.speaking import CascadingSettings, Speaker, Utterance, provider_name
from parley.speech import SpeechHandle
from parley.stt import STT, STTEvent, STTStream
from parley.text import split_sentences
from parley.tts import TTS
from parley.turn import TurnDetector
from parley.vad import VAD, VADEvent, VADStream

_STT_RESTARTS = 3


@dataclass(slots=True)
class CascadingParts:
    stt: STT
    llm: LLM
    tts: TTS
    vad: VAD | None
    turn_detector: TurnDetector | None

    def all(self) -> list[Any]:
        return [p for p in (self.vad, self.stt, self.llm, self.tts, self.turn_detector) if p]


class CascadingOptions(CascadingSettings, Protocol):
    @property
    def turn(self) -> TurnOptions: ...
    @property
    def interruption(self) -> InterruptionOptions: ...


class CascadingRunner:
    wants_video = False

    def __init__(
        self,
        host: RunnerHost,
        connection: Connection,
        options: CascadingOptions,
        parts: CascadingParts,
    ) -> None:
        self.host = host
        self.options = options
        self.cascade = parts
        self.parts = parts.all()
        self.llm: LLM | None = parts.llm
        self.playout = Playout(connection.audio_output)
        self.speaker = Speaker(host, options, parts.tts, self.playout)
        self.barge_in = BargeIn(options.interruption, self)
        self.endpointing = Endpointing(
            host,
            options.turn,
            parts.turn_detector,
            commit=self._commit_turn,
            give_up=self._give_up_turn,
        )
        self._stt_rate = parts.stt.capabilities.sample_rate
        self._resampler: AudioResampler | None = None
        self._stt: STTStream | None = None
        # A batch STT behind a VAD segmenter runs our VAD already: read its events (one VAD
        # per frame, one clock) rather than run a second stream of it.
        self._shared_vad = isinstance(parts.stt, VADSegmentedSTT) and parts.stt.vad is parts.vad
        self._has_vad = parts.vad is not None
        self._vad: VADStream | None = (
            parts.vad.stream() if parts.vad and not self._shared_vad else None
        )
        self._stt_task: asyncio.Task[None] | None = None
        # The STT stall watchdog (streaming STTs only: a segmented batch STT is bounded per
        # call). One timer, armed when the user starts speaking and re-armed only when it
        # fires; STT events just note the time.
        self._watches_stt = not isinstance(parts.stt, VADSegmentedSTT)
        self._stt_heard_at = 0.0  # loop time of the last STT event (or of the watch's start)
        self._stt_owed = False  # the user spoke and the STT has said nothing since
        self._stt_watch: asyncio.TimerHandle | None = None
        self._stt_stalled: TimeoutError | None = None
        self._closed = False
        self.user_speaking = False
        self._pending: list[str] = []
        self._turn_open = False
        self._speech_ended_at: float | None = None
        self._final_at: float | None = None
        self._turns = 0
        self._primed = ""  # the user text the LLM was last primed with
        # Priming costs a context copy and a task per transcript: only for LLMs that use it.
        self._primes = type(parts.llm).prepare is not LLM.prepare

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._stt = self._open_stt()
        self._stt_task = asyncio.create_task(self._stt_loop(self._stt), name="parley-stt")

    def _open_stt(self) -> STTStream:
        stream = self.cascade.stt.stream()
        if self._shared_vad and isinstance(stream, VADSegmentedStream):
            stream.on_vad = self._on_vad
        return stream

    async def aclose(self) -> None:
        self._closed = True
        if self._stt_watch is not None:
            self._stt_watch.cancel()
        self.endpointing.cancel()
        self.barge_in.clear()
        await self.speaker.aclose()
        if self._stt_task is not None:
            self._stt_task.cancel()
        if self._stt is not None:
            await self._stt.aclose()
        if self._stt_task is not None:
            await asyncio.gather(self._stt_task, return_exceptions=True)

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

    async def push_video(self, participant: Participant, frame: VideoFrame) -> None:
        """The cascading engine does not watch video (processors do)."""

    def user_text(self, text: str) -> None:
        """A typed message: a complete user turn."""
        if not text.strip():
            return
        self.interrupt_for_user()
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
        loop = asyncio.get_running_loop()
        while True:
            try:
                async for event in stream:
                    self._stt_heard_at = loop.time()
                    self._stt_owed = False
                    self._on_stt(event)
                if self._stt_stalled is None:
                    return
                raise self._stt_stalled
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = self._stt_stalled or exc  # a stalled stream may fail once closed
                self._stt_stalled = None
                restarts += 1
                recoverable = restarts <= _STT_RESTARTS
                self.host.report_error("stt", error, recoverable)
                if not recoverable:
                    self.host.fail(error)
                    return
                await asyncio.sleep(0.1 * restarts)
                stream = self._stt = self._open_stt()

    def _expect_transcript(self) -> None:
        """The user started speaking: the STT owes us events; watch that they come."""
        if not self._watches_stt:
            return
        self._stt_owed = True
        if self._stt_watch is None:
            loop = asyncio.get_running_loop()
            self._stt_heard_at = loop.time()
            seconds = self.options.timeouts.stt_stall
            self._stt_watch = loop.call_at(self._stt_heard_at + seconds, self._check_stt)

    def _check_stt(self) -> None:
        self._stt_watch = None
        waiting = self.user_speaking or self._stt_owed or (self._turn_open and not self._pending)
        stream = self._stt
        if not waiting or self._closed or stream is None or self._stt_stalled is not None:
            return  # nothing owed: the next speech start arms the watch again
        loop = asyncio.get_running_loop()
        seconds = self.options.timeouts.stt_stall
        due = self._stt_heard_at + seconds
        if loop.time() < due:
            self._stt_watch = loop.call_at(due, self._check_stt)
            return
        name = provider_name(self.cascade.stt)
        self._stt_stalled = TimeoutError(
            f"STT {name} stalled mid-stream: no transcript for {seconds} s"
        )
        self._stt_owed = False
        self._stt = None  # audio waits for the reopened stream
        # Closing ends the stuck iteration; `_stt_loop` then reopens through its restart path.
        self.host.spawn(stream.aclose(), "stt")

    def _on_stt(self, event: STTEvent) -> None:
        host = self.host
        if event.audio_duration:
            host.metrics.stt_audio_seconds += event.audio_duration
        kind = event.type
        if kind == "speech_started":
            if not self._has_vad:
                self._user_started()
        elif kind == "partial":
            if event.text:
                host.emit(Transcript("user", event.text, False))
                self.barge_in.words(len(event.text.split()))
                self._prime_llm(event.text)
                if not self._has_vad:
                    self.endpointing.cancel()
        elif kind in ("final", "end_of_turn"):
            if event.text.strip():
                self._final_at = time.perf_counter()
                self._pending.append(event.text.strip())
                self._open_turn()
                host.emit(Transcript("user", event.text, True))
                self.barge_in.words(len(event.text.split()))
            if kind == "end_of_turn":
                self.user_speaking = False
                self._speech_ended_at = self._speech_ended_at or self._final_at
                self._commit_turn()
                return
            if event.text.strip():
                self._prime_llm()
            if not self._has_vad:
                self.user_speaking = False
                self._speech_ended_at = self._speech_ended_at or time.perf_counter()
            if not self.user_speaking:
                self._schedule_endpoint()

    # --- turn-taking ---------------------------------------------------------------------------

    def _open_turn(self) -> None:
        if not self._turn_open:
            self._turn_open = True
            self.host.emit(UserTurnStarted())

    def _user_started(self) -> None:
        self.user_speaking = True
        self._expect_transcript()
        self._speech_ended_at = None
        self.endpointing.cancel()
        self.host.touch_activity()
        self._open_turn()
        current = self.speaker.current
        self.barge_in.speech_started(current is not None and current.handle.interruptible)

    def _user_stopped(self, speech_duration: float) -> None:
        self.user_speaking = False
        self._speech_ended_at = time.perf_counter()
        self.barge_in.speech_stopped(speech_duration)
        if self._stt is not None:
            # Ask the STT to finalize now rather than wait for its own endpointing.
            self.host.spawn(self._stt.flush(), "stt")
        self._schedule_endpoint()

    def _schedule_endpoint(self) -> None:
        awaiting = self._speech_ended_at is not None and self._turn_open
        self.endpointing.schedule(" ".join(self._pending), awaiting)

    def _prime_llm(self, partial: str = "") -> None:
        """Let the LLM read the user's words while the engine waits out endpointing: the
        reply's context will start the same way (local models then only evaluate new tokens)."""
        if not self._primes:
            return
        text = " ".join([*self._pending, partial.strip()]).strip()
        if not text or text == self._primed:
            return
        self._primed = text
        ctx = self.host.chat_ctx.copy()
        ctx.add("user", text)
        if self.options.max_history:
            ctx.truncate(self.options.max_history)
        self.host.spawn(self.cascade.llm.prepare(ctx, self.host.tools()), "llm")

    def _give_up_turn(self) -> None:
        """No transcript arrived for the speech: nothing to answer."""
        if not self._pending:
            self._turn_open = False
            self._speech_ended_at = None
            if self.barge_in.active:
                self.barge_in.dismiss_if_quiet()

    def _commit_turn(self) -> None:
        self.endpointing.cancel()
        if not self._pending or self._closed:
            return
        text = " ".join(self._pending)
        self._pending = []
        self._turn_open = False
        turn = TurnMetrics(
            turn=self._next_turn(),
            user_text=text,
            end_of_speech=self._speech_ended_at,
            final_transcript=self._final_at,
            turn_committed=time.perf_counter(),
        )
        self._speech_ended_at = None
        self._final_at = None
        self.barge_in.turn_committed()
        self.host.chat_ctx.add("user", text)  # the one place a user turn enters history
        self.host.emit(UserTurnEnded(text))
        speech = Utterance(SpeechHandle(), lambda q: self.speaker.llm_reply(speech, q, text), turn)
        self._schedule(speech)

    def _next_turn(self) -> int:
        self._turns += 1
        return self._turns

    # --- barge-in target (`parley.barge_in.BargeInTarget`) -------------------------------------

    def pause_speech(self) -> None:
        self.playout.pause()

    def resume_speech(self) -> None:
        self.playout.resume()

    def pending_words(self) -> int:
        return len(" ".join(self._pending).split())

    def false_interruption(self, resume: bool) -> None:
        current = self.speaker.current
        self.host.metrics.false_interruptions += 1
        if current is not None:
            self.host.emit(Interrupted(current.handle.id, false_interruption=True))
            if resume:
                self.playout.resume()
            else:
                self.speaker.stop(current)
        else:
            self.playout.resume()
        self._pending = []
        self._turn_open = False

    def interrupt_for_user(self) -> None:
        """Stop the current speech and drop queued interruptible ones."""
        current = self.speaker.current
        if current is not None and current.handle.interruptible:
            self.host.metrics.interruptions += 1
            self.host.emit(Interrupted(current.handle.id, false_interruption=False))
            self.speaker.stop(current)
        self.speaker.drop_queued()

    def interrupt(self) -> None:
        """User-requested interruption (`AgentSession.interrupt`)."""
        self.barge_in.clear()
        self.interrupt_for_user()

    # --- speaking ------------------------------------------------------------------------------

    def say(self, handle: SpeechHandle, text: str) -> None:
        async def produce(queue: asyncio.Queue[str | None]) -> None:
            for piece in split_sentences(text):
                await queue.put(piece)

        self._schedule(Utterance(handle, produce))

    def generate_reply(
        self, handle: SpeechHandle, text: str | None, instructions: str | None
    ) -> None:
        """Answer now: ``text`` joins the history as a user message; ``instructions``
        guide this one reply."""
        if text:
            self.host.chat_ctx.add("user", text)
        turn = TurnMetrics(
            turn=self._next_turn(), user_text=text or "", turn_committed=time.perf_counter()
        )
        speech = Utterance(
            handle, lambda q: self.speaker.llm_reply(speech, q, text or "", instructions), turn
        )
        self._schedule(speech)

    def _schedule(self, speech: Utterance) -> None:
        if self._closed:
            speech.handle.finish()  # never spoken; its waiters must not hang
        else:
            self.speaker.schedule(speech)

    @property
    def busy(self) -> bool:
        return self.speaker.busy
