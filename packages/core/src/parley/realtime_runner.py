"""The realtime engine: one speech-to-speech model session, with core's playout and tools.

The model hears the user and decides turns (server VAD); core plays its audio through the
same `Playout` as the cascading engine and applies the same barge-in policy
(`parley.barge_in`, from `RealtimePipeline(interruption=...)`): user speech pauses the reply at
once, a confirmed interruption stops it and tells the model how much of it the user heard.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from parley.audio import AudioResampler
from parley.barge_in import BargeIn
from parley.chat import ChatMessage, ToolCall
from parley.edge import Connection, Participant
from parley.events import (
    AgentTurnEnded,
    AgentTurnStarted,
    Interrupted,
    SessionState,
    Transcript,
    UserTurnEnded,
    UserTurnStarted,
)
from parley.frames import AudioFrame, VideoFrame
from parley.heard import SpeakingRate, SpokenPiece, heard_text
from parley.host import RunnerHost
from parley.llm import LLM
from parley.metrics import TurnMetrics
from parley.playout import Playout
from parley.policy import InterruptionOptions, ProviderTimeouts, ToolOptions
from parley.providers import describe
from parley.realtime import Realtime, RealtimeEvent, RealtimeSession
from parley.speech import SpeechHandle
from parley.tool_runner import run_tool_calls
from parley.watchdog import Watchdog


class RealtimeOptions(Protocol):
    """The `RealtimePipeline` options the runner reads."""

    @property
    def interruption(self) -> InterruptionOptions: ...
    @property
    def tool_options(self) -> ToolOptions: ...
    @property
    def timeouts(self) -> ProviderTimeouts: ...


@dataclass(slots=True)
class _Response:
    handle: SpeechHandle
    turn: TurnMetrics
    audio: asyncio.Queue[AudioFrame | None] = field(default_factory=asyncio.Queue)
    spoken: SpokenPiece = field(default_factory=lambda: SpokenPiece(""))
    writer: asyncio.Task[None] | None = None


class RealtimeRunner:
    llm: LLM | None = None

    def __init__(
        self, host: RunnerHost, connection: Connection, options: RealtimeOptions, model: Realtime
    ) -> None:
        self.host = host
        self.options = options
        self.model = model
        self.parts: list[Any] = [model]
        self.playout = Playout(connection.audio_output)
        self.barge_in = BargeIn(options.interruption, self)
        self.rate = SpeakingRate()
        self._rate = model.capabilities.input_sample_rate
        self._resampler: AudioResampler | None = None
        self._rt: RealtimeSession | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._response: _Response | None = None
        self._pending_handles: list[SpeechHandle] = []
        self._speech_started_at: float | None = None
        self._speech_stopped_at: float | None = None
        self._tool_tasks: set[asyncio.Task[list[str]]] = set()
        self._turns = 0
        # A model that stops mid-response (no audio, no response_done) must not leave the
        # agent speaking forever: watched during a response; every model event restarts it.
        self._stall = Watchdog(self._silent)
        self.user_speaking = False

    async def start(self) -> None:
        host = self.host
        self._rt = await self.model.connect(
            instructions=host.instructions, tools=host.tools(), chat_ctx=host.chat_ctx
        )
        self._events_task = asyncio.create_task(self._event_loop(self._rt), name="parley-realtime")

    async def aclose(self) -> None:
        self.barge_in.clear()
        self._stall.cancel()
        if self._response is not None:
            self._end_response(self._response, interrupted=True)
        for handle in self._pending_handles:
            handle.finish()
        tasks = [t for t in (self._events_task, *self._tool_tasks) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._rt is not None:
            await self._rt.aclose()

    @property
    def busy(self) -> bool:
        return self._response is not None

    @property
    def wants_video(self) -> bool:
        return self.model.capabilities.video

    async def push_video(self, participant: Participant, frame: VideoFrame) -> None:
        if self._rt is not None:
            await self._rt.push_video(frame)

    # --- input ---------------------------------------------------------------------------------

    async def push_audio(self, participant: Participant, frame: AudioFrame) -> None:
        rt = self._rt
        if rt is None:
            return
        if frame.sample_rate != self._rate or frame.channels != 1:
            if self._resampler is None:
                self._resampler = AudioResampler(self._rate, 1, "int16")
            for piece in self._resampler.push(frame):
                await rt.push_audio(piece)
        else:
            await rt.push_audio(frame)

    def user_text(self, text: str) -> None:
        self.interrupt()
        self.host.chat_ctx.add("user", text)
        self.host.emit(UserTurnEnded(text))
        self.host.spawn(self._require_rt().push_text(text), "realtime")

    def say(self, handle: SpeechHandle, text: str) -> None:
        self._pending_handles.append(handle)
        prompt = f"Say exactly this to the user, word for word, and nothing else: {text}"
        self.host.spawn(self._require_rt().push_text(prompt), "realtime")

    def generate_reply(
        self, handle: SpeechHandle, text: str | None, instructions: str | None
    ) -> None:
        self._pending_handles.append(handle)
        if text:
            self.host.chat_ctx.add("user", text)
        self.host.spawn(self._require_rt().push_text(text or instructions or ""), "realtime")

    def interrupt(self) -> None:
        """Stop the reply now (`AgentSession.interrupt`, a typed message)."""
        self.barge_in.clear()
        self.interrupt_for_user()

    def _require_rt(self) -> RealtimeSession:
        if self._rt is None:
            raise RuntimeError("the realtime session is not connected")
        return self._rt

    # --- barge-in target (`parley.barge_in.BargeInTarget`) -------------------------------------

    def pause_speech(self) -> None:
        self.playout.pause()

    def resume_speech(self) -> None:
        self.playout.resume()

    def pending_words(self) -> int:
        return 0  # the model commits user turns itself

    def interrupt_for_user(self) -> None:
        response = self._response
        if response is None or not response.handle.interruptible:
            self.playout.resume()  # a pause without a reply to stop
            return
        played = self.playout.stop(response.handle)
        self.host.metrics.interruptions += 1
        self.host.emit(Interrupted(response.handle.id, false_interruption=False))
        self._end_response(response, interrupted=True, played=played)
        self.host.spawn(self._require_rt().interrupt(played_seconds=played), "realtime")

    def false_interruption(self, resume: bool) -> None:
        response = self._response
        self.host.metrics.false_interruptions += 1
        if response is not None:
            self.host.emit(Interrupted(response.handle.id, false_interruption=True))
        if resume or response is None:
            self.playout.resume()
        else:
            self.interrupt_for_user()

    # --- model events --------------------------------------------------------------------------

    async def _event_loop(self, rt: RealtimeSession) -> None:
        async for event in rt:
            if self._stall.watching:
                self._stall.watch(self.options.timeouts.realtime_stall)
            try:
                self._on_event(event)
            except Exception as exc:  # a bug in handling one event must not kill the session
                self.host.report_error("realtime", exc, True)

    def _on_event(self, event: RealtimeEvent) -> None:
        host = self.host
        kind = event.type
        response: _Response | None
        if kind == "audio" and event.audio is not None:
            response = self._response or self._begin_response()
            if response.turn.tts_first_audio is None:
                response.turn.tts_first_audio = time.perf_counter()
            response.spoken.seconds += event.audio.duration  # the reply's length so far
            response.audio.put_nowait(event.audio)
        elif kind == "user_speech_started":
            self.user_speaking = True
            self._speech_started_at = time.perf_counter()
            self._speech_stopped_at = None
            host.touch_activity()
            host.emit(UserTurnStarted())
            response = self._response
            self.barge_in.speech_started(response is not None and response.handle.interruptible)
        elif kind == "user_speech_stopped":
            self.user_speaking = False
            self._speech_stopped_at = time.perf_counter()
            started = self._speech_started_at or self._speech_stopped_at
            self.barge_in.speech_stopped(self._speech_stopped_at - started)
        elif kind == "user_transcript" and event.final and event.text:
            host.chat_ctx.add("user", event.text)
            host.emit(Transcript("user", event.text, True))
            host.emit(UserTurnEnded(event.text))
            self.barge_in.turn_committed()
        elif kind == "user_transcript" and event.text:
            host.emit(Transcript("user", event.text, False))
            self.barge_in.words(len(event.text.split()))
        elif kind == "agent_transcript":
            response = self._response or self._begin_response()
            spoken = response.spoken
            spoken.text = event.text if event.final else spoken.text + event.text
        elif kind == "response_started":
            if self._response is None:
                self._begin_response()
        elif kind == "response_done":
            response = self._response
            if response is not None:
                if event.usage is not None:
                    response.turn.input_tokens += event.usage.input_tokens
                    response.turn.output_tokens += event.usage.output_tokens
                response.spoken.complete = True
                response.audio.put_nowait(None)
                self._stall.rest()
        elif kind == "tool_call" and event.tool_call is not None:
            task = asyncio.create_task(self._run_tool(event.tool_call))
            self._tool_tasks.add(task)
            task.add_done_callback(self._tool_tasks.discard)
        elif kind == "error" and event.error is not None:
            host.report_error("realtime", event.error, event.recoverable)
            if not event.recoverable:
                host.fail(event.error)
                host.close_soon()

    def _begin_response(self) -> _Response:
        handle = self._pending_handles.pop(0) if self._pending_handles else SpeechHandle()
        self._turns += 1
        turn = TurnMetrics(turn=self._turns, end_of_speech=self._speech_stopped_at)
        turn.turn_committed = turn.end_of_speech
        turn.llm_first_token = time.perf_counter()
        response = _Response(handle, turn)
        self._response = response
        self.playout.begin(handle)
        self.host.emit(AgentTurnStarted(handle.id))
        self.host.set_state(SessionState.SPEAKING)
        response.writer = asyncio.create_task(self._write(response), name=f"parley-{handle.id}")
        self._stall.watch(self.options.timeouts.realtime_stall)
        return response

    def _silent(self, seconds: float) -> None:
        response = self._response
        if response is None or response.spoken.complete:
            return
        if self._tool_tasks:  # the model may wait for a tool's result mid-response
            self._stall.watch(seconds)
        else:
            self._stalled(response, seconds)

    def _stalled(self, response: _Response, stall: float) -> None:
        name = describe(self.model)
        error = TimeoutError(f"Realtime {name} stalled mid-response: nothing for {stall} s")
        self.host.report_error("realtime", error, True)
        played = self.playout.stop(response.handle)
        self._end_response(response, interrupted=True, played=played)
        # Cancel the response at the model too, so a late resumption is not spoken.
        self.host.spawn(self._require_rt().interrupt(played_seconds=played), "realtime")

    async def _write(self, response: _Response) -> None:
        handle = response.handle
        while (frame := await response.audio.get()) is not None:
            if not await self.playout.write(handle, frame):
                return
            if response.turn.first_audio_sent is None:
                response.turn.first_audio_sent = time.perf_counter()
        if await self.playout.finish(handle) and self._response is response:
            self._end_response(response, interrupted=False)

    def _end_response(
        self, response: _Response, *, interrupted: bool, played: float | None = None
    ) -> None:
        host = self.host
        handle = response.handle
        if self._response is response:
            self._response = None
        if self._response is None:
            self._stall.rest()
        if response.writer is not None and response.writer is not asyncio.current_task():
            response.writer.cancel()
        heard = response.spoken.text
        if interrupted and played is not None and response.spoken.seconds > 0:
            heard = heard_text([response.spoken], played, self.rate.seconds_per_character)
        self.rate.add(response.spoken)
        if not interrupted:
            self.playout.release(handle)
        handle.interrupted = interrupted
        handle.heard_text = heard
        if heard:
            host.chat_ctx.add_message(ChatMessage("assistant", heard, interrupted=interrupted))
            host.emit(Transcript("agent", heard, True))
        host.emit(AgentTurnEnded(handle.id, heard, interrupted))
        response.turn.speech_id = handle.id
        response.turn.interrupted = interrupted
        host.turn_completed(response.turn)
        handle.finish()
        host.touch_activity()
        host.set_state(SessionState.LISTENING)

    async def _run_tool(self, call: ToolCall) -> list[str]:
        # The model keeps its own history of calls and results; core only answers them.
        results = await run_tool_calls(self.host, [call], self.options.tool_options)
        await self._require_rt().send_tool_result(call, results[0])
        return results
