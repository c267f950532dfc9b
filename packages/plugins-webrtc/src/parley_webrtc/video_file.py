"""A local video file played as a participant's camera (``video_track_override``).

For developing video agents without pointing a camera at something: one thread decodes the
file, paces it by its own timestamps, loops it, and hands each frame to the event loop as if
it had arrived from the browser. The call keeps only the newest frame (latest wins), so a slow
reader never builds a backlog.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av

logger = logging.getLogger("parley.webrtc")

VideoSink = Callable[[av.VideoFrame], None]


class VideoFileError(ValueError):
    """The override file cannot be played."""


def check_video_file(path: str | os.PathLike[str]) -> Path:
    """The file as a `Path` if it holds a decodable video stream; raises `VideoFileError`."""
    file = Path(path)
    if not file.is_file():
        raise VideoFileError(f"video_track_override: no such file: {file}")
    try:
        with av.open(str(file)) as container:
            if not container.streams.video:
                raise VideoFileError(f"video_track_override: {file} has no video stream")
    except av.FFmpegError as exc:
        raise VideoFileError(f"video_track_override: cannot open {file}: {exc}") from exc
    return file


class VideoFilePlayer:
    """Plays ``path`` in real time, over and over, into ``sink`` (called on the event loop)."""

    def __init__(self, path: str | Path, sink: VideoSink) -> None:
        self.path = Path(path)
        self.frames_played = 0
        self.loops = 0
        self._sink = sink
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        loop = asyncio.get_running_loop()
        self._thread = threading.Thread(
            target=self._play, args=(loop,), name="parley-video-override", daemon=True
        )
        self._thread.start()

    async def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None:
            await asyncio.to_thread(thread.join)

    def _deliver(self, frame: av.VideoFrame) -> None:
        if not self._stop.is_set():
            self.frames_played += 1
            self._sink(frame)

    def _play(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            while not self._stop.is_set():
                if not self._play_once(loop):
                    logger.warning("video_track_override: %s yielded no frames", self.path)
                    return
                self.loops += 1
        except av.FFmpegError as exc:
            logger.error("video_track_override: playing %s failed: %s", self.path, exc)
        except RuntimeError:  # the event loop closed under us: nothing left to feed
            pass

    def _play_once(self, loop: asyncio.AbstractEventLoop) -> int:
        with av.open(str(self.path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            interval = 1 / float(stream.average_rate) if stream.average_rate else 0.04
            start = time.monotonic()
            first: float | None = None
            played = 0
            for frame in container.decode(stream):
                at = float(frame.time or 0.0)
                first = at if first is None else first
                # Event.wait doubles as an interruptible sleep until the frame is due.
                if self._stop.wait(max(0.0, start + (at - first) - time.monotonic())):
                    break
                loop.call_soon_threadsafe(self._deliver, frame)
                played += 1
            self._stop.wait(interval)  # the last frame lasts one frame, too
            return played
