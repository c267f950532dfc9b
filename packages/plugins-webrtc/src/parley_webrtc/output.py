"""The agent's voice on a call: one buffer, one Opus encoder, one real-time clock.

`CallAudioOutput` is the `AudioOutput` the engine writes to. Writes are encoded straight away
into 20 ms Opus payloads, so nothing is encoded on the paced path. A playout clock of 20 ms
ticks starts when the first peer starts receiving. Each peer's `OutboundAudioTrack` wakes on
every tick and takes that tick's payload (shared by all peers of the call), or a shared
silence packet when the agent is quiet. `flush` clears the buffer, so the very next tick is
silence on every peer.

When no peer is pulling (nobody connected yet, or every track stalled), time still passes:
the clock plays audio "to nobody", so writers keep their real-time pace.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from typing import Any

import av
import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from parley.audio import AudioResampler
from parley.edge import AudioOutput
from parley.frames import AudioFrame

from parley_webrtc.opus import (
    FRAME_BYTES,
    FRAME_SAMPLES,
    FRAME_SECONDS,
    SAMPLE_RATE,
    TIME_BASE,
    OpusEncoder,
    silence_packet,
)

logger = logging.getLogger("parley.webrtc")

# A track that wakes this late skips ahead instead of bursting old audio.
RESYNC_SECONDS = 0.2
# How far the clock may run ahead of attached-but-stalled tracks before it plays on alone.
STALL_TICKS = 10
# Lateness samples kept per track (about 82 s at 50 frames/s); a power of two for masking.
LATENESS_HISTORY = 4096


class CallAudioOutput(AudioOutput):
    """Agent speech for every peer of one call, encoded once and paced by a 20 ms clock."""

    sample_rate = SAMPLE_RATE
    channels = 1

    def __init__(
        self,
        *,
        max_buffered: float = 1.0,
        bitrate: int = 32000,
        complexity: int = 5,
        application: str = "audio",
    ) -> None:
        self.max_buffered = max_buffered
        self._encoder = OpusEncoder(bitrate, complexity, application)
        self._silence = silence_packet()
        self._packets: deque[bytes] = deque()
        self._pending = bytearray()  # PCM short of a whole frame
        self._resampler = AudioResampler(SAMPLE_RATE, 1, "int16")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._start: float | None = None  # loop time of tick 0; None until a peer pulls
        self._tick = 0  # the latest tick whose payload was taken
        self._current = self._silence  # that tick's payload, for the other peers
        self._tracks = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._closed = False
        self.frames_played = 0  # speech frames that left the buffer, to peers or to nobody
        # True from a flush that cut audio off (barge-in) until the next write: the speech
        # being ended then was interrupted (a false interruption resumes, and writes again).
        self.cut_off = False

    # --- AudioOutput --------------------------------------------------------------------------

    async def write(self, frame: AudioFrame) -> None:
        if self._closed:
            logger.debug("dropping %r: the agent left the call", frame)
            return
        self.cut_off = False
        pending = self._pending
        pending += self._resampler.samples(frame).tobytes()
        whole = len(pending) - len(pending) % FRAME_BYTES
        if whole:
            encode, packets = self._encoder.encode, self._packets
            with memoryview(pending) as view:
                for offset in range(0, whole, FRAME_BYTES):
                    packets.extend(encode(bytes(view[offset : offset + FRAME_BYTES])))
            del pending[:whole]
        while not self._closed and (excess := self.buffered - self.max_buffered) > 0:
            await self._nap(excess)

    def flush(self) -> float:
        self._advance_by_clock()
        dropped = len(self._packets) * FRAME_SECONDS + len(self._pending) / (2 * SAMPLE_RATE)
        self._packets.clear()
        self._pending.clear()
        self._resampler.reset()
        self._current = self._silence
        self._wake()
        if dropped > 0:
            self.cut_off = True
        return dropped

    async def wait_for_playout(self) -> None:
        while not self._closed and (remaining := self.buffered) > 0:
            await self._nap(max(remaining, FRAME_SECONDS))

    @property
    def buffered(self) -> float:
        self._advance_by_clock()
        return len(self._packets) * FRAME_SECONDS + len(self._pending) / (2 * SAMPLE_RATE)

    # --- the playout clock (used by the tracks) -----------------------------------------------

    @property
    def running(self) -> bool:
        return self._start is not None

    def start_clock(self) -> None:
        if self._start is None:
            self._loop = asyncio.get_running_loop()
            # Every call's ticks sit on one process-wide 20 ms grid, so the tracks of all calls
            # wake in the same loop iteration: one wakeup per tick, not one per call.
            self._start = math.floor(self._loop.time() / FRAME_SECONDS) * FRAME_SECONDS
            self._tick = self.clock_tick()

    def clock_tick(self) -> int:
        """The tick whose deadline passed most recently."""
        assert self._loop is not None
        assert self._start is not None
        return int((self._loop.time() - self._start) / FRAME_SECONDS)

    def payload_for_tick(self, tick: int) -> bytes:
        """The Opus payload to send at ``tick``; the first peer to ask takes it off the buffer."""
        if tick > self._tick:
            if tick > self._tick + 1:  # ticks nobody pulled: played to nobody
                self._drop(tick - self._tick - 1)
            self._tick = tick
            self._current = self._next_payload()
            return self._current
        if tick == self._tick:
            return self._current
        return self._silence  # a peer lagging behind the others

    def attach(self) -> None:
        self._tracks += 1

    def detach(self) -> None:
        self._tracks -= 1

    def close(self) -> None:
        self._closed = True
        self._packets.clear()
        self._pending.clear()
        self._wake()

    @property
    def silence(self) -> bytes:
        return self._silence

    # --- internals ----------------------------------------------------------------------------

    def _next_payload(self) -> bytes:
        packets = self._packets
        if not packets and self._pending:  # the tail of an utterance: pad it to a frame
            self._pending.extend(bytes(FRAME_BYTES - len(self._pending)))
            packets.extend(self._encoder.encode(bytes(self._pending)))
            self._pending.clear()
        if packets:
            self.frames_played += 1
            if len(packets) == 1:
                self._wake()  # the last frame is out: playout waiters may return
            return packets.popleft()
        return self._silence

    def _drop(self, count: int) -> None:
        packets = self._packets
        count = min(count, len(packets))
        self.frames_played += count
        for _ in range(count):
            packets.popleft()

    def _advance_by_clock(self) -> None:
        if self._start is None:
            return
        target = self.clock_tick() - (STALL_TICKS if self._tracks else 0)
        if target > self._tick:
            self._drop(target - self._tick)
            if self._pending and not self._packets:
                self._pending.clear()
            self._tick = target
            self._current = self._silence

    async def _nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a flush, the last frame leaving, or close wakes it early."""
        if self._wakeup is None or self._wakeup.done():
            self._wakeup = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._wakeup], timeout=seconds)

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)


class OutboundAudioTrack(MediaStreamTrack):
    """One peer's view of the call audio: a pre-encoded Opus packet every 20 ms.

    aiortc's sender calls `recv` in a loop; pacing lives here. Counters and a lateness
    history (how long after its deadline each packet left) are kept for tests and benchmarks.
    """

    kind = "audio"

    def __init__(self, output: CallAudioOutput) -> None:
        super().__init__()
        self._output = output
        self._next = -1
        output.attach()
        self.frames_sent = 0
        self.speech_frames_sent = 0
        self.resyncs = 0
        self._lateness: npt.NDArray[np.float32] = np.zeros(LATENESS_HISTORY, dtype=np.float32)

    async def recv(self) -> av.Packet[Any]:
        if self.readyState != "live":
            raise MediaStreamError
        output = self._output
        tick = self._next
        if tick < 0:
            output.start_clock()
            tick = output.clock_tick() + 1
        loop, start = output._loop, output._start
        assert loop is not None
        assert start is not None
        deadline = start + tick * FRAME_SECONDS
        delay = deadline - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
            late = loop.time() - deadline
        else:
            late = -delay
            if late > RESYNC_SECONDS:  # the loop stalled: skip ahead, do not burst
                tick = output.clock_tick()
                self.resyncs += 1
        if self.readyState != "live":
            raise MediaStreamError
        payload = output.payload_for_tick(tick)
        self._next = tick + 1
        self._lateness[self.frames_sent & (LATENESS_HISTORY - 1)] = late
        self.frames_sent += 1
        if payload is not output.silence:
            self.speech_frames_sent += 1
        packet = av.Packet(payload)
        packet.pts = tick * FRAME_SAMPLES
        packet.time_base = TIME_BASE
        return packet

    def lateness(self, since: int = 0) -> npt.NDArray[np.float32]:
        """Seconds each packet left after its deadline, oldest first, for packets numbered
        ``since`` onwards (`frames_sent` before a measurement window; the last 4096 kept)."""
        start = max(since, self.frames_sent - LATENESS_HISTORY, 0)
        positions = np.arange(start, self.frames_sent) & (LATENESS_HISTORY - 1)
        recent: npt.NDArray[np.float32] = self._lateness[positions]
        return recent

    def stop(self) -> None:
        if self.readyState == "live":
            self._output.detach()
        super().stop()
