"""`Watchdog`: fires once when the clock runs out, never while resting, one timer at a time."""

from __future__ import annotations

import asyncio

from parley.testing import until
from parley.watchdog import Watchdog


async def test_fires_once_with_its_seconds_when_nothing_comes() -> None:
    fired: list[float] = []
    watchdog = Watchdog(fired.append)
    watchdog.watch(0.05)
    await until(lambda: fired)
    await asyncio.sleep(0.1)
    assert fired == [0.05]
    assert not watchdog.watching


async def test_each_watch_restarts_the_clock() -> None:
    fired: list[float] = []
    watchdog = Watchdog(fired.append)
    for _ in range(12):  # 12 x 0.05 s: past one bound, never one bound without a watch
        watchdog.watch(0.5)
        await asyncio.sleep(0.05)
    assert fired == []
    await until(lambda: fired)


async def test_a_resting_watchdog_never_fires() -> None:
    fired: list[float] = []
    watchdog = Watchdog(fired.append)
    watchdog.watch(0.03)
    watchdog.rest()
    await asyncio.sleep(0.1)
    assert fired == [] and not watchdog.watching


async def test_a_shorter_bound_fires_sooner_and_a_longer_one_re_arms() -> None:
    fired: list[float] = []
    watchdog = Watchdog(fired.append)
    watchdog.watch(30.0)
    watchdog.watch(0.03)  # shorter: the timer moves earlier
    await until(lambda: fired)
    assert fired == [0.03]
    watchdog.watch(0.03)
    watchdog.watch(0.5)  # longer: the early timer finds time left and re-arms
    await asyncio.sleep(0.06)
    assert fired == [0.03]
    await until(lambda: len(fired) == 2)
    assert fired == [0.03, 0.5]


async def test_on_stall_may_watch_again() -> None:
    fired: list[float] = []
    watchdog: Watchdog

    def again(seconds: float) -> None:
        fired.append(seconds)
        if len(fired) < 3:
            watchdog.watch(seconds)

    watchdog = Watchdog(again)
    watchdog.watch(0.02)
    await until(lambda: len(fired) == 3)
    assert not watchdog.watching


async def test_cancel_drops_the_timer() -> None:
    fired: list[float] = []
    watchdog = Watchdog(fired.append)
    watchdog.watch(0.02)
    watchdog.cancel()
    watchdog.watch(0.5)  # a new clock arms a new timer after cancel
    watchdog.cancel()
    await asyncio.sleep(0.05)
    assert fired == []
