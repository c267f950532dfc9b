"""The realtime engine: one speech-to-speech model session, with core's playout and tools.

The model hears the user and decides turns (server VAD); core plays its audio through the
same `Playout` as the cascading engine, so barge-in flushes the Edge at once and the model is
told how much of its reply the user heard.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

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
from parley.frames import AudioFrame, VideoFrame
from parley.metrics import TurnMetrics
from parley.pipeline import RealtimePipeline
from parley.playout import Playout
from parley.realtime import Realtime, RealtimeEvent, RealtimeSession
from parley.speech import SpeechHandle
from parley.tools import ToolError

if TYPE_CHECKING:
    from parley.session import AgentSession


@dataclass(slots=True)
class _Response:
    handle: SpeechHandle
    turn: TurnMetrics
    audio: asyncio.Queue[AudioFrame | None] = field(default_factory=asyncio.Queue)
    text: str = ""
    seconds: float = 0.0
    writer: asyncio.Task[None] | None = None


class RealtimeRunner:
    def __init__(self, session: AgentSession, pipeline: RealtimePipeline, model: Realtime) -> None:
        self.session = session
        self.pipeline = pipeline
        self.model = model
        self.playout = Playout(session.connection_or_raise().audio_output)
        self._rate = model.capabilities.input_sample_rate
        self._resampler: AudioResampler | None = None
        self._rt: RealtimeSession | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._response: _Response | None = None
        self._pending_handles: list[SpeechHandle] = []
        self._speech_stopped_at: float | None = None
        self._tool_tasks: set[asyncio.Task[None]] = set()
        self._turns = 0
        self.user_speaking = False

    async def start(self) -> None:
        session = self.session
        self._rt = await self.model.connect(
            instructions=session.agent.instructions,
            tools=session.tools(),
            chat_ctx=session.chat_ctx,
        )
        self._events_task = asyncio.create_task(self._event_loop(self._rt), name="parley-realtime")

    async def aclose(self) -> None:
        if self._response is not None:
            self._end_response(self._response, interrupted=True)
        for handle in self._pending_handles:
            handle._finish()
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
        self.session.chat_ctx.add("user", text)
        self.session._emit(UserTurnEnded(text))
        self.session._spawn(self._require_rt().push_text(text), "realtime")

    def say(self, handle: SpeechHandle, text: str) -> None:
        self._pending_handles.append(handle)
        prompt = f"Say exactly this to the user, word for word, and nothing else: {text}"
        self.session._spawn(self._require_rt().push_text(prompt), "realtime")

    def generate_reply(
        self, handle: SpeechHandle, text: str | None, instructions: str | None
    ) -> None:
        self._pending_handles.append(handle)
        if text:
            self.session.chat_ctx.add("user", text)
        self.session._spawn(self._require_rt().push_text(text or instructions or ""), "realtime")

    def interrupt(self) -> None:
        response = self._response
        if response is None or not response.handle.interruptible:
            return
        played = self.playout.stop(response.handle)
        self.session.metrics.interruptions += 1
        self.session._emit(Interrupted(response.handle.id, false_interruption=False))
        self._end_response(response, interrupted=True, played=played)
        self.session._spawn(self._require_rt().interrupt(played_seconds=played), "realtime")

    def _require_rt(self) -> RealtimeSession:
        if self._rt is None:
            raise RuntimeError("the realtime session is not connected")
        return self._rt

    # --- model events --------------------------------------------------------------------------

    async def _event_loop(self, rt: RealtimeSession) -> None:
        session = self.session
        async for event in rt:
            try:
                self._on_event(event)
            except Exception as exc:  # a bug in handling one event must not kill the session
                session._report_error("realtime", exc, True)

    def _on_event(self, event: RealtimeEvent) -> None:
        session = self.session
        kind = event.type
        response: _Response | None
        if kind == "audio" and event.audio is not None:
            response = self._response or self._begin_response()
            if response.turn.tts_first_audio is None:
                response.turn.tts_first_audio = time.perf_counter()
            response.audio.put_nowait(event.audio)
        elif kind == "user_speech_started":
            self.user_speaking = True
            self._speech_stopped_at = None
            session._touch_activity()
            session._emit(UserTurnStarted())
            self.interrupt()
        elif kind == "user_speech_stopped":
            self.user_speaking = False
            self._speech_stopped_at = time.perf_counter()
        elif kind == "user_transcript" and event.final and event.text:
            session.chat_ctx.add("user", event.text)
            session._emit(Transcript("user", event.text, True))
            session._emit(UserTurnEnded(event.text))
        elif kind == "user_transcript" and event.text:
            session._emit(Transcript("user", event.text, False))
        elif kind == "agent_transcript":
            response = self._response or self._begin_response()
            response.text = event.text if event.final else response.text + event.text
        elif kind == "response_started":
            if self._response is None:
                self._begin_response()
        elif kind == "response_done":
            response = self._response
            if response is not None:
                if event.usage is not None:
                    response.turn.input_tokens += event.usage.input_tokens
                    response.turn.output_tokens += event.usage.output_tokens
                response.audio.put_nowait(None)
        elif kind == "tool_call" and event.tool_call is not None:
            task = asyncio.create_task(self._run_tool(event.tool_call))
            self._tool_tasks.add(task)
            task.add_done_callback(self._tool_tasks.discard)
        elif kind == "error" and event.error is not None:
            session._report_error("realtime", event.error, event.recoverable)
            if not event.recoverable:
                session._fail(event.error)
                session._spawn(session.close(), "close")

    def _begin_response(self) -> _Response:
        handle = self._pending_handles.pop(0) if self._pending_handles else SpeechHandle()
        self._turns += 1
        turn = TurnMetrics(turn=self._turns, end_of_speech=self._speech_stopped_at)
        turn.turn_committed = turn.end_of_speech
        turn.llm_first_token = time.perf_counter()
        response = _Response(handle, turn)
        self._response = response
        self.playout.begin(handle)
        self.session._emit(AgentTurnStarted(handle.id))
        self.session._set_state(SessionState.SPEAKING)
        response.writer = asyncio.create_task(self._write(response), name=f"parley-{handle.id}")
        return response

    async def _write(self, response: _Response) -> None:
        handle = response.handle
        while (frame := await response.audio.get()) is not None:
            if not await self.playout.write(handle, frame):
                return
            if response.turn.first_audio_sent is None:
                response.turn.first_audio_sent = time.perf_counter()
            response.seconds += frame.duration
        if await self.playout.finish(handle) and self._response is response:
            self._end_response(response, interrupted=False)

    def _end_response(
        self, response: _Response, *, interrupted: bool, played: float | None = None
    ) -> None:
        session = self.session
        handle = response.handle
        if self._response is response:
            self._response = None
        if response.writer is not None and response.writer is not asyncio.current_task():
            response.writer.cancel()
        heard = response.text
        if interrupted and played is not None and response.seconds > 0:
            words = heard.split()
            heard = " ".join(words[: int(len(words) * min(1.0, played / response.seconds))])
        if not interrupted:
            self.playout.release(handle)
        handle.interrupted = interrupted
        handle.heard_text = heard
        if heard:
            session.chat_ctx.add_message(ChatMessage("assistant", heard, interrupted=interrupted))
            session._emit(Transcript("agent", heard, True))
        session._emit(AgentTurnEnded(handle.id, heard, interrupted))
        response.turn.speech_id = handle.id
        response.turn.interrupted = interrupted
        session._turn_completed(response.turn)
        handle._finish()
        session._touch_activity()
        session._set_state(SessionState.LISTENING)

    async def _run_tool(self, call: ToolCall) -> None:
        session = self.session
        tool = {t.name: t for t in session.tools()}.get(call.name)
        started = time.perf_counter()
        error = True
        try:
            if tool is None:
                raise ToolError(f"unknown tool {call.name!r}")
            timeout = tool.timeout or self.pipeline.tool_options.timeout
            try:
                value = await asyncio.wait_for(tool.invoke(call.arguments), timeout)
            except TimeoutError as exc:
                raise ToolError(f"tool {call.name} timed out after {timeout} s") from exc
            result = value if isinstance(value, str) else json.dumps(value, default=str)
            error = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            result = f"error: {exc}"
            session.metrics.tool_errors += 1
            session._report_error("tool", exc, True)
        session.metrics.tool_calls += 1
        session._emit(
            ToolCalled(call.name, call.arguments, result, error, time.perf_counter() - started)
        )
        await self._require_rt().send_tool_result(call, result)
