"""A fake Twilio for tests and benchmarks: the Voice webhook and Media Streams, as documented.

`FakePhoneCall` plays Twilio's side of one call over a real WebSocket: it signs the
handshake, sends ``connected`` and ``start``, streams the caller's audio as base64 µ-law
``media`` messages (20 ms each, at real-time pace), sends ``dtmf`` and ``stop``, and plays
what the agent sends the way Twilio does: ``media`` is queued for playback, a ``mark`` is
echoed once the audio before it has played, and ``clear`` drops the queue and echoes the
marks still pending at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
import numpy.typing as npt
import websockets
from parley_twilio.g711 import FRAME_BYTES, ulaw_decode, ulaw_encode
from parley_twilio.protocol import CALL_ID_PARAMETER
from parley_twilio.signature import SIGNATURE_HEADER, compute_signature

FRAME = 0.02


def new_sid(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


async def post_webhook(
    http: httpx.AsyncClient, url: str, token: str | None, form: dict[str, str]
) -> httpx.Response:
    """POST the Voice webhook as Twilio does (form-encoded, signed unless ``token`` is None)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    if token is not None:
        headers[SIGNATURE_HEADER] = compute_signature(token, url, form)
    return await http.post(url, content=urlencode(form), headers=headers)


@dataclass
class Received:
    at: float  # time.perf_counter()
    message: dict[str, Any]


@dataclass
class FakePhoneCall:
    """Twilio's side of one Media Stream (see the module docstring)."""

    url: str  # ws://host:port/twilio/media
    token: str | None
    call_id: str | None = None
    call_sid: str = field(default_factory=lambda: new_sid("CA"))
    stream_sid: str = field(default_factory=lambda: new_sid("MZ"))
    parameters: dict[str, str] = field(default_factory=dict)
    echo_marks: bool = True
    keep_messages: bool = True

    def __post_init__(self) -> None:
        self.received: list[Received] = []
        self.media = bytearray()  # every µ-law byte the agent sent
        self.media_count = 0
        self.clears: list[float] = []
        self.marks_echoed: list[str] = []
        self.first_media_at: float | None = None
        self.last_media_at: float | None = None
        self._socket: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._player: asyncio.Task[None] | None = None
        self._playback: list[tuple[str, Any]] = []  # ("audio", n) and ("mark", name)
        self._wake = asyncio.Event()
        self._sequence = 0
        self._chunk = 0
        self.closed = asyncio.Event()
        self.close_code: int | None = None

    # --- connecting ---------------------------------------------------------------------------

    async def connect(self) -> None:
        headers = {}
        if self.token is not None:
            headers[SIGNATURE_HEADER] = compute_signature(self.token, self.url)
        self._socket = await websockets.connect(  # no permessage-deflate, as Twilio
            self.url, additional_headers=headers, max_size=2**20, compression=None
        )
        self._reader = asyncio.ensure_future(self._read())
        self._player = asyncio.ensure_future(self._play())
        await self._send({"event": "connected", "protocol": "Call", "version": "1.0.0"})
        parameters = dict(self.parameters)
        if self.call_id is not None:
            parameters.setdefault(CALL_ID_PARAMETER, self.call_id)
        await self._send(
            {
                "event": "start",
                "sequenceNumber": self._next(),
                "start": {
                    "accountSid": "AC" + "0" * 32,
                    "streamSid": self.stream_sid,
                    "callSid": self.call_sid,
                    "tracks": ["inbound"],
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    "customParameters": parameters,
                },
                "streamSid": self.stream_sid,
            }
        )

    # --- the caller ---------------------------------------------------------------------------

    async def say(self, pcm: npt.NDArray[np.int16], realtime: bool = True) -> None:
        """Stream 8 kHz int16 audio as 20 ms media messages (paced in real time)."""
        payload = ulaw_encode(pcm)
        loop = asyncio.get_running_loop()
        start = loop.time()
        for n, offset in enumerate(range(0, len(payload), FRAME_BYTES)):
            if realtime:
                delay = start + n * FRAME - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_media(payload[offset : offset + FRAME_BYTES])

    async def silence(self, seconds: float, realtime: bool = True) -> None:
        await self.say(np.zeros(round(seconds * 8000), np.int16), realtime)

    async def send_media(self, payload: bytes) -> None:
        self._chunk += 1
        await self._send(
            {
                "event": "media",
                "sequenceNumber": self._next(),
                "media": {
                    "track": "inbound",
                    "chunk": str(self._chunk),
                    "timestamp": str(self._chunk * 20),
                    "payload": base64.b64encode(payload).decode(),
                },
                "streamSid": self.stream_sid,
            }
        )

    async def press(self, digit: str) -> None:
        await self._send(
            {
                "event": "dtmf",
                "streamSid": self.stream_sid,
                "sequenceNumber": self._next(),
                "dtmf": {"track": "inbound_track", "digit": digit},
            }
        )

    async def hang_up(self) -> None:
        """The caller hangs up: ``stop``, then Twilio closes the socket."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(
                {
                    "event": "stop",
                    "sequenceNumber": self._next(),
                    "stop": {"accountSid": "AC" + "0" * 32, "callSid": self.call_sid},
                    "streamSid": self.stream_sid,
                }
            )
        await self.close()

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        for task in (self._reader, self._player):
            if task is not None:
                task.cancel()
        await asyncio.gather(
            *(t for t in (self._reader, self._player) if t is not None), return_exceptions=True
        )
        self.closed.set()

    # --- what the agent sent ------------------------------------------------------------------

    def audio(self) -> npt.NDArray[np.int16]:
        """Everything the agent said, decoded to 8 kHz int16."""
        return ulaw_decode(bytes(self.media))

    async def wait_for(self, event: str, count: int = 1, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while sum(1 for r in self.received if r.message["event"] == event) < count:
                await asyncio.sleep(0.005)

    # --- internals ----------------------------------------------------------------------------

    def _next(self) -> str:
        self._sequence += 1
        return str(self._sequence)

    async def _send(self, message: dict[str, Any]) -> None:
        # Compact, as Twilio sends them (the media route reads that layout without a parse).
        await self._socket.send(json.dumps(message, separators=(",", ":")))

    async def _read(self) -> None:
        try:
            async for text in self._socket:
                now = time.perf_counter()
                message = json.loads(text)
                event = message.get("event")
                if self.keep_messages or event != "media":
                    self.received.append(Received(now, message))
                if event == "media":
                    payload = base64.b64decode(message["media"]["payload"])
                    self.media += payload
                    self.media_count += 1
                    self.first_media_at = self.first_media_at or now
                    self.last_media_at = now
                    self._playback.append(("audio", len(payload) / 8000))
                elif event == "mark":
                    self._playback.append(("mark", message["mark"]["name"]))
                elif event == "clear":
                    self.clears.append(now)
                    pending = [v for k, v in self._playback if k == "mark"]
                    self._playback.clear()
                    for name in pending:
                        await self._echo(name)
                self._wake.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self._socket.close_code
            self.closed.set()

    async def _play(self) -> None:
        """Twilio's playback: audio takes its time; a mark is echoed when reached."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._playback:
                kind, value = self._playback.pop(0)
                if kind == "audio":
                    await asyncio.sleep(value)
                else:
                    await self._echo(value)

    async def _echo(self, name: str) -> None:
        if not self.echo_marks:
            return
        self.marks_echoed.append(name)
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(
                {
                    "event": "mark",
                    "sequenceNumber": self._next(),
                    "streamSid": self.stream_sid,
                    "mark": {"name": name},
                }
            )
