"""The calls this process hosts, by call id: how signaling finds the agent's connection.

Rooms are process-wide by default because a launcher builds a fresh `WebRTCEdge` for every
agent, while the signaling routes are mounted once on the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parley_webrtc.connection import WebRTCConnection


class CallTaken(RuntimeError):
    """An agent is already on this call in this process."""


class Rooms:
    def __init__(self) -> None:
        self._rooms: dict[str, WebRTCConnection] = {}
        self._waiters: dict[str, list[asyncio.Future[WebRTCConnection]]] = {}

    def add(self, room: WebRTCConnection) -> None:
        call_id = room.call.call_id
        if call_id in self._rooms:
            raise CallTaken(
                f"call {call_id!r} already has an agent in this process; "
                "leave it first or use another call id"
            )
        self._rooms[call_id] = room
        for waiter in self._waiters.pop(call_id, []):
            if not waiter.done():
                waiter.set_result(room)

    def remove(self, room: WebRTCConnection) -> None:
        if self._rooms.get(room.call.call_id) is room:
            del self._rooms[room.call.call_id]

    def get(self, call_id: str) -> WebRTCConnection | None:
        return self._rooms.get(call_id)

    async def wait_for(
        self,
        call_id: str,
        timeout: float,
    ) -> WebRTCConnection | None:
        """The room for ``call_id`` once an agent joins it, or None after ``timeout``."""
        if (room := self._rooms.get(call_id)) is not None:
            return room
        waiter: asyncio.Future[WebRTCConnection] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(call_id, []).append(waiter)
        try:
            return await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return None
        finally:
            waiters = self._waiters.get(call_id, [])
            if waiter in waiters:
                waiters.remove(waiter)
            if not waiters:
                self._waiters.pop(call_id, None)

    def __iter__(self) -> Iterator[WebRTCConnection]:
        return iter(list(self._rooms.values()))

    def __len__(self) -> int:
        return len(self._rooms)


default_rooms = Rooms()
