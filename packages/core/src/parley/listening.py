"""`Listener`: the cascading engine's STT stream, kept alive.

It opens the stream, feeds it audio, hands every event to the runner, and reopens the stream
when it fails (up to three times in a row, then the session fails). A streaming STT that says
nothing for ``stt_stall`` seconds while it owes a transcript (the user is speaking, or spoke
and nothing came) is reported as stalled and reopened: the user's next words are heard.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from parley.frames import AudioFrame
from parley.host import RunnerHost
from parley.providers import describe
from parley.segmenting import VADSegmentedStream, VADSegmentedSTT
from parley.stt import STT, STTEvent, STTStream
from parley.vad import VADEvent
from parley.watchdog import Watchdog

RESTARTS = 3


class Listener:
    def __init__(
        self,
        host: RunnerHost,
        stt: STT,
        stall_seconds: float,
        on_event: Callable[[STTEvent], None],
        owed: Callable[[], bool],
        on_vad: Callable[[VADEvent], None] | None = None,
    ) -> None:
        """``owed()``: whether the runner still waits for a transcript (checked when the
        stall clock runs out). ``on_vad``: VAD events of a segmented batch STT's own VAD,
        so that the runner does not run a second one."""
        self.host = host
        self.stt = stt
        self._stall_seconds = stall_seconds
        self._on_event = on_event
        self._owed = owed
        self._on_vad = on_vad
        # A segmented batch STT is bounded per call; only a streaming STT can stall silently.
        self._watched = not isinstance(stt, VADSegmentedSTT)
        self._watchdog = Watchdog(self._silent)
        self._heard_since_speech = True
        self._stalled: TimeoutError | None = None
        self._stream: STTStream | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def owes_transcript(self) -> bool:
        """The user spoke and the STT has said nothing since."""
        return not self._heard_since_speech

    def start(self) -> None:
        self._stream = self._open()
        self._task = asyncio.create_task(self._loop(self._stream), name="parley-stt")

    async def push(self, frame: AudioFrame) -> None:
        stream = self._stream
        if stream is not None:  # None while a stalled stream is being reopened
            await stream.push(frame)

    def flush(self) -> None:
        """Ask the STT to finalize now rather than wait for its own endpointing."""
        if self._stream is not None:
            self.host.spawn(self._stream.flush(), "stt")

    def speech_started(self) -> None:
        """The user started speaking: the STT owes us events; watch that they come."""
        if self._watched:
            self._heard_since_speech = False
            if not self._watchdog.watching:
                self._watchdog.watch(self._stall_seconds)

    async def aclose(self) -> None:
        self._closed = True
        self._watchdog.cancel()
        if self._task is not None:
            self._task.cancel()
        if self._stream is not None:
            await self._stream.aclose()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def _open(self) -> STTStream:
        stream = self.stt.stream()
        if self._on_vad is not None and isinstance(stream, VADSegmentedStream):
            stream.on_vad = self._on_vad
        return stream

    async def _loop(self, stream: STTStream) -> None:
        restarts = 0
        while True:
            try:
                async for event in stream:
                    if self._watchdog.watching:
                        self._watchdog.watch(self._stall_seconds)
                    self._heard_since_speech = True
                    self._on_event(event)
                if self._stalled is None:
                    return
                raise self._stalled
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = self._stalled or exc  # a stalled stream may fail once closed
                self._stalled = None
                restarts += 1
                recoverable = restarts <= RESTARTS
                self.host.report_error("stt", error, recoverable)
                if not recoverable:
                    self.host.fail(error)
                    return
                await asyncio.sleep(0.1 * restarts)
                stream = self._stream = self._open()

    def _silent(self, seconds: float) -> None:
        stream = self._stream
        waiting = self.owes_transcript or self._owed()
        if not waiting or self._closed or stream is None or self._stalled is not None:
            return  # nothing owed: the next speech start starts the watch again
        self._stalled = TimeoutError(
            f"STT {describe(self.stt)} stalled mid-stream: no transcript for {seconds} s"
        )
        self._heard_since_speech = True
        self._stream = None  # audio waits for the reopened stream
        # Closing ends the stuck iteration; `_loop` then reopens through its restart path.
        self.host.spawn(stream.aclose(), "stt")
