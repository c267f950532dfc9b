"""The Stream calls this process's agents are on, by call id, for the demo link route."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from parley_getstream.connection import StreamConnection


class JoinedCalls:
    """Open `StreamConnection`s by call id (the latest join wins)."""

    def __init__(self) -> None:
        self._by_call: dict[str, StreamConnection] = {}

    def add(self, connection: StreamConnection) -> None:
        self._by_call[connection.call.call_id] = connection

    def remove(self, connection: StreamConnection) -> None:
        if self._by_call.get(connection.call.call_id) is connection:
            del self._by_call[connection.call.call_id]

    def get(self, call_id: str) -> StreamConnection | None:
        return self._by_call.get(call_id)


joined_calls = JoinedCalls()
