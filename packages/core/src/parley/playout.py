"""Playout: writes one speech at a time to the Edge, and can pause, resume or stop it at once.

Barge-in needs three things from here: flush the Edge immediately (pause), put back exactly
the audio that was flushed if the interruption was false (resume), and know how much of the
speech the user actually heard (stop). Writes of a speech that is no longer current are
dropped, so a cancelled turn can never leak stale audio.
"""

from __future__ import annotations

import asyncio
from collections import deque

from parley.audio import AudioResampler
from parley.edge import AudioOutput
from parley.frames import AudioFrame
from parley.speech import SpeechHandle

_REPLAY_MARGIN = 0.2  # seconds of already-played audio kept beyond what the Edge buffers


class Playout:
    def __init__(self, output: AudioOutput) -> None:
        self.output = output
        self._handle: SpeechHandle | None = None
        self._resampler: AudioResampler | None = None
        self._running = asyncio.Event()
        self._running.set()
        self._recent: deque[AudioFrame] = deque()
        self._recent_seconds = 0.0
        self._replay: list[AudioFrame] = []
        self.written = 0.0  # seconds of the current speech handed to the Edge and not flushed

    def begin(self, handle: SpeechHandle) -> None:
        """Make ``handle`` current."""
        self._handle = handle
        self._resampler = None
        self._recent.clear()
        self._recent_seconds = 0.0
        self._replay = []
        self.written = 0.0

    def prepare(self, source_rate: int) -> None:
        """Open the resampler for audio at ``source_rate`` (the TTS's rate) ahead of the first
        frame: call it while the LLM thinks, not on the first-audio path."""
        if source_rate != self.output.sample_rate and self._resampler is None:
            self._resampler = AudioResampler(self.output.sample_rate, self.output.channels, "int16")
            self._resampler.prepare(source_rate)

    async def write(self, handle: SpeechHandle, frame: AudioFrame) -> bool:
        """Write a frame of ``handle``; False when the handle is no longer current."""
        out = self.output
        if frame.sample_rate == out.sample_rate and frame.channels == out.channels:
            frames = [frame if frame.format == "int16" else frame.to_int16()]
        else:
            if self._resampler is None:
                self._resampler = AudioResampler(out.sample_rate, out.channels, "int16")
            frames = self._resampler.push(frame)
        for piece in frames:
            if not await self._write(handle, piece):
                return False
        return True

    async def finish(self, handle: SpeechHandle) -> bool:
        """Write the resampler's tail and wait until the Edge has played everything."""
        if self._resampler is not None:
            for piece in self._resampler.flush():
                if not await self._write(handle, piece):
                    return False
        while self._handle is handle:
            await self.output.wait_for_playout()
            if self._handle is not handle:
                return False
            if self._running.is_set() and not self._replay:
                return True
            await self._running.wait()
            if not await self._write_replay(handle):
                return False
        return False

    async def _write(self, handle: SpeechHandle, frame: AudioFrame) -> bool:
        if not self._running.is_set() or self._replay:
            await self._running.wait()
            if not await self._write_replay(handle):
                return False
        if self._handle is not handle:
            return False
        # Count before awaiting: a flush during the write drops this frame and reports it.
        self._remember(frame)
        await self.output.write(frame)
        return self._handle is handle

    async def _write_replay(self, handle: SpeechHandle) -> bool:
        while self._replay:
            if self._handle is not handle:
                return False
            if not self._running.is_set():
                await self._running.wait()
                continue
            frame = self._replay.pop(0)
            self._remember(frame)
            await self.output.write(frame)
        return self._handle is handle

    def _remember(self, frame: AudioFrame) -> None:
        duration = frame.duration
        self.written += duration
        self._recent.append(frame)
        self._recent_seconds += duration
        keep = self.output.buffered + duration + _REPLAY_MARGIN
        recent = self._recent
        while recent:
            oldest = recent[0].duration
            if self._recent_seconds - oldest <= keep:
                break
            self._recent_seconds -= oldest
            recent.popleft()

    def pause(self) -> None:
        """Silence the agent now, keeping what was flushed so `resume` can replay it."""
        if not self._running.is_set() or self._handle is None:
            return
        self._running.clear()
        dropped = self.output.flush()
        self.written = max(0.0, self.written - dropped)
        replay: list[AudioFrame] = []
        remaining = dropped
        while self._recent and remaining > 1e-6:
            frame = self._recent.pop()
            self._recent_seconds -= frame.duration
            replay.append(frame)
            remaining -= frame.duration
        replay.reverse()
        self._replay = replay + self._replay

    def resume(self) -> None:
        self._running.set()

    def stop(self, handle: SpeechHandle) -> float:
        """End ``handle`` now; returns the seconds of it the user heard."""
        if self._handle is not handle:
            return 0.0
        if self._running.is_set():
            self.written = max(0.0, self.written - self.output.flush())
        played = self.written
        self._handle = None
        self._replay = []
        self._recent.clear()
        self._recent_seconds = 0.0
        self._running.set()
        return played

    def release(self, handle: SpeechHandle) -> None:
        """``handle`` finished normally."""
        if self._handle is handle:
            self._handle = None
            self._recent.clear()
            self._recent_seconds = 0.0
