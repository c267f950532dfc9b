"""The cascading engine: VAD + STT decide turns, the LLM answers, TTS speaks sentence by sentence.

Media path per input frame: resample (only if rates differ) → VAD (synchronous, cheap) →
``await stt.push`` (back-pressure). No task, event object or lock per frame. Everything else
is driven by a few events per turn: VAD speech start/end, transcripts, timers. The runner
talks to its session only through `RunnerHost`; barge-in (`parley.barge_in`), endpointing
(`parley.endpointing`), preemptive replies (`parley.preemption`), speaking (`parley.speaking`)
and tools (`parley.tool_runner`) live in their own modules.
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
from parley.listening import Listener
from parley.llm import LLM
from parley.metrics import TurnMetrics
from parley.playout import Playout
from parley.policy import InterruptionOptions, TurnOptions
from parley.preemption import PreemptiveReply
from parley.segmenting import VADSegmentedSTT
from parley.speaking import CascadingSettings, Speaker, Utterance
from parley.speech import SpeechHandle
from parley.stt import STT, STTEvent
from parley.text import split_sentences
from parley.tracing import TurnTrace
from parley.tts import TTS
from parley.turn import TurnDetector
from parley.vad import VAD, VADEvent, VADStream


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
        # A batch STT behind a VAD segmenter runs our VAD already: read its events (one VAD
        # per frame, one clock) rather than run a second stream of it.
        shared_vad = isinstance(parts.stt, VADSegmentedSTT) and parts.stt.vad is parts.vad
        self._has_vad = parts.vad is not None
        self._vad: VADStream | None = parts.vad.stream() if parts.vad and not shared_vad else None
        self.listener = Listener(
            host,
            parts.stt,
            options.timeouts.stt_stall,
            self._on_stt,
            owed=lambda: self.user_speaking or (self._turn_open and not self._pending),
            on_vad=self._on_vad if shared_vad else None,
        )
        self._guesses = shared_vad  # its partials are guesses made in the VAD's silence wait
        self.preemption = (
            PreemptiveReply(host, self.speaker, self._next_turn, self._unused)
            if options.turn.preemptive_reply
            else None
        )
        self._closed = False
        self.user_speaking = False
        self._pending: list[str] = []
        self._turn_open = False
        self._speech_ended_at: float | None = None
        self._final_at: float | None = None
        self._turn_began: float | None = None  # the open turn's first speech (its trace starts)
        self._over_agent = False  # the open turn began while the agent spoke
        self._turns = 0
        self._primed = ""  # the user text the LLM was last primed with
        # Priming costs a context copy and a task per transcript: only for LLMs that use it.
        self._primes = type(parts.llm).prepare is not LLM.prepare

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self) -> None:
        self.listener.start()

    async def aclose(self) -> None:
        self._closed = True
        self.endpointing.cancel()
        self.barge_in.clear()
        await self.speaker.aclose()
        await self.listener.aclose()

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
            await self.listener.push(piece)

    async def push_video(self, participant: Participant, frame: VideoFrame) -> None:
        """The cascading engine does not watch video (processors do)."""

    def user_text(self, text: str) -> None:
        """A typed message: a complete user turn."""
        if not text.strip():
            return
        self.interrupt_for_user()
        self._over_agent = False  # typed words are always answered
        self._pending.append(text.strip())
        self._open_turn()
        self._commit_turn()

    # --- VAD and STT events --------------------------------------------------------------------

    def _on_vad(self, event: VADEvent) -> None:
        if event.type == "speech_started":
            self._user_started()
        else:
            self._user_stopped(event.speech_duration)

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
                guess = " ".join([*self._pending, event.text.strip()])
                if not (self._guesses and self._preempt(guess)):
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
            if event.text.strip() and not self._preempt(" ".join(self._pending)):
                self._prime_llm()  # a reply answering ahead reads the words already
            if not self._has_vad:
                self.user_speaking = False
                self._speech_ended_at = self._speech_ended_at or time.perf_counter()
            if not self.user_speaking:
                self._schedule_endpoint()

    # --- turn-taking ---------------------------------------------------------------------------

    def _open_turn(self) -> None:
        if not self._turn_open:
            self._turn_open = True
            self._turn_began = time.perf_counter()
            self.host.emit(UserTurnStarted())

    def _user_started(self) -> None:
        if self.preemption is not None:
            self.preemption.drop()
        self.user_speaking = True
        self.listener.speech_started()
        self._speech_ended_at = None
        self.endpointing.cancel()
        self.host.touch_activity()
        self._open_turn()
        speaking = self._agent_speaking()
        self._over_agent = self._over_agent or speaking
        self.barge_in.speech_started(speaking)

    def _user_stopped(self, speech_duration: float) -> None:
        self.user_speaking = False
        self._speech_ended_at = time.perf_counter()
        self.barge_in.speech_stopped(speech_duration)
        self.listener.flush()
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

    def _preempt(self, text: str) -> bool:
        """Answer ``text`` ahead if the options allow; whether a reply to it is now held."""
        if self.preemption is None or not self._turn_open or self._over_agent:
            return False
        return self.preemption.start(text, self._turn_began)

    def _give_up_turn(self) -> None:
        """No transcript arrived for the speech: nothing to answer."""
        if not self._pending:
            if self.preemption is not None:
                self.preemption.drop()
            self._turn_open = False
            self._speech_ended_at = None
            self._over_agent = False
            if self.barge_in.active:
                self.barge_in.dismiss_if_quiet()

    def _commit_turn(self) -> None:
        self.endpointing.cancel()
        if not self._pending or self._closed:
            return
        text = " ".join(self._pending)
        self._pending = []
        self._turn_open = False
        over_agent, self._over_agent = self._over_agent, False
        if (over_agent or self._agent_speaking()) and self.barge_in.only_interrupts(text):
            self._only_interrupt()
            return
        held = self.preemption.take(text) if self.preemption is not None else None
        # A held reply answered ahead (`parley.preemption`) brings its turn.
        turn = held.turn if held and held.turn else TurnMetrics(self._next_turn(), user_text=text)
        turn.end_of_speech, turn.final_transcript = self._speech_ended_at, self._final_at
        turn.turn_committed = time.perf_counter()
        self._speech_ended_at = self._final_at = None
        self.barge_in.turn_committed()
        self.host.chat_ctx.add("user", text)  # the one place a user turn enters history
        self.host.emit(UserTurnEnded(text))
        if held is not None:
            self.speaker.release(held)
            return
        trace = TurnTrace.start(self.host, turn, self._turn_began)
        speech = Utterance(
            SpeechHandle(), lambda q: self.speaker.llm_reply(speech, q, text), turn, trace=trace
        )
        self._schedule(speech)

    def _only_interrupt(self) -> None:
        """A turn that only says "stop" (or "mm-hm") over the agent: stop it, answer nothing;
        the words stay out of the history (a reply to "stop" would be the next thing said)."""
        if self.preemption is not None:
            self.preemption.drop()
        self._speech_ended_at = self._final_at = None
        self.barge_in.clear()
        self.interrupt_for_user()

    def _agent_speaking(self) -> bool:
        current = self.speaker.current
        return current is not None and current.handle.interruptible and not current.held

    def _next_turn(self) -> int:
        self._turns += 1
        return self._turns

    def _unused(self, turn: int) -> None:
        if turn == self._turns:  # no later turn took a number meanwhile
            self._turns -= 1

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
        self._over_agent = False

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
            handle,
            lambda q: self.speaker.llm_reply(speech, q, text or "", instructions),
            turn,
            trace=TurnTrace.start(self.host, turn, None),
        )
        self._schedule(speech)

    def _schedule(self, speech: Utterance) -> None:
        if self._closed:
            speech.abandon()  # never spoken; its waiters must not hang
        else:
            self.speaker.schedule(speech)

    @property
    def busy(self) -> bool:
        return self.speaker.busy
