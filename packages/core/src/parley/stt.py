"""Speech-to-text contract: streaming by design.

A session opens one `STTStream`, pushes audio frames into it and reads `STTEvent`s out of it.
A batch-only recognizer implements `BatchSTT` instead; core wraps it with VAD segmentation
(`parley.segmenting.VADSegmentedSTT`) so the engine only ever sees the streaming contract.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from parley.frames import AudioFrame


@dataclass(frozen=True, slots=True)
class STTCapabilities:
    streaming: bool = True  # results arrive while audio is still being pushed
    interim_results: bool = False  # partial transcripts before the final one
    turn_detection: bool = False  # emits "end_of_turn" events itself
    sample_rate: int = 16000  # rate the stream wants; the engine resamples to it
    languages: tuple[str, ...] = ("en",)


STTEventType = Literal["speech_started", "partial", "final", "end_of_turn"]


@dataclass(frozen=True, slots=True)
class STTEvent:
    """One recognition event.

    ``final`` texts are committed; ``partial`` texts may still change. ``end_of_turn`` is sent
    by STTs that detect turns themselves (it may carry the turn's final text as well).
    """

    type: STTEventType
    text: str = ""
    confidence: float = 1.0
    language: str | None = None
    audio_duration: float = 0.0  # seconds of audio this result covers, for usage


class STTStream(ABC):
    """One recognition stream. Push frames; iterate to receive events until the stream closes."""

    def __init__(self, max_pending_events: int = 256) -> None:
        self._events: asyncio.Queue[STTEvent | None] = asyncio.Queue(max_pending_events)
        self._closed = False

    @abstractmethod
    async def push(self, frame: AudioFrame) -> None:
        """Feed audio at `STTCapabilities.sample_rate`, mono."""

    async def flush(self) -> None:
        """The speaker paused: finalize what has been heard so far (optional)."""

    async def aclose(self) -> None:
        """Stop recognition and end the event iteration."""
        if not self._closed:
            self._closed = True
            # Never block on a full queue whose reader is gone: make room for the end marker.
            while self._events.full():
                self._events.get_nowait()
            self._events.put_nowait(None)

    async def _emit(self, event: STTEvent) -> None:
        """For implementations: hand an event to the reader (waits if the reader lags)."""
        if not self._closed:
            await self._events.put(event)

    def __aiter__(self) -> AsyncIterator[STTEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[STTEvent]:
        while (event := await self._events.get()) is not None:
            yield event


class STT(ABC):
    capabilities: STTCapabilities = STTCapabilities()

    @abstractmethod
    def stream(self, *, language: str | None = None) -> STTStream:
        """Open a recognition stream for one speaker/session."""

    async def warm_up(self) -> None:
        """Load models or open connections ahead of use (optional)."""

    async def aclose(self) -> None:
        """Release models and connections."""


class BatchSTT(ABC):
    """A recognizer that transcribes whole utterances (e.g. Whisper)."""

    sample_rate: int = 16000
    languages: tuple[str, ...] = ("en",)

    @abstractmethod
    async def recognize(self, audio: AudioFrame, *, language: str | None = None) -> str:
        """Transcribe one utterance. Blocking model work must run off the event loop."""

    async def warm_up(self) -> None:
        """Load the model ahead of the first utterance (optional)."""

    async def aclose(self) -> None:
        """Release the model."""
