"""A local ElevenLabs stream-input server for tests: it speaks the input streaming protocol.

```python
async with FakeElevenLabs() as fake:
    tts = elevenlabs.TTS(api_key=fake.api_key, ws_url=fake.url, base_url="http://unused")
```

The server serves ``/v1/text-to-speech/{voice_id}/stream-input``: the first message must be
the begin-of-stream ``{"text": " ", "xi_api_key": ...}`` (or the key in an ``xi-api-key``
header); a wrong key gets an error message and a 1008 close, as ElevenLabs does. Text is
buffered until ``flush`` or the end-of-stream ``{"text": ""}``, then spoken as
``output_format`` PCM (a tone, ``seconds_per_char`` long per character) in base64 ``audio``
chunks; after end-of-stream it sends ``{"isFinal": true}`` and closes.
Faults: ``reject_status`` (refuse the handshake), ``drop_before_audio`` (close with 1011 before
any audio), ``drop_after_chunks`` (close with 1011 after that many audio chunks), ``stall``
(never send audio), ``stall_after_chunks`` (go quiet, connection open, after that many).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response


@dataclass
class FakeElevenLabs:
    api_key: str = "test-elevenlabs-key"
    seconds_per_char: float = 0.01
    chunk_seconds: float = 0.05
    reject_status: int | None = None
    drop_before_audio: bool = False
    drop_after_chunks: int | None = None
    stall: bool = False
    stall_after_chunks: int | None = None
    # what the server saw
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)  # the text of each finished stream
    _server: Server | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def start(self) -> FakeElevenLabs:
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._check)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeElevenLabs:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        split = urlsplit(request.path)
        self.requests.append((split.path, {k: v[-1] for k, v in parse_qs(split.query).items()}))
        if self.reject_status is not None:
            status = HTTPStatus(self.reject_status)
            body = json.dumps({"detail": {"status": status.phrase, "message": status.phrase}})
            return connection.respond(status, body)
        parts = split.path.strip("/").split("/")
        if len(parts) != 4 or parts[:2] != ["v1", "text-to-speech"] or parts[3] != "stream-input":
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown endpoint\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        output = query.get("output_format", ["mp3_44100_128"])[0]
        rate = int(output.split("_")[1]) if output.startswith("pcm_") else 24000
        header_key = ws.request.headers.get("xi-api-key")
        buffered = ""
        spoken = ""
        chunks = 0
        first = True
        async for raw in ws:
            message = json.loads(raw)
            self.messages.append(message)
            if first:
                first = False
                if (message.get("xi_api_key") or header_key) != self.api_key:
                    error = {"message": "Invalid API key", "error": "invalid_api_key", "code": 1008}
                    await ws.send(json.dumps(error))
                    await ws.close(1008, "Invalid API key")
                    return
                if self.drop_before_audio:
                    await ws.close(1011, "Internal server error")
                    return
                continue
            text = message.get("text", "")
            end = text == ""
            buffered += text
            if (message.get("flush") or end) and buffered.strip():
                if self.stall:
                    await self._stopping.wait()
                    return
                for pcm in self._speech(buffered, rate):
                    if self.drop_after_chunks is not None and chunks >= self.drop_after_chunks:
                        await ws.close(1011, "Internal server error")
                        return
                    if self.stall_after_chunks is not None and chunks >= self.stall_after_chunks:
                        await self._stopping.wait()
                        return
                    audio = {
                        "audio": base64.b64encode(pcm).decode(),
                        "isFinal": False,
                        "normalizedAlignment": None,
                    }
                    await ws.send(json.dumps(audio))
                    chunks += 1
                spoken += buffered
                buffered = ""
            if end:
                self.texts.append(spoken.strip())
                await ws.send(json.dumps({"isFinal": True}))
                await ws.close()
                return

    def _speech(self, text: str, rate: int) -> list[bytes]:
        total = len(text.strip()) * self.seconds_per_char
        count = max(1, math.ceil(total / self.chunk_seconds))
        samples = int(rate * total / count)
        t = np.arange(samples) / rate
        pcm = (np.sin(2 * np.pi * 180 * t) * 6000).astype("<i2").tobytes()
        return [pcm] * count
