"""Assert that code under test leaves no asyncio task running once it has closed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


def _describe(task: asyncio.Task[object]) -> str:
    return f"{task.get_name()} ({task.get_coro()!r})"


@asynccontextmanager
async def no_leaked_tasks(grace: float = 1.0) -> AsyncIterator[None]:
    """Fail if a task started inside the block is still running after it.

    Tasks that are finishing (cancelled, or running their last callbacks) get a few loop
    iterations, then up to ``grace`` seconds, before they count as leaked.
    """
    before = asyncio.all_tasks()
    yield
    current = asyncio.current_task()

    def leaked() -> list[asyncio.Task[object]]:
        return [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]

    for _ in range(20):
        if not leaked():
            return
        await asyncio.sleep(0)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + grace
    while (running := leaked()) and (left := deadline - loop.time()) > 0:
        await asyncio.wait(running, timeout=left)
    if running:
        names = "; ".join(_describe(t) for t in running)
        raise AssertionError(f"{len(running)} task(s) still running after close: {names}")
