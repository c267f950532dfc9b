"""`until`: wait in a test for state that no event announces.

```python
await until(lambda: len(stt.streams) == 2)                    # a condition
record = await until(lambda: registry.get("call", "s1"))      # an async one; its value
await until(check_metrics, what="the turn's metrics")         # asserts until they hold
```

The deadline only catches a hang: it is generous (30 s) because a loaded CI machine is slow,
and a test never waits longer than its condition takes.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["until"]

T = TypeVar("T")


async def until(
    predicate: Callable[[], T | Awaitable[T]],
    timeout: float = 30.0,
    *,
    what: str = "",
    interval: float = 0.01,
) -> T:
    """Call ``predicate`` (sync or async) every ``interval`` seconds until it returns something
    truthy, and return that. An `AssertionError` it raises counts as "not yet".

    After ``timeout`` seconds raises `AssertionError` naming ``what`` (else the predicate) and,
    when the predicate asserted, its last assertion.
    """
    last: AssertionError | None = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    value = predicate()
                    if inspect.isawaitable(value):
                        value = await value
                    if value:
                        return value
                except AssertionError as exc:
                    last = exc
                await asyncio.sleep(interval)
    except TimeoutError:
        subject = what or getattr(predicate, "__qualname__", repr(predicate))
        detail = f"; last: {last}" if last is not None else ""
        raise AssertionError(f"waited {timeout:g} s for {subject}{detail}") from last
