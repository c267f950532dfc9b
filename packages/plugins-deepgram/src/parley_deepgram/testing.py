"""A local Deepgram listen server for tests: it speaks the live transcription protocol.

```python
async with FakeDeepgram(transcripts=["what's the weather in Oslo"]) as fake:
    stt = deepgram.STT(api_key=fake.api_key, base_url=fake.url)
    ...
```

The server checks ``Authorization: Token <key>`` (a wrong key is refused with HTTP 401 and a
``dg-error`` header, as Deepgram does) and runs an energy VAD over the linear16 audio it gets.

- ``/v1/listen`` (Nova): ``SpeechStarted`` when speech begins (``vad_events``), interim
  ``Results`` every 0.2 s of speech (``interim_results``), then after ``endpointing`` ms of
  silence a final ``Results`` (``is_final`` and ``speech_final``) with the next scripted
  transcript and ``UtteranceEnd`` (``utterance_end_ms``). ``Finalize`` finalizes at once
  (``from_finalize``); ``CloseStream`` finalizes, sends ``Metadata`` and closes; ``KeepAlive``
  is counted.
- ``/v2/listen`` (Flux): ``TurnInfo`` events ``StartOfTurn``, ``Update``, then at the end of
  speech ``EagerEndOfTurn`` (when ``eager_eot_threshold`` is set) and ``EndOfTurn``.

Faults: ``reject_status`` (refuse the handshake), ``stall_handshake`` (never answer it),
``drop_after_audio`` (close the first connection with 1011 after that many seconds of audio),
``fatal_close`` (close with 1008 DATA-0000 at the first audio).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.http11 import Request, Response


@dataclass
class _Listen:
    ws: ServerConnection
    flux: bool
    query: dict[str, str]
    rate: int
    seconds: float = 0.0  # audio received on this connection
    speaking: bool = False
    utterance_start: float | None = None
    silence: float = 0.0
    since_interim: float = 0.0
    turn_index: int = 0


@dataclass
class FakeDeepgram:
    transcripts: Sequence[str] = ()
    api_key: str = "test-deepgram-key"
    speech_threshold: float = 0.02
    reject_status: int | None = None
    stall_handshake: bool = False
    drop_after_audio: float | None = None
    fatal_close: bool = False
    # what the server saw
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    headers: list[Headers] = field(default_factory=list)
    controls: list[str] = field(default_factory=list)  # KeepAlive, Finalize, CloseStream
    audio_seconds: list[float] = field(default_factory=list)  # per connection
    sent: list[dict[str, Any]] = field(default_factory=list)
    _server: Server | None = None
    _transcripts: list[str] = field(default_factory=list)
    _dropped: bool = False
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake first"
        port = next(iter(self._server.sockets)).getsockname()[1]
        return f"ws://127.0.0.1:{port}"

    async def start(self) -> FakeDeepgram:
        self._transcripts = list(self.transcripts)
        self._server = await serve(self._handler, "127.0.0.1", 0, process_request=self._check)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def __aenter__(self) -> FakeDeepgram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.headers.append(request.headers)
        if self.stall_handshake:
            await self._stopping.wait()  # hold the handshake until the fake stops
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "stopping\n")
        if self.reject_status is not None:
            status = HTTPStatus(self.reject_status)
            body = json.dumps({"err_code": status.phrase, "err_msg": status.phrase})
            response = connection.respond(status, body)
            response.headers["dg-error"] = status.phrase
            response.headers["Retry-After"] = "0"
            return response
        if request.headers.get("Authorization") != f"Token {self.api_key}":
            response = connection.respond(HTTPStatus.UNAUTHORIZED, '{"err_code":"INVALID_AUTH"}')
            response.headers["dg-error"] = "Invalid credentials."
            return response
        if urlsplit(request.path).path not in ("/v1/listen", "/v2/listen"):
            return connection.respond(HTTPStatus.NOT_FOUND, "unknown endpoint\n")
        return None

    async def _send(self, state: _Listen, message: dict[str, Any]) -> None:
        self.sent.append(message)
        await state.ws.send(json.dumps(message))

    async def _handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        split = urlsplit(ws.request.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        self.requests.append((split.path, query))
        state = _Listen(ws, split.path == "/v2/listen", query, int(query.get("sample_rate", 16000)))
        self.audio_seconds.append(0.0)
        index = len(self.audio_seconds) - 1
        if state.flux:
            await self._send(state, {"type": "Connected", "request_id": "fake", "sequence_id": 0})
        async for raw in ws:
            if isinstance(raw, bytes):
                if self.fatal_close:
                    await ws.close(1008, "DATA-0000")
                    return
                await self._audio(state, raw)
                self.audio_seconds[index] = state.seconds
                if (
                    self.drop_after_audio is not None
                    and not self._dropped
                    and state.seconds >= self.drop_after_audio
                ):
                    self._dropped = True
                    await ws.close(1011, "NET-0000")
                    return
                continue
            kind = json.loads(raw).get("type", "")
            self.controls.append(kind)
            if kind == "Finalize" and state.utterance_start is not None:
                await self._final(state, from_finalize=True)
            elif kind == "CloseStream":
                if state.utterance_start is not None:
                    await self._final(state, from_finalize=True)
                await self._send(
                    state,
                    {
                        "type": "Metadata",
                        "request_id": "fake",
                        "duration": state.seconds,
                        "channels": 1,
                    },
                )
                await ws.close()
                return

    async def _audio(self, state: _Listen, pcm: bytes) -> None:
        samples = np.frombuffer(pcm, dtype="<i2")
        seconds = len(samples) / state.rate
        level = float(np.sqrt(np.mean((samples / 32768.0) ** 2))) if len(samples) else 0.0
        state.seconds += seconds
        if level >= self.speech_threshold:
            if not state.speaking:
                state.speaking = True
                if state.utterance_start is None:
                    state.utterance_start = state.seconds - seconds
                    await self._speech_started(state)
            state.silence = 0.0
            state.since_interim += seconds
            if state.since_interim >= (0.25 if state.flux else 0.2):
                state.since_interim = 0.0
                await self._interim(state)
        elif state.utterance_start is not None:
            state.speaking = False
            state.silence += seconds
            end_ms = 500 if state.flux else int(state.query.get("endpointing", "10") or 10)
            if state.silence * 1000 >= end_ms:
                await self._final(state, from_finalize=False)

    def _next_words(self, state: _Listen, fraction: float = 1.0) -> str:
        words = (self._transcripts[0] if self._transcripts else "hello").split()
        return " ".join(words[: max(1, int(len(words) * fraction))])

    def _heard(self, state: _Listen) -> float:
        assert state.utterance_start is not None
        return state.seconds - state.utterance_start - state.silence

    async def _speech_started(self, state: _Listen) -> None:
        if state.flux:
            await self._send(state, self._turn(state, "StartOfTurn", ""))
        elif state.query.get("vad_events") == "true":
            await self._send(
                state, {"type": "SpeechStarted", "channel": [0], "timestamp": state.utterance_start}
            )

    async def _interim(self, state: _Listen) -> None:
        text = self._next_words(state, min(0.9, self._heard(state)))
        if state.flux:
            await self._send(state, self._turn(state, "Update", text))
        elif state.query.get("interim_results") == "true":
            await self._send(state, self._results(state, text, is_final=False))

    async def _final(self, state: _Listen, *, from_finalize: bool) -> None:
        text = self._transcripts.pop(0) if self._transcripts else "hello"
        if state.flux:
            if state.query.get("eager_eot_threshold"):
                await self._send(state, self._turn(state, "EagerEndOfTurn", text))
            await self._send(state, self._turn(state, "EndOfTurn", text))
            state.turn_index += 1
        else:
            message = self._results(state, text, is_final=True, speech_final=not from_finalize)
            message["from_finalize"] = from_finalize
            await self._send(state, message)
            if state.query.get("utterance_end_ms") and not from_finalize:
                await self._send(
                    state,
                    {
                        "type": "UtteranceEnd",
                        "channel": [0, 1],
                        "last_word_end": state.seconds - state.silence,
                    },
                )
        state.utterance_start = None
        state.speaking = False
        state.silence = 0.0
        state.since_interim = 0.0

    def _results(
        self, state: _Listen, text: str, *, is_final: bool, speech_final: bool = False
    ) -> dict[str, Any]:
        assert state.utterance_start is not None
        words = [
            {"word": w.lower().strip(".,?!"), "punctuated_word": w, "confidence": 0.97}
            for w in text.split()
        ]
        return {
            "type": "Results",
            "channel_index": [0, 1],
            "duration": state.seconds - state.utterance_start,
            "start": state.utterance_start,
            "is_final": is_final,
            "speech_final": speech_final,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.97, "words": words}]},
            "metadata": {
                "request_id": "fake",
                "model_info": {"name": state.query.get("model", "")},
            },
        }

    def _turn(self, state: _Listen, event: str, text: str) -> dict[str, Any]:
        start = state.utterance_start or 0.0
        return {
            "type": "TurnInfo",
            "event": event,
            "turn_index": state.turn_index,
            "audio_window_start": start,
            "audio_window_end": state.seconds,
            "transcript": text,
            "words": [{"word": w, "confidence": 0.95} for w in text.split()],
            "end_of_turn_confidence": 0.9 if event.endswith("EndOfTurn") else 0.1,
        }
