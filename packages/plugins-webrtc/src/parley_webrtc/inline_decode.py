"""Decode received audio on the event loop instead of aiortc's per-track decoder thread.

For every received frame aiortc puts the encoded frame on a `queue.Queue`, a thread decodes
it, and `run_coroutine_threadsafe` hops back to the loop: a lock, a thread switch, a task, a
future and a self-pipe write per 20 ms. An Opus frame decodes in tens of microseconds, less
than the hop, so the edge puts an `InlineAudioDecoder` where aiortc keeps that queue: frames
are decoded where they arrive and handed straight to the call. aiortc's thread still starts
and simply waits for the stop signal, so ending a track works as before.

`install` also gives the receiver a jitter buffer that releases each frame as soon as the
next one arrives: aiortc's audio default holds four frames back (80 ms) before decoding,
which only delays the agent's hearing (it does not help with loss or reordering: both stall
the buffer until the gap fills either way), and a voice agent has no playout to smooth.

This touches private attributes of aiortc's `RTCRtpReceiver`; `install` returns False when
they are missing (another aiortc version) and the edge then reads the track the ordinary way.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCRtpReceiver
from aiortc.codecs import get_decoder
from aiortc.jitterbuffer import JitterBuffer

from parley_webrtc.opus import OpusMonoDecoder

logger = logging.getLogger("parley.webrtc")

_QUEUE = "_RTCRtpReceiver__decoder_queue"
_JITTER = "_RTCRtpReceiver__jitter_buffer"
_STARTED = "_RTCRtpReceiver__started"

AudioSink = Callable[[av.AudioFrame], None]


class InlineAudioDecoder:
    """Stands in for aiortc's decoder queue: `put` decodes, `get` waits for the stop."""

    def __init__(self, sink: AudioSink) -> None:
        self._sink = sink
        self._stopped = threading.Event()
        self._opus = OpusMonoDecoder()
        self._others: dict[str, Any] = {}

    def put(self, task: tuple[Any, Any] | None) -> None:
        """Called by aiortc on the event loop with (codec, encoded frame), or None to stop."""
        if task is None:
            self._stopped.set()
            return
        codec, encoded = task
        try:
            if codec.name == "opus":
                frames = self._opus.decode(encoded.data, encoded.timestamp)
            else:
                frames = self._decoder(codec).decode(encoded)
        except av.FFmpegError as exc:
            logger.warning("failed to decode a received %s frame: %s", codec.name, exc)
            return
        sink = self._sink
        for frame in frames:
            sink(frame)

    def get(self) -> None:
        """Called by aiortc's decoder thread: there is nothing to decode there, ever."""
        self._stopped.wait()

    def _decoder(self, codec: Any) -> Any:
        decoder = self._others.get(codec.name)
        if decoder is None:
            decoder = self._others[codec.name] = get_decoder(codec)
        return decoder


def install(receiver: RTCRtpReceiver, sink: AudioSink) -> bool:
    """Route ``receiver``'s audio through an `InlineAudioDecoder` before it starts receiving."""
    if getattr(receiver, _STARTED, True) or not all(
        hasattr(receiver, name) for name in (_QUEUE, _JITTER)
    ):
        return False
    setattr(receiver, _QUEUE, InlineAudioDecoder(sink))
    setattr(receiver, _JITTER, JitterBuffer(capacity=16, prefetch=1))
    return True
