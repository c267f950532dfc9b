"""Session store contract: what the session registry needs from a shared database.

Key/value with expiry, atomic counters, bounded member sets for limits, and publish/subscribe.
Keys are plain strings; implementations must treat them literally (never as patterns).

SKELETON: the helper that owns this module may add operations the registry needs; every
operation must be atomic on its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager


class StoreUnavailable(Exception):
    """The store cannot be reached; callers degrade and retry later."""


class SessionStore(ABC):
    @abstractmethod
    async def get(self, key: str) -> bytes | None: ...

    @abstractmethod
    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None: ...

    @abstractmethod
    async def delete(self, key: str) -> bool: ...

    @abstractmethod
    async def expire(self, key: str, ttl: float) -> bool: ...

    @abstractmethod
    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int: ...

    @abstractmethod
    async def keys(self, prefix: str) -> list[str]:
        """Every live key starting with ``prefix`` (taken literally)."""

    @abstractmethod
    async def publish(self, channel: str, message: bytes) -> None: ...

    @abstractmethod
    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...

    @abstractmethod
    async def ping(self) -> bool: ...

    async def aclose(self) -> None: ...
