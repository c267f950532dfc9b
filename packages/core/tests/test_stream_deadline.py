"""`StreamDeadline`: only the waits for a stream's next item count, one timer per stream."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import AsyncIterator

import pytest
from parley.speaking import StreamDeadline


async def items(count: int, *, then_stall: bool = False) -> AsyncIterator[int]:
    for number in range(count):
        yield number
    if then_stall:
        await asyncio.Event().wait()


async def test_a_slow_consumer_is_no_stall() -> None:
    # The consumer holds each item three times the bound (a playout blocked on its buffer);
    # the stream itself answers at once, so nothing times out.
    got: list[int] = []
    async with asyncio.timeout(30), StreamDeadline() as deadline:
        iterator = aiter(items(4))
        while True:
            try:
                got.append(await deadline.next(iterator, 0.05, "silent"))
            except StopAsyncIteration:
                break
            await asyncio.sleep(0.15)
    assert got == [0, 1, 2, 3]


async def drain(stream: AsyncIterator[int], got: list[int], first: float, then: float) -> None:
    async with asyncio.timeout(30), StreamDeadline() as deadline:
        iterator = aiter(stream)
        got.append(await deadline.next(iterator, first, "TTS X produced no audio"))
        while True:
            got.append(await deadline.next(iterator, then, "TTS X stalled: no audio"))


async def test_a_stream_that_stops_mid_way_times_out_with_the_message() -> None:
    got: list[int] = []
    with pytest.raises(TimeoutError, match=r"^TTS X stalled: no audio for 0\.1 s$"):
        await drain(items(3, then_stall=True), got, 5.0, 0.1)
    assert got == [0, 1, 2]


async def test_the_providers_own_timeout_passes_unchanged() -> None:
    async def own_timeout() -> AsyncIterator[int]:
        yield 1
        raise TimeoutError("the SDK's read timeout")

    got: list[int] = []
    with pytest.raises(TimeoutError, match=r"^the SDK's read timeout$"):
        await drain(own_timeout(), got, 5.0, 5.0)
    assert got == [1]


async def test_an_outer_cancellation_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def consume() -> None:
        async with StreamDeadline() as deadline:
            iterator = aiter(items(1, then_stall=True))
            await deadline.next(iterator, 5.0, "silent")
            started.set()
            await deadline.next(iterator, 5.0, "silent")

    task = asyncio.ensure_future(consume())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_finished_deadline_is_freed_without_the_cycle_collector() -> None:
    # One per LLM stream and TTS piece: a reference cycle left behind would feed the cycle
    # collector, whose full passes stall every call of the process.
    gc.disable()
    try:
        deadline = StreamDeadline()
        async with deadline:
            await deadline.next(aiter(items(1)), 1.0, "silent")
        freed = weakref.ref(deadline)
        del deadline
        assert freed() is None
    finally:
        gc.enable()
