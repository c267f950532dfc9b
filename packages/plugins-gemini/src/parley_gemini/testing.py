"""A local Gemini Live server for tests: it speaks the BidiGenerateContent protocol.

```python
async with FakeGeminiLive(replies=[{"name": "get_weather", "args": {"location": "Oslo"}},
                                   "It is {result}"], transcripts=["weather in Oslo?"]) as fake:
    live = gemini.Realtime(api_key=fake.api_key, base_url=fake.url)
    ...
```

The server checks the key (``x-goog-api-key`` header or ``key`` query parameter) and the
``setup`` message, answers ``setupComplete``, and runs a simple energy VAD over the PCM16 it
receives: when the user stops speaking it sends their transcript (``inputTranscription``) and
the next scripted reply: a text is spoken as 24 kHz audio (``modelTurn.inlineData``) with an
``outputTranscription`` and ends with ``usageMetadata`` and ``turnComplete``; a dict
``{"name", "args"}`` is sent as a ``toolCall`` and the next reply waits for the
``toolResponse`` (``{result}`` in it is replaced by the tool's output). Speech while the model
replies interrupts it (``interrupted``). Typed ``clientContent`` turns are answered the same way.
Faults: ``reject_status`` (refuse the handshake), ``stall_setup`` (never answer the setup),
``drop_after_audio`` (close with 1011 after that many seconds of audio).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from parley_gemini.live import LIVE_PATH

Reply = str | Mapping[str, Any]


@dataclass
class _Connection:
    ws: ServerConnection
    speaking: bool = False
    silence: float = 0.0
    speech: float = 0.0
    reply: asyncio.Task[None] | None = None
    tool_result: asyncio.Future[str] | None = None


@dataclass
class FakeGeminiLive:
    replies: Sequence[Reply] = ()
    transcripts: Sequence[str] = ()
    api_key: str = "test-gemini-key"
    seconds_per_char: float = 0.01
    chunk_seconds: float = 0.05
    pace: float = 0.0  # seconds to sleep between audio chunks (0: as fast as possible)
    speech_threshold: float = 0.02
    silence_to_end: float = 0.3
    reject_status: int | None = None
    stall_setup: bool = False
    drop_after_audio: float | None = None
    # what the server saw
    setups: list[dict[str, Any]] = field(default_factory=list)
    messages: list[dict[str, Any]] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    audio_seconds: float = 0.0
    video_frames: int = 0
    tool_responses: list[dict[str, Any]] = field(default_factory=list)
    _server: Server | None = None
    _replies: list[Reply] = field(default_factory=list)
    _transcripts: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def start(self) -> FakeGeminiLive:
        self._replies = list(self.replies)
        self._transcripts = list(self.transcripts)
        self._server = await serve(
            self._handler, "127.0.0.1", 0, process_request=self._check, max_size=None
        )
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeGeminiLive:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.headers.append(request.headers)
        if self.reject_status is not None:
            status = HTTPStatus(self.reject_status)
            body = json.dumps({"error": {"code": status.value, "message": status.phrase}})
            return connection.respond(status, body)
        if urlsplit(request.path).path != LIVE_PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown endpoint\n")
        return None

    def _key_ok(self, connection: ServerConnection) -> bool:
        request = connection.request
        assert request is not None
        query = parse_qs(urlsplit(request.path).query)
        key = request.headers.get("x-goog-api-key") or query.get("key", [""])[0]
        return key == self.api_key

    async def _handler(self, ws: ServerConnection) -> None:
        first = json.loads(await ws.recv())
        self.messages.append(first)
        if "setup" not in first or "model" not in first["setup"]:
            await ws.close(1007, "The first message must be a setup message with a model.")
            return
        if not self._key_ok(ws):
            await ws.close(1007, "API key not valid. Please pass a valid API key.")
            return
        self.setups.append(first["setup"])
        if self.stall_setup:
            await ws.wait_closed()
            return
        await ws.send(json.dumps({"setupComplete": {}}))
        state = _Connection(ws)
        try:
            async for raw in ws:
                message = json.loads(raw)
                self.messages.append(message)
                await self._on_message(state, message)
        finally:
            if state.reply is not None:
                state.reply.cancel()

    async def _on_message(self, state: _Connection, message: dict[str, Any]) -> None:
        realtime = message.get("realtimeInput") or {}
        if "audio" in realtime:
            await self._on_audio(state, realtime["audio"])
        if "video" in realtime:
            self.video_frames += 1
        content = message.get("clientContent")
        if content and content.get("turnComplete"):
            self._start_reply(state, heard=None)
        response = message.get("toolResponse")
        if response:
            self.tool_responses.extend(response.get("functionResponses", []))
            if state.tool_result is not None and not state.tool_result.done():
                results = response.get("functionResponses") or [{}]
                state.tool_result.set_result(str(results[0].get("response", {}).get("result")))

    async def _on_audio(self, state: _Connection, blob: Mapping[str, Any]) -> None:
        rate = int(str(blob.get("mimeType", "rate=16000")).rsplit("=", 1)[-1])
        samples = np.frombuffer(base64.b64decode(blob["data"]), dtype="<i2")
        seconds = len(samples) / rate
        self.audio_seconds += seconds
        if self.drop_after_audio is not None and self.audio_seconds >= self.drop_after_audio:
            await state.ws.close(1011, "Internal error encountered.")
            return
        level = float(np.sqrt(np.mean((samples / 32768.0) ** 2))) if len(samples) else 0.0
        if level >= self.speech_threshold:
            if not state.speaking and state.reply is not None and not state.reply.done():
                state.reply.cancel()
                await state.ws.send(json.dumps({"serverContent": {"interrupted": True}}))
            state.speaking = True
            state.speech += seconds
            state.silence = 0.0
        elif state.speaking:
            state.silence += seconds
            if state.silence >= self.silence_to_end:
                state.speaking = False
                state.speech = 0.0
                heard = self._transcripts.pop(0) if self._transcripts else "hello"
                self._start_reply(state, heard=heard)

    def _start_reply(self, state: _Connection, heard: str | None) -> None:
        if state.reply is not None and not state.reply.done():
            state.reply.cancel()
        state.reply = asyncio.create_task(self._reply(state, heard))

    async def _reply(self, state: _Connection, heard: str | None) -> None:
        ws = state.ws
        with contextlib.suppress(Exception):
            if heard:
                await ws.send(
                    json.dumps({"serverContent": {"inputTranscription": {"text": heard}}})
                )
            result = ""
            while self._replies:
                reply = self._replies.pop(0)
                if isinstance(reply, Mapping):
                    state.tool_result = asyncio.get_running_loop().create_future()
                    call = {"id": f"fc_{len(self.tool_responses)}", **reply}
                    await ws.send(json.dumps({"toolCall": {"functionCalls": [call]}}))
                    result = await state.tool_result
                    continue
                await self._speak(ws, reply.replace("{result}", result))
                return

    async def _speak(self, ws: ServerConnection, text: str) -> None:
        await ws.send(json.dumps({"serverContent": {"outputTranscription": {"text": text}}}))
        rate = 24000
        total = max(1, math.ceil(len(text) * self.seconds_per_char / self.chunk_seconds))
        for index in range(total):
            t = (
                np.arange(int(rate * self.chunk_seconds)) + index * rate * self.chunk_seconds
            ) / rate
            pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2").tobytes()
            blob = {"mimeType": f"audio/pcm;rate={rate}", "data": base64.b64encode(pcm).decode()}
            part = {"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}}
            await ws.send(json.dumps(part))
            if self.pace:
                await asyncio.sleep(self.pace)
        usage = {"promptTokenCount": 40, "responseTokenCount": len(text), "totalTokenCount": 0}
        await ws.send(json.dumps({"usageMetadata": usage}))
        await ws.send(json.dumps({"serverContent": {"generationComplete": True}}))
        await ws.send(json.dumps({"serverContent": {"turnComplete": True}}))
