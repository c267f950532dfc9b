"""The in-memory edge's audio output: records what the agent says and plays it out in real time.

One playout task sends queued frames at real-time pace, so `buffered` means what it means on a
real transport, `flush` (barge-in) drops every unplayed frame at once, and `write` returns only
once no more than ``max_buffer`` seconds are queued. With ``realtime=False`` frames play the
moment they are written. Every write is recorded with ``time.perf_counter()`` when accepted.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import time
from array import array
from collections import deque
from dataclasses import dataclass

from parley.edge import AudioOutput
from parley.frames import AudioFrame, concat_audio
from parley.testing._waiters import Waiters


@dataclass(frozen=True, slots=True)
class WrittenFrame:
    frame: AudioFrame
    at: float  # time.perf_counter() when the write was accepted


@dataclass(frozen=True, slots=True)
class Flush:
    at: float  # time.perf_counter() of the flush
    dropped: float  # seconds of audio dropped


class InMemoryAudioOutput(AudioOutput):
    def __init__(
        self,
        sample_rate: int = 24000,
        channels: int = 1,
        *,
        realtime: bool = True,
        max_buffer: float = 1.0,
        record_frames: bool = True,
    ) -> None:
        if max_buffer <= 0:
            raise ValueError(f"max_buffer must be positive, got {max_buffer}")
        self.sample_rate = sample_rate
        self.channels = channels
        self.realtime = realtime
        self.max_buffer = max_buffer
        self.record_frames = record_frames
        self.writes: list[WrittenFrame] = []  # empty unless record_frames
        self.write_times = array("d")  # perf_counter() of every write, kept even without frames
        self.flushes: list[Flush] = []
        self.frames_written = 0
        self.seconds_written = 0.0
        self.seconds_played = 0.0  # sent to the participants
        self.seconds_dropped = 0.0  # by flushes
        self._queue: deque[AudioFrame] = deque()
        self._buffered = 0.0
        self._closed = False
        self._playout: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # playout: there is something to play
        self._space = asyncio.Event()  # writers: the buffer drained below max_buffer
        self._idle = asyncio.Event()  # everything written has been played
        self._idle.set()
        self._written: Waiters[float] = Waiters()

    # --- the AudioOutput contract ---------------------------------------------------------

    @property
    def buffered(self) -> float:
        return self._buffered

    async def write(self, frame: AudioFrame) -> None:
        """Queue a frame, then wait while more than ``max_buffer`` seconds are queued.

        The frame is queued before the wait, so a flush during the wait drops it and counts
        it. Frames written after the connection closed are discarded, as by a transport that
        has gone away.
        """
        if frame.sample_rate != self.sample_rate or frame.channels != self.channels:
            raise ValueError(
                f"the in-memory edge plays {self.sample_rate} Hz / {self.channels} ch audio, "
                f"got {frame!r}; resample it first"
            )
        if self._closed:
            return
        now = time.perf_counter()
        self.frames_written += 1
        self.seconds_written += frame.duration
        self.write_times.append(now)
        if self.record_frames:
            self.writes.append(WrittenFrame(frame, now))
        if self._written:
            self._written.notify(now)
        if not self.realtime:
            self.seconds_played += frame.duration
            return
        self._queue.append(frame)
        self._buffered += frame.duration
        self._idle.clear()
        self._wake.set()
        if self._playout is None:
            self._playout = asyncio.create_task(self._play(), name="parley-testing-playout")
        while self._buffered > self.max_buffer + 1e-9 and not self._closed:
            self._space.clear()
            await self._space.wait()

    def flush(self) -> float:
        dropped = self._buffered
        self._queue.clear()
        self._buffered = 0.0
        self.seconds_dropped += dropped
        self.flushes.append(Flush(time.perf_counter(), dropped))
        self._space.set()
        return dropped

    async def wait_for_playout(self) -> None:
        if not self._closed:
            await self._idle.wait()

    # --- playout --------------------------------------------------------------------------

    async def _play(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time()
        while True:
            if not self._queue:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                deadline = max(deadline, loop.time())
                continue
            frame = self._queue.popleft()
            self._buffered = max(0.0, self._buffered - frame.duration)
            self.seconds_played += frame.duration
            self._space.set()
            # The frame is on the wire until its duration has passed.
            deadline += frame.duration
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)

    async def aclose(self) -> None:
        """Stop playout and discard what is queued (the edge calls this on close)."""
        if self._closed:
            return
        self._closed = True
        self._queue.clear()
        self._buffered = 0.0
        self._idle.set()
        self._space.set()
        self._written.fail(ConnectionError("the connection closed"))
        task, self._playout = self._playout, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # --- assertions helpers ---------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def flush_count(self) -> int:
        return len(self.flushes)

    def frames_after(self, at: float) -> list[AudioFrame]:
        """Frames written after ``at`` (a ``time.perf_counter()`` value)."""
        return [w.frame for w in self._records() if w.at > at]

    def seconds_after(self, at: float) -> float:
        """Seconds of audio written after ``at`` (a ``time.perf_counter()`` value)."""
        return sum(frame.duration for frame in self.frames_after(at))

    def audio(self) -> AudioFrame:
        """Everything written, as one frame (empty if nothing was)."""
        records = self._records()
        if not records:
            return AudioFrame.silence(0.0, self.sample_rate, self.channels)
        return concat_audio([w.frame for w in records])

    async def wait_for_audio(
        self,
        since: float | None = None,
        timeout: float | None = 10.0,
    ) -> float:
        """When the first frame after ``since`` was written (``time.perf_counter()`` values;
        ``since`` defaults to now), waiting for it if needed."""
        after = time.perf_counter() if since is None else since
        index = bisect.bisect_right(self.write_times, after)
        if index < len(self.write_times):
            return self.write_times[index]
        if self._closed:
            raise ConnectionError("the connection closed before the agent spoke")
        return await self._written.wait(lambda at: at > after, timeout, "agent audio")

    def _records(self) -> list[WrittenFrame]:
        if not self.record_frames:
            raise RuntimeError(
                "this output does not keep frames; create the edge with record_frames=True"
            )
        return self.writes
