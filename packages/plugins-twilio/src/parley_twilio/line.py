"""A phone line: one Media Streams WebSocket, from Twilio's ``start`` to the call's end.

The media route creates a `PhoneLine` when the stream starts and feeds it every message; the
edge's `join` claims the line of its call (`Lines`) and wraps it in a `TwilioConnection`.
Audio that arrives before the agent joins waits in a short queue (the newest second is kept).
The line owns the call's pacing task, so it ends with the line: no task outlives a call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol

from parley.frames import AudioFrame

from parley_twilio.g711 import SAMPLE_RATE, ulaw_decode
from parley_twilio.output import PhoneAudioOutput
from parley_twilio.protocol import StreamStart, media_payload

logger = logging.getLogger("parley.twilio")

INPUT_QUEUE_FRAMES = 50  # one second of 20 ms frames


class Socket(Protocol):
    """What a line needs of its WebSocket (a Starlette ``WebSocket`` has it)."""

    async def send_text(self, data: str) -> None: ...

    async def close(self, code: int = 1000, reason: str | None = None) -> None: ...


class LineListener(Protocol):
    """What a line tells its connection (the `TwilioConnection`)."""

    def dtmf_received(self, digit: str) -> None: ...

    def line_ended(self, reason: str) -> None: ...


class PhoneLine:
    def __init__(
        self,
        call_id: str,
        start: StreamStart,
        socket: Socket,
        *,
        max_buffered: float = 1.0,
        mark_every: int = 5,
    ) -> None:
        self.call_id = call_id
        self.start = start
        self.socket = socket
        self.output = PhoneAudioOutput(
            start.stream_sid, max_buffered=max_buffered, mark_every=mark_every
        )
        self.listener: LineListener | None = None
        self.frames_received = 0
        self.frames_dropped = 0
        self.end_reason = ""
        self.hung_up_by_caller = False
        # The caller's audio, newest INPUT_QUEUE_FRAMES kept, and the reader waiting for it:
        # a deque and one future, lighter than an asyncio.Queue fifty times a second a call.
        self._input: deque[AudioFrame] = deque(maxlen=INPUT_QUEUE_FRAMES)
        self._input_waiter: asyncio.Future[None] | None = None
        self._ended = asyncio.Event()
        self._socket_closed = False
        self._clock = 0.0  # stream time of the audio received
        self._pacer = asyncio.ensure_future(self._pace())

    # --- from the route -----------------------------------------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        """One message from Twilio (after ``start``)."""
        event = message["event"]
        if event == "media":
            track = (message.get("media") or {}).get("track", "inbound")
            if track in ("inbound", "inbound_track"):
                self.audio_received(media_payload(message))
        elif event == "mark":
            name = (message.get("mark") or {}).get("name")
            if isinstance(name, str):
                self.output.mark_played(name)
        elif event == "dtmf":
            digit = (message.get("dtmf") or {}).get("digit")
            if isinstance(digit, str) and digit and self.listener is not None:
                self.listener.dtmf_received(digit)
        elif event == "stop":
            self.hung_up_by_caller = True
            self.end("the caller hung up")
        elif event not in ("connected", "start"):
            logger.debug("call %s: ignoring a %r message", self.call_id, event)

    def audio_received(self, payload: bytes) -> None:
        """The caller's µ-law audio of one ``media`` message (the route's fast path for Twilio's
        own layout; `handle` for the rest)."""
        if self._ended.is_set() or not payload:
            return
        frame = AudioFrame(ulaw_decode(payload), SAMPLE_RATE, self._clock)
        self._clock += frame.duration
        self.frames_received += 1
        received = self._input
        if len(received) == INPUT_QUEUE_FRAMES:  # nobody reads (yet): keep the newest audio
            self.frames_dropped += 1
        received.append(frame)  # a full deque drops its oldest
        self._wake_reader()

    def socket_gone(self) -> None:
        """The WebSocket closed without a ``stop`` (the call dropped)."""
        self._socket_closed = True
        if not self._ended.is_set():
            self.hung_up_by_caller = True
        self.end("the media stream closed")

    # --- the call's end -----------------------------------------------------------------------

    def end(self, reason: str) -> None:
        """No more audio either way; the connection learns it (idempotent)."""
        if self._ended.is_set():
            return
        self.end_reason = reason
        self._ended.set()
        self.output.close()
        self._pacer.cancel()
        self._input.clear()
        self._wake_reader()
        if self.listener is not None:
            self.listener.line_ended(reason)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """End the line from our side and close the socket (Twilio then ends the stream)."""
        self.end(reason or "the agent hung up")
        await asyncio.gather(self._pacer, return_exceptions=True)
        if not self._socket_closed:
            self._socket_closed = True
            with contextlib.suppress(Exception):  # already closed by the other side
                await self.socket.close(code)

    @property
    def ended(self) -> bool:
        return self._ended.is_set()

    async def wait_ended(self) -> None:
        await self._ended.wait()

    # --- for the connection -------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[AudioFrame]:
        """The caller's audio, 20 ms frames of 8 kHz int16, until the line ends."""
        while batch := await self.received_frames():
            for frame in batch:
                yield frame

    async def received_frames(self) -> list[AudioFrame]:
        """The frames received since the last call, waiting for one if there is none; empty
        once the line has ended. One reader at a time: the engine's. (For a reader that
        yields frames itself: one async generator a frame less than `frames`.)"""
        received = self._input
        while not received:
            if self._ended.is_set():
                return []
            waiter = self._input_waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                if self._input_waiter is waiter:
                    self._input_waiter = None
        batch = list(received)
        received.clear()
        return batch

    # --- internals ----------------------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._input_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _pace(self) -> None:
        try:
            await self.output.run(self.socket.send_text)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the socket went away under us
            logger.debug("call %s: sending failed: %s", self.call_id, exc)
            self.socket_gone()


class Lines:
    """This process's phone lines by call id, where `TwilioEdge.join` finds its call's."""

    def __init__(self) -> None:
        self._lines: dict[str, PhoneLine] = {}
        self._waiters: dict[str, list[asyncio.Future[None]]] = {}

    def add(self, line: PhoneLine) -> None:
        current = self._lines.get(line.call_id)
        if current is not None and not current.ended:
            raise ValueError(f"call {line.call_id!r} already has a phone line")
        self._lines[line.call_id] = line
        for waiter in self._waiters.pop(line.call_id, []):
            if not waiter.done():
                waiter.set_result(None)

    def remove(self, line: PhoneLine) -> None:
        if self._lines.get(line.call_id) is line:
            del self._lines[line.call_id]

    def get(self, call_id: str) -> PhoneLine | None:
        return self._lines.get(call_id)

    async def wait_for(self, call_id: str, timeout: float) -> PhoneLine | None:
        """The call's line, waiting up to ``timeout`` s for its stream to start."""
        if (line := self._lines.get(call_id)) is not None:
            return line
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(call_id, []).append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(call_id)
            if waiters is not None and waiter in waiters:
                waiters.remove(waiter)
                if not waiters:
                    del self._waiters[call_id]
        return self._lines.get(call_id)

    def __iter__(self) -> Iterator[PhoneLine]:
        return iter(list(self._lines.values()))

    def __len__(self) -> int:
        return len(self._lines)


default_lines = Lines()
