"""A fake speech-to-speech model: hears user audio by energy and answers from a script."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import numpy as np

from parley.chat import ChatContext, ToolCall
from parley.frames import AudioFrame
from parley.llm import Usage
from parley.realtime import Realtime, RealtimeCapabilities, RealtimeEvent, RealtimeSession
from parley.tools import FunctionTool


class FakeRealtimeSession(RealtimeSession):
    def __init__(self, model: FakeRealtime) -> None:
        super().__init__()
        self.model = model
        self.texts: list[str] = []
        self.tool_results: list[tuple[ToolCall, str]] = []
        self.interruptions: list[float | None] = []
        self._speaking_user = False
        self._silence = 0.0
        self._response: asyncio.Task[None] | None = None

    async def push_audio(self, frame: AudioFrame) -> None:
        loud = frame.rms() >= self.model.threshold
        if loud and not self._speaking_user:
            self._speaking_user = True
            await self._emit(RealtimeEvent("user_speech_started"))
        elif not loud and self._speaking_user:
            self._silence += frame.duration
            if self._silence >= self.model.min_silence:
                self._speaking_user = False
                self._silence = 0.0
                await self._emit(RealtimeEvent("user_speech_stopped"))
                await self._emit(
                    RealtimeEvent("user_transcript", text=self.model.next_transcript())
                )
                self._respond()
        elif loud:
            self._silence = 0.0

    async def push_text(self, text: str, *, respond: bool = True) -> None:
        self.texts.append(text)
        if respond:
            self._respond()

    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        self.interruptions.append(played_seconds)
        if self._response is not None:
            self._response.cancel()

    async def send_tool_result(self, call: ToolCall, output: str) -> None:
        self.tool_results.append((call, output))
        self._respond(f"The tool said: {output}")

    def _respond(self, text: str | None = None) -> None:
        if self._response is not None and not self._response.done():
            self._response.cancel()
        self._response = asyncio.create_task(self._speak(text))

    async def _speak(self, text: str | None) -> None:
        model = self.model
        if text is None:
            reply = model.next_reply()
            if isinstance(reply, ToolCall):
                await self._emit(RealtimeEvent("tool_call", tool_call=reply))
                return
            text = reply
        await self._emit(RealtimeEvent("response_started"))
        rate = model.capabilities.output_sample_rate
        samples = int(rate * model.frame_duration)
        t = np.arange(samples) / rate
        tone = (0.3 * np.sin(2 * np.pi * 220 * t) * 32767).astype(np.int16)
        frames = max(1, int(len(text) * model.seconds_per_char / model.frame_duration))
        for _ in range(frames):
            await self._emit(RealtimeEvent("audio", audio=AudioFrame(tone, rate)))
            await asyncio.sleep(0)
        await self._emit(RealtimeEvent("agent_transcript", text=text, final=True))
        await self._emit(RealtimeEvent("response_done", usage=Usage(10, len(text.split()))))


class FakeRealtime(Realtime):
    """``replies`` are texts to speak or `ToolCall`s to make; ``transcripts`` what it heard."""

    def __init__(
        self,
        replies: Sequence[str | ToolCall] = (),
        transcripts: Sequence[str] = (),
        *,
        threshold: float = 0.01,
        min_silence: float = 0.2,
        seconds_per_char: float = 0.02,
        frame_duration: float = 0.02,
        sample_rate: int = 24000,
    ) -> None:
        self.capabilities = RealtimeCapabilities(
            input_sample_rate=sample_rate, output_sample_rate=sample_rate
        )
        self.replies = list(replies)
        self.transcripts = list(transcripts)
        self.threshold = threshold
        self.min_silence = min_silence
        self.seconds_per_char = seconds_per_char
        self.frame_duration = frame_duration
        self.sessions: list[FakeRealtimeSession] = []
        self.connected_with: list[dict[str, object]] = []

    def next_reply(self) -> str | ToolCall:
        return self.replies.pop(0) if self.replies else "I am a fake realtime model."

    def next_transcript(self) -> str:
        return self.transcripts.pop(0) if self.transcripts else "(speech)"

    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] = (),
        chat_ctx: ChatContext | None = None,
    ) -> FakeRealtimeSession:
        self.connected_with.append(
            {"instructions": instructions, "tools": json.dumps([t.name for t in tools])}
        )
        session = FakeRealtimeSession(self)
        self.sessions.append(session)
        return session
