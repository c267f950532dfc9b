"""The agent's voice on a phone call: µ-law frames paced at 20 ms, marks, and ``clear``.

`PhoneAudioOutput` is the `AudioOutput` the engine writes to (8 kHz int16; other rates are
resampled). Writes are encoded to µ-law at once and cut into 160-byte frames. One pacing
task per call sends a frame every 20 ms, and only while there is speech: a quiet agent sends
nothing, Twilio plays silence. The calls' ticks are spread over `PHASES` phases of the 20 ms
period (given out in turn): on one shared tick, the last of N calls would wait for the sends
of all the others, so lateness would grow with N; spread, a tick serves N / `PHASES` calls,
and the loop still wakes only `PHASES` times per period, not N.

What Twilio has really played is known from marks: after every ``mark_every`` frames, and
after the last frame of a burst, a ``mark`` named by the count of frames sent so far goes
out; Twilio echoes it once the audio before it has played. `buffered` and `flush` count the
frames sent but not yet confirmed as unplayed, so the engine's history keeps what the caller
heard. `flush` (barge-in) drops the queue and has ``clear`` sent at once: Twilio then drops
what it buffered. A mark Twilio never echoes counts as played after ``mark_timeout``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np
import numpy.typing as npt
from parley.audio import AudioResampler
from parley.edge import AudioOutput
from parley.frames import AudioFrame

from parley_twilio.g711 import FRAME_BYTES, FRAME_SECONDS, SAMPLE_RATE, SILENCE, ulaw_encode
from parley_twilio.protocol import OutboundMessages

logger = logging.getLogger("parley.twilio")

Send = Callable[[str], Awaitable[None]]

# A pacer that wakes this late skips ahead instead of bursting old audio.
RESYNC_SECONDS = 0.2
# A tick's timer may fire this early (the loop's clock resolution); a wake-up earlier than
# that came from a write, and the frame waits for its tick.
EARLY_TOLERANCE = 0.001
# Phases of the 20 ms period the calls' ticks are spread over (2 ms apart).
PHASES = 10
_next_phase = itertools.count()
# Lateness samples kept (about 82 s of speech at 50 frames/s); a power of two for masking.
LATENESS_HISTORY = 4096
# Frames a writer puts in per turn of the event loop. A reply's first second is written as
# fast as the engine makes it; at once, on a hundred calls whose replies start together, that
# is one loop pass of a hundred long steps, and every pacer behind it is late. In turns of a
# few frames, the pacers' ticks run between them. Writers also wake only when this many
# frames have room, so a speaking call costs one writer step per batch, not per frame.
WRITE_BATCH = 2


class PhoneAudioOutput(AudioOutput):
    """Agent speech for one phone call; `run` is its pacing loop (the line runs it)."""

    sample_rate = SAMPLE_RATE
    channels = 1

    def __init__(
        self,
        stream_sid: str,
        *,
        max_buffered: float = 1.0,
        mark_every: int = 5,
        mark_timeout: float = 2.0,
    ) -> None:
        if mark_every < 1:
            raise ValueError(f"mark_every must be at least 1, got {mark_every}")
        self.stream_sid = stream_sid
        self.messages = OutboundMessages(stream_sid)
        self.max_buffered = max_buffered
        self.mark_every = mark_every
        self.mark_timeout = mark_timeout
        self._frames: deque[bytes] = deque()
        self._pending = bytearray()  # µ-law short of a whole frame
        self._resampler = AudioResampler(SAMPLE_RATE, 1, "int16")
        self._clear = False  # a `clear` is due
        self._closed = False
        self._sent = 0  # frames sent since the stream started
        self._played = 0  # frames Twilio confirmed (or that a clear dropped)
        self._marks: deque[tuple[int, float]] = deque()  # (frames sent, loop time) per mark
        self._wakeup: asyncio.Future[None] | None = None  # the pacer's sleep or idle wait
        self._pacer_idle = False  # waiting for audio (not for a tick): a write wakes it
        self._written_in_turn = 0  # frames written since the writer last gave the loop a turn
        self._space: asyncio.Future[None] | None = None  # writers waiting for buffer room
        self._idle_waiters: list[asyncio.Future[None]] = []  # wait_for_playout callers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._phase = next(_next_phase) % PHASES * FRAME_SECONDS / PHASES
        self.frames_sent = 0
        self.clears_sent = 0
        self.marks_sent = 0
        self.resyncs = 0
        self._lateness: npt.NDArray[np.float32] = np.zeros(LATENESS_HISTORY, dtype=np.float32)

    # --- AudioOutput --------------------------------------------------------------------------

    async def write(self, frame: AudioFrame) -> None:
        if self._closed:
            return
        codes = ulaw_encode(self._resampler.samples(frame))
        pending = self._pending
        if not pending and len(codes) == FRAME_BYTES:
            self._frames.append(codes)  # the usual write: one 20 ms frame
        else:
            pending += codes
            whole = len(pending) - len(pending) % FRAME_BYTES
            if whole:
                self._frames.extend(
                    bytes(pending[i : i + FRAME_BYTES]) for i in range(0, whole, FRAME_BYTES)
                )
                del pending[:whole]
        if self._pacer_idle:
            self._wake()  # a pacer waiting for a tick needs no wake-up: the tick comes
        self._written_in_turn += 1
        if self._unsent_seconds() > self.max_buffered:
            while not self._closed and self._unsent_seconds() > self.max_buffered:
                self._space = asyncio.get_running_loop().create_future()
                await self._space
            self._written_in_turn = 0
        elif self._written_in_turn >= WRITE_BATCH:
            self._written_in_turn = 0
            await asyncio.sleep(0)  # see WRITE_BATCH

    def flush(self) -> float:
        unconfirmed = self._unconfirmed()
        dropped = self._unsent_seconds() + unconfirmed * FRAME_SECONDS
        self._frames.clear()
        self._pending.clear()
        self._resampler.reset()
        if unconfirmed:
            # Twilio drops its buffer on `clear` and echoes the marks still pending: those
            # frames were not heard, and their echoes must not count them as played.
            self._played = self._sent
            self._marks.clear()
        if dropped > 0 and not self._closed:
            self._clear = True
            self._wake()
        self._release_writers()
        return dropped

    async def wait_for_playout(self) -> None:
        """Until everything written was sent and Twilio confirmed playing it."""
        loop = asyncio.get_running_loop()
        while not self._closed and (self._frames or self._pending or self._unconfirmed()):
            if self._frames or self._pending:
                wait = max(self._unsent_seconds(), FRAME_SECONDS)
            else:
                wait = min(FRAME_SECONDS * 2, self.mark_timeout)
            waiter = loop.create_future()
            handle = loop.call_later(wait, _resolve, waiter)
            self._idle_waiters.append(waiter)
            try:
                await waiter
            finally:
                handle.cancel()

    @property
    def buffered(self) -> float:
        return self._unsent_seconds() + self._unconfirmed() * FRAME_SECONDS

    # --- Twilio's side ------------------------------------------------------------------------

    def mark_played(self, name: str) -> None:
        """An echoed mark: the frames before it have played."""
        try:
            count = int(name)
        except ValueError:
            return  # not one of ours
        if count > self._played and count <= self._sent:
            self._played = count
        marks = self._marks
        while marks and marks[0][0] <= self._played:
            marks.popleft()
        if not self._unconfirmed():
            self._notify_idle()

    # --- pacing -------------------------------------------------------------------------------

    async def run(self, send: Send) -> None:
        """Send frames at real-time pace until `close`; ``send`` puts a text message on the
        socket. Returns when closed; a failed send ends it (the line notices the socket)."""
        loop = self._loop = asyncio.get_running_loop()
        deadline: float | None = None
        messages = self.messages
        # Writers wake when a batch has room (see WRITE_BATCH).
        refill_below = max(0.0, self.max_buffered - (WRITE_BATCH - 1) * FRAME_SECONDS)
        while not self._closed:
            if self._clear:
                self._clear = False
                self.clears_sent += 1
                await send(messages.clear)
                deadline = None
                continue
            if not self._frames and not self._pending:
                if deadline is not None:  # the burst ended: mark its end
                    deadline = None
                    if self._sent > self._played and (
                        not self._marks or self._marks[-1][0] != self._sent
                    ):
                        await self._mark(send, loop)
                self._notify_idle()
                self._pacer_idle = True
                try:
                    await self._sleep(loop, None)
                finally:
                    self._pacer_idle = False
                continue
            now = loop.time()
            if deadline is None or now - deadline > RESYNC_SECONDS:
                if deadline is not None:
                    self.resyncs += 1
                # The call's ticks sit on its phase of a process-wide grid (see the module).
                phase = self._phase
                deadline = math.ceil((now - phase) / FRAME_SECONDS) * FRAME_SECONDS + phase
            if deadline > now:
                await self._sleep(loop, deadline)
                if self._clear or self._closed or not (self._frames or self._pending):
                    continue
                if deadline - loop.time() > EARLY_TOLERANCE:
                    continue  # woken early (a flush that cleared nothing): keep the pace
            late = loop.time() - deadline
            payload = self._next_frame()
            self._lateness[self.frames_sent & (LATENESS_HISTORY - 1)] = late
            self.frames_sent += 1
            self._sent += 1
            deadline += FRAME_SECONDS
            await send(messages.media(payload))
            if self._space is not None and self._unsent_seconds() <= refill_below:
                self._release_writers()
            if self._sent % self.mark_every == 0:
                await self._mark(send, loop)

    def close(self) -> None:
        self._closed = True
        self._frames.clear()
        self._pending.clear()
        self._wake()
        self._release_writers()
        self._notify_idle()

    @property
    def closed(self) -> bool:
        return self._closed

    def lateness(self, since: int = 0) -> npt.NDArray[np.float32]:
        """Seconds each frame left after its deadline, oldest first, for frames numbered
        ``since`` onwards (`frames_sent` before a measurement window; the last 4096 kept)."""
        start = max(since, self.frames_sent - LATENESS_HISTORY, 0)
        positions = np.arange(start, self.frames_sent) & (LATENESS_HISTORY - 1)
        recent: npt.NDArray[np.float32] = self._lateness[positions]
        return recent

    # --- internals ----------------------------------------------------------------------------

    def _next_frame(self) -> bytes:
        if self._frames:
            return self._frames.popleft()
        # The tail of an utterance: pad it to a whole frame with silence.
        frame = bytes(self._pending) + bytes([SILENCE]) * (FRAME_BYTES - len(self._pending))
        self._pending.clear()
        return frame

    async def _mark(self, send: Send, loop: asyncio.AbstractEventLoop) -> None:
        self._marks.append((self._sent, loop.time()))
        self.marks_sent += 1
        await send(self.messages.mark(str(self._sent)))

    def _unsent_seconds(self) -> float:
        return len(self._frames) * FRAME_SECONDS + len(self._pending) / SAMPLE_RATE

    def _unconfirmed(self) -> int:
        """Frames sent that Twilio has not confirmed playing (marks older than
        ``mark_timeout`` count as played: Twilio does not always echo, e.g. on a one-way
        stream)."""
        marks = self._marks
        if marks and self._loop is not None:
            expired = self._loop.time() - self.mark_timeout
            while marks and marks[0][1] < expired:
                self._played = max(self._played, marks.popleft()[0])
        return self._sent - self._played

    async def _sleep(self, loop: asyncio.AbstractEventLoop, until: float | None) -> None:
        """Until ``until`` (loop time; None: until woken) or a write, flush or close."""
        waiter = self._wakeup = loop.create_future()
        handle = loop.call_at(until, _resolve, waiter) if until is not None else None
        try:
            await waiter
        finally:
            if handle is not None:
                handle.cancel()
            self._wakeup = None

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)

    def _release_writers(self) -> None:
        if self._space is not None and not self._space.done():
            self._space.set_result(None)

    def _notify_idle(self) -> None:
        waiters, self._idle_waiters = self._idle_waiters, []
        for waiter in waiters:
            _resolve(waiter)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
