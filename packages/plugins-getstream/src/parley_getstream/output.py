"""The agent's voice on a Stream call: whole 20 ms frames into the SDK's `AudioStreamTrack`.

The SDK forwards what the track is given to its own send queue, which plays it out at real
time, but it does not say how much of that queue is left. So `StreamAudioOutput` keeps the
playout clock itself: each 20 ms frame handed to the track ends playing 20 ms after the
previous one (or after now, when the queue had run dry). That clock gives `buffered`,
back-pressure for `write` (at most ``max_buffered`` seconds ahead) and `wait_for_playout`.

`flush` (barge-in) clears the track, which clears the SDK's send queue too. The track's flush
is a coroutine, so `flush` starts it and the next `write` waits for it: nothing written after
a flush can be dropped by it, and nothing written before it is sent after it.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

import numpy as np
from parley.audio import AudioResampler
from parley.edge import AudioOutput
from parley.frames import AudioFrame

from parley_getstream.sdk import SAMPLE_RATE, pcm_data

logger = logging.getLogger("parley.getstream")

FRAME_SECONDS = 0.02
FRAME_SAMPLES = int(SAMPLE_RATE * FRAME_SECONDS)
FRAME_BYTES = FRAME_SAMPLES * 2  # mono int16


class PcmSink(Protocol):
    """What the output uses of the SDK's `getstream.video.rtc.AudioStreamTrack`."""

    async def write(self, pcm: Any, final: bool = False) -> None: ...

    async def flush(self) -> None: ...


class StreamAudioOutput(AudioOutput):
    """Agent speech into one SDK audio track, paced by a real-time playout clock."""

    sample_rate = SAMPLE_RATE
    channels = 1

    def __init__(self, track: PcmSink, *, max_buffered: float = 1.0) -> None:
        if max_buffered < FRAME_SECONDS:
            raise ValueError(f"max_buffered must be at least {FRAME_SECONDS} s, got {max_buffered}")
        self.track = track
        self.max_buffered = max_buffered
        self._pending = bytearray()  # PCM short of a whole frame
        self._resampler = AudioResampler(SAMPLE_RATE, 1, "int16")
        self._end: float | None = None  # loop time at which the audio sent so far ends
        self._epoch = 0  # bumped by every flush: a write that sees it change stops
        self._sent_since_flush = False
        self._flushing: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Future[None] | None = None
        self._closed = False
        self.frames_sent = 0  # 20 ms frames handed to the track
        self.flushes = 0  # flushes that dropped audio
        self._seconds_flushed = 0.0  # of those frames, dropped by flushes before playing

    # --- AudioOutput --------------------------------------------------------------------------

    async def write(self, frame: AudioFrame) -> None:
        if self._closed:
            logger.debug("dropping %r: the agent left the call", frame)
            return
        if self._flushing is not None:
            await asyncio.shield(self._flushing)  # a cancelled writer must not stop it
        epoch = self._epoch
        pending = self._pending
        pending += self._resampler.samples(frame).tobytes()
        whole = len(pending) - len(pending) % FRAME_BYTES
        if whole:
            samples = np.frombuffer(bytes(pending[:whole]), dtype=np.int16)
            del pending[:whole]
            for start in range(0, samples.size, FRAME_SAMPLES):
                if self._epoch != epoch or self._closed:
                    return  # flushed while sending: the rest of this frame goes too
                await self._send(samples[start : start + FRAME_SAMPLES])
        while not self._closed and self._epoch == epoch:
            excess = self.buffered - self.max_buffered
            if excess <= 0:
                break
            await self._nap(excess)

    def flush(self) -> float:
        dropped = self.buffered
        self._seconds_flushed += self._queued()
        self._epoch += 1
        self._pending.clear()
        self._resampler.reset()
        self._end = None
        if self._sent_since_flush and not self._closed:
            self._sent_since_flush = False
            self._flushing = asyncio.ensure_future(self._flush_track())
        if dropped > 0:
            self.flushes += 1
        self._wake()
        return dropped

    async def wait_for_playout(self) -> None:
        if self._pending and not self._closed:
            # The tail of an utterance: pad it to a whole frame so it is played now.
            tail = np.zeros(FRAME_SAMPLES, dtype=np.int16)
            pcm = np.frombuffer(bytes(self._pending), dtype=np.int16)
            tail[: pcm.size] = pcm
            self._pending.clear()
            if self._flushing is not None:
                await asyncio.shield(self._flushing)  # a cancelled writer must not stop it
            await self._send(tail)
        while not self._closed and (remaining := self.buffered) > 0:
            await self._nap(remaining)

    @property
    def buffered(self) -> float:
        return self._queued() + len(self._pending) / (2 * SAMPLE_RATE)

    @property
    def seconds_played(self) -> float:
        """Seconds of agent audio played out so far (by the playout clock)."""
        return self.frames_sent * FRAME_SECONDS - self._seconds_flushed - self._queued()

    # --- the connection's side ----------------------------------------------------------------

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """The agent left: drop what is queued here and wake every waiting writer."""
        self._closed = True
        self._pending.clear()
        self._end = None
        self._wake()

    # --- internals ----------------------------------------------------------------------------

    def _queued(self) -> float:
        """Seconds handed to the track and not yet played."""
        if self._end is None:
            return 0.0
        return max(0.0, self._end - asyncio.get_running_loop().time())

    async def _send(self, samples: np.ndarray[Any, np.dtype[np.int16]]) -> None:
        now = asyncio.get_running_loop().time()
        # Counted before the await: a flush while the track takes it reports it as dropped.
        self._end = max(self._end or now, now) + FRAME_SECONDS
        self._sent_since_flush = True
        self.frames_sent += 1
        await self.track.write(pcm_data(samples))

    async def _flush_track(self) -> None:
        try:
            await self.track.flush()
        except Exception:
            logger.exception("could not flush the agent's audio track")
        finally:
            if self._flushing is asyncio.current_task():
                self._flushing = None

    async def _nap(self, seconds: float) -> None:
        """Sleep up to ``seconds``; a flush or close wakes it early."""
        if self._wakeup is None or self._wakeup.done():
            self._wakeup = asyncio.get_running_loop().create_future()
        await asyncio.wait([self._wakeup], timeout=seconds)

    def _wake(self) -> None:
        if self._wakeup is not None and not self._wakeup.done():
            self._wakeup.set_result(None)
