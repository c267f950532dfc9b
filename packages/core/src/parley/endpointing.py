"""Endpointing: after the user goes quiet, when is their turn over?

With a transcript in hand the turn is committed after `TurnOptions.min_endpointing_delay`; a
turn detector that finds the end of turn unlikely stretches the wait to
``max_endpointing_delay``. Speech without a transcript yet waits up to
``final_transcript_timeout`` for one, then gives the turn up.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from parley.host import RunnerHost
from parley.policy import TurnOptions
from parley.turn import TurnDetector


class Endpointing:
    def __init__(
        self,
        host: RunnerHost,
        options: TurnOptions,
        detector: TurnDetector | None,
        *,
        commit: Callable[[], None],
        give_up: Callable[[], None],
    ) -> None:
        self.host = host
        self.options = options
        self.detector = detector
        self._commit = commit
        self._give_up = give_up
        self._timer: asyncio.TimerHandle | None = None
        self._detector_task: asyncio.Task[None] | None = None

    @property
    def deadline(self) -> float | None:
        """Event-loop time at which the pending decision (commit or give-up) is due."""
        return self._timer.when() if self._timer is not None else None

    @property
    def waiting(self) -> bool:
        """A decision is pending (a timer, or the turn detector is being asked)."""
        return self._timer is not None or self._detector_task is not None

    def schedule(self, pending_text: str, awaiting_transcript: bool) -> None:
        """The user went quiet with ``pending_text`` transcribed so far (maybe empty);
        ``awaiting_transcript``: they spoke and no transcript has come yet."""
        self.cancel()
        loop = asyncio.get_running_loop()
        if not pending_text:
            if awaiting_transcript:
                self._timer = loop.call_later(
                    self.options.final_transcript_timeout, self._fire_give_up
                )
            return
        if self.detector is None:
            self._timer = loop.call_later(self.options.min_endpointing_delay, self._fire_commit)
            return
        self._detector_task = asyncio.create_task(self._ask_detector(self.detector, pending_text))

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._detector_task is not None and not self._detector_task.done():
            self._detector_task.cancel()
        self._detector_task = None

    def _fire_commit(self) -> None:
        self._timer = None
        self._commit()

    def _fire_give_up(self) -> None:
        self._timer = None
        self._give_up()

    async def _ask_detector(self, detector: TurnDetector, pending_text: str) -> None:
        started = time.perf_counter()
        ctx = self.host.chat_ctx.copy()
        ctx.add("user", pending_text)
        try:
            probability = await detector.end_of_turn_probability(ctx)
        except Exception as exc:
            self.host.report_error("turn", exc, True)
            probability = 1.0
        delay = (
            self.options.min_endpointing_delay
            if probability >= detector.threshold
            else self.options.max_endpointing_delay
        )
        delay = max(0.0, delay - (time.perf_counter() - started))
        self._detector_task = None
        self._timer = asyncio.get_running_loop().call_later(delay, self._fire_commit)
