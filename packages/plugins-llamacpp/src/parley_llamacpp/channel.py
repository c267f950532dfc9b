"""A bounded hand-off from a worker thread to the event loop.

The worker blocks when the consumer falls behind (back-pressure) or, for a speculative
generation nobody reads yet, once ``maxsize`` items wait; never forever: it gives up as soon as
the consumer closes the channel or the loop goes away, so a generation whose reader stopped
listening ends within one token.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Generic, TypeVar

T = TypeVar("T")

_POLL_S = 0.05  # how often a blocked worker re-checks whether the reader left


class Channel(Generic[T]):
    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int = 64) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._slots = threading.Semaphore(maxsize)
        self._closed = threading.Event()

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def put(self, item: T) -> bool:
        """Send from the worker thread; False once the reader is gone (stop working then)."""
        while not self._slots.acquire(timeout=_POLL_S):
            if self._closed.is_set():
                return False
        if self._closed.is_set():
            return False
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:  # the event loop is closed: nobody will read
            self._closed.set()
            return False
        return True

    async def get(self) -> T:
        item = await self._queue.get()
        self._slots.release()
        return item

    def close(self) -> None:
        """Called by the reader when it stops listening; the worker notices promptly."""
        self._closed.set()
        self._slots.release()  # wakes a worker blocked in put() now, not at its next poll
