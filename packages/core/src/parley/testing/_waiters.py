"""Futures that tests await until some recorded state satisfies a condition.

Each waiter is a future created on the loop of the caller, so objects that outlive one test's
event loop (the in-memory edge's process-wide registry) never touch a dead loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Waiters(Generic[T]):
    """Callers wait for a value that `notify` offers; a waiter takes the first one it accepts."""

    def __init__(self) -> None:
        self._waiting: list[tuple[Callable[[T], bool], asyncio.Future[T]]] = []

    def __bool__(self) -> bool:
        return bool(self._waiting)

    async def wait(
        self,
        accept: Callable[[T], bool],
        timeout: float | None,
        what: str,
    ) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        entry = (accept, future)
        self._waiting.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}") from None
        finally:
            self._waiting.remove(entry)

    def notify(self, value: T) -> None:
        for accept, future in self._waiting:
            if not future.done() and not future.get_loop().is_closed() and accept(value):
                future.set_result(value)

    def fail(self, error: BaseException) -> None:
        """Wake every waiter with ``error`` (e.g. the connection closed)."""
        for _, future in self._waiting:
            if not future.done() and not future.get_loop().is_closed():
                future.set_exception(error)
