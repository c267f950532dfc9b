"""A local fake of the OpenAI Realtime WebSocket API for parley-openai's tests.

It speaks the documented GA protocol: it checks ``Authorization: Bearer``, greets with
``session.created``, answers ``session.update`` with ``session.updated``, and otherwise runs
the scenario a test gives it (send server events, expect client events).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import pytest
from parley.realtime import RealtimeEvent, RealtimeSession
from parley_openai.realtime import OpenAIRealtime
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

API_KEY = "sk-test"


class FakeConnection:
    """One client connection, seen from the server."""

    def __init__(self, ws: ServerConnection, server: FakeRealtimeServer) -> None:
        self.ws = ws
        self.server = server
        self._ids = itertools.count(1)

    async def send(self, type: str, **fields: Any) -> None:
        await self.ws.send(
            json.dumps({"type": type, "event_id": f"event_{next(self._ids)}", **fields})
        )

    async def receive(self, timeout: float = 5.0) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.server.received.append(event)
        return event

    async def expect(self, type: str, timeout: float = 5.0) -> dict[str, Any]:
        """The next client event, which must be of ``type``."""
        event = await self.receive(timeout)
        assert event["type"] == type, f"expected {type}, got {event}"
        return event

    async def nothing_more(self, wait: float = 0.2) -> None:
        """Give a wrongly sent event the chance to arrive, and fail if one does."""
        try:
            event = await self.receive(wait)
        except TimeoutError:
            return
        raise AssertionError(f"unexpected client event {event}")

    async def handshake(self) -> dict[str, Any]:
        """``session.created`` → ``session.update`` → ``session.updated``; returns the update."""
        await self.send("session.created", session={"type": "realtime", "id": "sess_1"})
        update = await self.expect("session.update")
        await self.send("session.updated", session=update["session"])
        return update

    async def audio(
        self, response_id: str, item_id: str, pcm: bytes, *, beta: bool = False
    ) -> None:
        import base64

        await self.send(
            "response.audio.delta" if beta else "response.output_audio.delta",
            response_id=response_id,
            item_id=item_id,
            output_index=0,
            content_index=0,
            delta=base64.b64encode(pcm).decode(),
        )


Scenario = Callable[[FakeConnection], Awaitable[None]]


class FakeRealtimeServer:
    def __init__(self) -> None:
        self.scenario: Scenario = _idle
        self.received: list[dict[str, Any]] = []
        self.requests: list[Request] = []
        self.refusals: list[int] = []  # HTTP statuses for the next handshakes, in order
        self.errors: list[BaseException] = []
        self._server: Server | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"ws://127.0.0.1:{port}/v1"

    def model(self, **kwargs: Any) -> OpenAIRealtime:
        kwargs.setdefault("api_key", API_KEY)
        kwargs.setdefault("retry_backoff", 0.01)
        return OpenAIRealtime("gpt-test", base_url=self.base_url, **kwargs)

    async def start(self) -> None:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._check)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.requests.append(request)
        if self.refusals:
            status = self.refusals.pop(0)
            response = connection.respond(HTTPStatus(status), "refused\n")
            response.headers["Retry-After"] = "0"
            return response
        if request.headers.get("Authorization") != f"Bearer {API_KEY}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided\n")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            await self.scenario(FakeConnection(ws, self))
            await ws.wait_closed()
        except ConnectionClosed:
            pass  # the client went away; the test itself checks what it saw
        except Exception as exc:  # a failed expectation: the fixture reports it
            self.errors.append(exc)


async def _idle(conn: FakeConnection) -> None:
    await conn.handshake()


@pytest.fixture
async def realtime_server() -> AsyncIterator[FakeRealtimeServer]:
    server = FakeRealtimeServer()
    await server.start()
    yield server
    await server.stop()
    assert not server.errors, f"the fake server's scenario failed: {server.errors!r}"


async def events_until(
    session: RealtimeSession, kind: str, *, count: int = 1, timeout: float = 5.0
) -> list[RealtimeEvent]:
    """Events from ``session`` up to and including the ``count``-th of type ``kind``."""
    events: list[RealtimeEvent] = []
    async with asyncio.timeout(timeout):
        async for event in session:
            events.append(event)
            if event.type == kind:
                count -= 1
                if count == 0:
                    break
    return events


@pytest.fixture
def until() -> Callable[..., Awaitable[list[RealtimeEvent]]]:
    return events_until
