"""`Watchdog`: notices that something owed has not come for too long (a provider stall).

One timer serves a whole stream. ``watch(seconds)`` (re)starts the clock and only records the
time; the timer is re-armed when it fires early, never per call, because a timer per token or
audio frame would cost more than the token (~8 µs each, a fifth of a turn's overhead).
``rest()`` stops the clock without touching the timer: a rested watchdog never fires.

    watchdog = Watchdog(on_stall)        # on_stall(seconds) runs on the event loop
    watchdog.watch(10.0)                 # expect the next item within 10 s
    ...; watchdog.watch(10.0)            # it came: 10 s more for the following one
    watchdog.rest()                      # nothing owed now
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Watchdog:
    def __init__(self, on_stall: Callable[[float], None]) -> None:
        self._on_stall = on_stall
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        self._due = 0.0
        self._since: float | None = None  # when the clock last (re)started; None: resting
        self._seconds = 0.0

    @property
    def watching(self) -> bool:
        return self._since is not None

    def watch(self, seconds: float) -> None:
        """(Re)start the clock: ``on_stall(seconds)`` runs if ``seconds`` pass before the next
        `watch` or `rest`."""
        since = self._since = self._loop.time()
        self._seconds = seconds
        due = since + seconds
        if self._timer is None or due < self._due:
            self._arm(due)

    def rest(self) -> None:
        self._since = None

    def cancel(self) -> None:
        self._since = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._due = due
        self._timer = self._loop.call_at(due, self._check)

    def _check(self) -> None:
        self._timer = None
        since = self._since
        if since is None:
            return  # resting: the next `watch` arms the timer again
        if self._loop.time() - since >= self._seconds:
            self._since = None
            self._on_stall(self._seconds)
        else:
            self._arm(since + self._seconds)
