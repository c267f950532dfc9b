"""Realtime (speech-to-speech) contract: one connected model session with audio in and out."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from parley.chat import ChatContext, ToolCall
from parley.frames import AudioFrame, VideoFrame
from parley.llm import Usage
from parley.tools import FunctionTool


@dataclass(frozen=True, slots=True)
class RealtimeCapabilities:
    input_sample_rate: int = 24000
    output_sample_rate: int = 24000
    video: bool = False
    server_vad: bool = True  # the model detects turns itself
    tools: bool = True


RealtimeEventType = Literal[
    "audio",  # model speech: ``audio``
    "user_speech_started",  # server VAD heard the user (barge-in)
    "user_speech_stopped",
    "user_transcript",  # ``text`` (``final`` or partial)
    "agent_transcript",  # ``text`` of the model's speech (``final`` or delta)
    "response_started",
    "response_done",  # ``usage`` may be set
    "tool_call",  # ``tool_call``
    "error",  # ``error``
]


@dataclass(frozen=True, slots=True)
class RealtimeEvent:
    type: RealtimeEventType
    audio: AudioFrame | None = None
    text: str = ""
    final: bool = True
    tool_call: ToolCall | None = None
    usage: Usage | None = None
    error: Exception | None = None
    recoverable: bool = True


class RealtimeSession(ABC):
    """A live connection. Iterate it for events until it closes."""

    def __init__(self, max_pending_events: int = 512) -> None:
        self._events: asyncio.Queue[RealtimeEvent | None] = asyncio.Queue(max_pending_events)
        self._closed = False

    @abstractmethod
    async def push_audio(self, frame: AudioFrame) -> None:
        """User audio at `RealtimeCapabilities.input_sample_rate`, mono."""

    async def push_video(self, frame: VideoFrame) -> None:
        """A video frame, for models with ``video`` capability (others ignore it)."""

    @abstractmethod
    async def push_text(self, text: str, *, respond: bool = True) -> None:
        """A typed user message; ``respond`` asks the model to answer it."""

    @abstractmethod
    async def interrupt(self, *, played_seconds: float | None = None) -> None:
        """Stop the current response; ``played_seconds`` lets the model truncate its memory
        of the reply to what the user actually heard."""

    @abstractmethod
    async def send_tool_result(self, call: ToolCall, output: str) -> None:
        """Answer a tool call and let the model continue."""

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            # Never block on a full queue whose reader is gone: make room for the end marker.
            while self._events.full():
                self._events.get_nowait()
            self._events.put_nowait(None)

    async def _emit(self, event: RealtimeEvent) -> None:
        if not self._closed:
            await self._events.put(event)

    def __aiter__(self) -> AsyncIterator[RealtimeEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[RealtimeEvent]:
        while (event := await self._events.get()) is not None:
            yield event


class Realtime(ABC):
    capabilities: RealtimeCapabilities = RealtimeCapabilities()
    model: str = ""

    @abstractmethod
    async def connect(
        self,
        *,
        instructions: str,
        tools: Sequence[FunctionTool] = (),
        chat_ctx: ChatContext | None = None,
    ) -> RealtimeSession:
        """Open a session primed with instructions, tools and prior history."""

    async def aclose(self) -> None:
        """Release shared resources (sessions close themselves)."""
