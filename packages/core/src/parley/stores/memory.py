"""An in-process `SessionStore`: the single-node default.

Everything lives in dicts on one event loop, so each operation is atomic simply because it
never awaits halfway. Expired entries are dropped when touched and swept by `keys`.
Publish/subscribe delivers to in-process subscribers only. Several registries sharing one
`MemoryStore` behave like several nodes sharing one database, which is how tests use it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from parley.store import SessionStore


@dataclass
class _Entry:
    value: bytes | dict[str, float]  # a plain value, or a member set (member -> expiry)
    expires_at: float | None


class MemoryStore(SessionStore):
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}
        self._subscribers: dict[str, set[asyncio.Queue[bytes]]] = {}

    def clear(self) -> None:
        """Drop every key, as a store restarted without persistence would (subscribers stay)."""
        self._entries.clear()

    # -- plain keys -------------------------------------------------------------------------

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at is not None and entry.expires_at <= time.monotonic():
            del self._entries[key]
            return None
        return entry

    def _value(self, key: str) -> bytes | None:
        entry = self._live(key)
        if entry is None:
            return None
        if not isinstance(entry.value, bytes):
            raise TypeError(f"key {key!r} holds a member set, not a value")
        return entry.value

    async def get(self, key: str) -> bytes | None:
        return self._value(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [self._value(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._entries[key] = _Entry(bytes(value), _deadline(ttl))

    async def delete(self, key: str) -> bool:
        existed = self._live(key) is not None
        self._entries.pop(key, None)
        return existed

    async def expire(self, key: str, ttl: float) -> bool:
        entry = self._live(key)
        if entry is None:
            return False
        entry.expires_at = _deadline(ttl)
        return True

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        entry = self._live(key)
        current = 0 if entry is None else int(self._value(key) or b"0")
        value = current + amount
        expires_at = _deadline(ttl) if ttl is not None else (entry.expires_at if entry else None)
        self._entries[key] = _Entry(str(value).encode(), expires_at)
        return value

    async def keys(self, prefix: str) -> list[str]:
        # Checking every key also sweeps expired entries that nothing else would touch again.
        return [key for key in list(self._entries) if self._live(key) and key.startswith(prefix)]

    # -- member sets --------------------------------------------------------------------------

    def _members(self, key: str) -> dict[str, float] | None:
        entry = self._live(key)
        if entry is None:
            return None
        if not isinstance(entry.value, dict):
            raise TypeError(f"key {key!r} holds a value, not a member set")
        now = time.monotonic()
        for member in [m for m, expiry in entry.value.items() if expiry <= now]:
            del entry.value[member]
        if not entry.value:
            del self._entries[key]
            return None
        return entry.value

    def _put_member(self, key: str, member: str, ttl: float) -> None:
        members = self._members(key)
        if members is None:
            members = {}
            self._entries[key] = _Entry(members, None)
        members[member] = time.monotonic() + ttl
        self._entries[key].expires_at = max(members.values())

    async def add_member(self, key: str, member: str, ttl: float, limit: int | None = None) -> bool:
        members = self._members(key) or {}
        if member not in members and limit is not None and len(members) >= limit:
            return False
        self._put_member(key, member, ttl)
        return True

    async def refresh_member(self, key: str, member: str, ttl: float) -> bool:
        if member not in (self._members(key) or {}):
            return False
        self._put_member(key, member, ttl)
        return True

    async def remove_member(self, key: str, member: str) -> bool:
        members = self._members(key)
        if members is None or member not in members:
            return False
        del members[member]
        if not members:
            del self._entries[key]
        return True

    async def members(self, key: str) -> list[str]:
        return list(self._members(key) or {})

    # -- publish/subscribe --------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> None:
        for queue in self._subscribers.get(channel, ()):
            queue.put_nowait(bytes(message))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._subscribers.setdefault(channel, set()).add(queue)
        messages = _drain(queue)
        try:
            yield messages
        finally:
            await messages.aclose()
            subscribers = self._subscribers.get(channel)
            if subscribers is not None:
                subscribers.discard(queue)
                if not subscribers:
                    del self._subscribers[channel]

    async def ping(self) -> bool:
        return True


async def _drain(queue: asyncio.Queue[bytes]) -> AsyncGenerator[bytes, None]:
    while True:
        yield await queue.get()


def _deadline(ttl: float | None) -> float | None:
    return None if ttl is None else time.monotonic() + ttl
