"""Session store contract: what the session registry needs from a shared database.

Key/value with expiry, atomic counters, bounded member sets for limits, and publish/subscribe.
Keys and channels are plain strings that implementations treat literally: a key is never a
pattern, so a call id holding ``*``, ``?`` or ``[`` can only ever name itself.

Every operation is atomic on its own. Times are seconds (floats). An implementation that
cannot reach its database raises `StoreUnavailable` from any operation except `ping`.

Implementations: ``parley.stores.memory.MemoryStore`` (one process; the single-node default)
and the ``redis`` store plugin (``pip install parley-redis``) for many nodes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager


class StoreUnavailable(Exception):
    """The store cannot be reached; callers degrade and retry later."""


class SessionStore(ABC):
    """A shared key/value store with expiry, member sets and publish/subscribe."""

    # -- plain keys -------------------------------------------------------------------------

    @abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value at ``key``, or None when it is missing or expired."""

    @abstractmethod
    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """The values at ``keys``, in order (None where missing), read in one round trip."""

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value``; with ``ttl`` it expires that many seconds from now, else never."""

    @abstractmethod
    async def delete(self, key: str) -> bool:
        """Remove ``key`` (a value, counter or member set); True if it existed."""

    @abstractmethod
    async def expire(self, key: str, ttl: float) -> bool:
        """Make ``key`` expire ``ttl`` seconds from now; False if it does not exist."""

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to the integer at ``key`` (missing counts as 0) and return it.

        With ``ttl`` the counter then expires that many seconds from now.
        """

    @abstractmethod
    async def keys(self, prefix: str) -> list[str]:
        """Every live key starting with ``prefix`` (taken literally), in no particular order."""

    # -- member sets: bounded sets whose members expire one by one ----------------------------

    @abstractmethod
    async def add_member(self, key: str, member: str, ttl: float, limit: int | None = None) -> bool:
        """Atomically: drop expired members, then add ``member`` to expire ``ttl`` from now.

        A member already present is refreshed and True is returned whatever the limit. A new
        member is refused (False) when the set already holds ``limit`` live members. This is
        what makes a per-call session limit exact across nodes. The set itself lives as long
        as its longest-lived member.
        """

    @abstractmethod
    async def refresh_member(self, key: str, member: str, ttl: float) -> bool:
        """Make a live ``member`` expire ``ttl`` from now; False (and no change) if absent."""

    @abstractmethod
    async def remove_member(self, key: str, member: str) -> bool:
        """Remove ``member``; True if it was there."""

    @abstractmethod
    async def members(self, key: str) -> list[str]:
        """The live members of the set at ``key`` (empty if none), in no particular order."""

    # -- publish/subscribe --------------------------------------------------------------------

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None:
        """Send ``message`` to every current subscriber of ``channel`` (fire and forget)."""

    @abstractmethod
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """Subscribe to ``channel``: ``async with store.subscribe(ch) as messages``.

        The subscription is active once the ``async with`` body starts (entering raises
        `StoreUnavailable` if it cannot be made). An implementation over a network keeps the
        subscription across reconnects; messages published while disconnected are lost, so
        callers that must not miss a message also leave a durable marker.
        """

    # -- lifecycle ----------------------------------------------------------------------------

    @abstractmethod
    async def ping(self) -> bool:
        """True if the store answers now; False (never an exception) if it cannot be reached."""

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
