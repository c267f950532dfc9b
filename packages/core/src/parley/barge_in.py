"""Barge-in: when does user speech over the agent interrupt it?

One state machine for every runner. User speech while the agent speaks (interruptibly) makes a
*candidate*: the agent pauses at once. The candidate is confirmed, and the agent interrupted,
as soon as either condition of `InterruptionOptions` holds: the user has spoken
``min_duration`` seconds, or (when ``min_words`` > 0) the transcript has ``min_words`` words;
a committed user turn confirms it too. If the user goes quiet without either, the candidate
waits ``false_interruption_timeout`` seconds and is then dismissed as a false interruption (a
cough, "mm-hm"): the agent resumes, or stops when ``resume_false_interruption`` is off.

A turn spoken over the agent that holds only ``interruption_only_words`` ("stop", "wait",
"mm-hm") interrupts and is not answered: the runner asks `BargeIn.only_interrupts`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Protocol

from parley.policy import InterruptionOptions


class BargeInTarget(Protocol):
    """What the state machine acts on (a runner)."""

    def pause_speech(self) -> None: ...
    def resume_speech(self) -> None: ...
    def interrupt_for_user(self) -> None:
        """A confirmed interruption: stop the agent's speech."""

    def false_interruption(self, resume: bool) -> None:
        """The candidate was dismissed; resume the agent's speech or stop it."""

    def pending_words(self) -> int:
        """Words of a user turn transcribed and not yet committed."""


def _words(text: str) -> tuple[str, ...]:
    # "Mm-hmm." and "mm hmm" are the same; apostrophes stay inside words ("that's").
    return tuple(re.findall(r"[\w']+", text.lower().replace("-", " ")))


def only_phrases(text: str, phrases: Iterable[str]) -> bool:
    """Whether ``text`` is made only of ``phrases`` (each possibly repeated, in any order):
    "Stop, stop!" and "okay, wait" are, with "stop", "okay", "wait"; "" is not."""
    words = _words(text)
    known = {split for split in map(_words, phrases) if split}
    if not words or not known:
        return False
    # covered[i]: the first i words are a sequence of known phrases.
    covered = [True] + [False] * len(words)
    for end in range(1, len(words) + 1):
        covered[end] = any(
            covered[end - len(phrase)] and words[end - len(phrase) : end] == phrase
            for phrase in known
            if len(phrase) <= end
        )
    return covered[-1]


class BargeIn:
    def __init__(self, options: InterruptionOptions, target: BargeInTarget) -> None:
        self.options = options
        self.target = target
        self.user_speaking = False
        self._started: float | None = None  # loop time the candidate began; None: no candidate
        self._words = 0
        self._duration_timer: asyncio.TimerHandle | None = None
        self._false_timer: asyncio.TimerHandle | None = None

    @property
    def active(self) -> bool:
        """A candidate is pending: the agent is paused, neither confirmed nor dismissed."""
        return self._started is not None

    def speech_started(self, agent_interruptible: bool) -> None:
        """The user started speaking; ``agent_interruptible``: the agent speaks and may be cut."""
        self.user_speaking = True
        if not self.options.enabled or (not agent_interruptible and self._started is None):
            return
        loop = asyncio.get_running_loop()
        if self._started is None:
            self._started = loop.time()
            self._words = 0
            self.target.pause_speech()
        self._cancel(false=True)
        if self.options.min_duration <= 0:
            self.confirm()
        elif self._duration_timer is None:
            remaining = self.options.min_duration - (loop.time() - self._started)
            self._duration_timer = loop.call_later(max(0.0, remaining), self._duration_reached)

    def speech_stopped(self, speech_duration: float) -> None:
        """The user went quiet after ``speech_duration`` seconds of speech."""
        self.user_speaking = False
        if self._started is None:
            return
        self._cancel(duration=True)
        if speech_duration >= self.options.min_duration:
            self.confirm()
            return
        self._false_timer = asyncio.get_running_loop().call_later(
            self.options.false_interruption_timeout, self.dismiss_if_quiet
        )

    def words(self, count: int) -> None:
        """The user's transcript so far has ``count`` words."""
        if self._started is None:
            return
        self._words = max(self._words, count)
        if self.options.min_words > 0 and self._words >= self.options.min_words:
            self.confirm()

    def only_interrupts(self, text: str) -> bool:
        """Whether a user turn of ``text``, spoken over the agent, only asks it to stop (or
        acknowledges it): the turn then interrupts and is not answered."""
        return self.options.enabled and only_phrases(text, self.options.interruption_only_words)

    def turn_committed(self) -> None:
        if self._started is not None:
            self.confirm()

    def confirm(self) -> None:
        self.clear()
        self.target.interrupt_for_user()

    def dismiss_if_quiet(self) -> None:
        """Dismiss the candidate unless the user speaks or a real turn is on its way."""
        self._false_timer = None
        if self._started is None or self.user_speaking:
            return
        if self.target.pending_words() >= max(1, self.options.min_words):
            return  # a real turn is on its way; its commit confirms the interruption
        self.clear()
        self.target.false_interruption(self.options.resume_false_interruption)

    def clear(self) -> None:
        self._started = None
        self._words = 0
        self._cancel(duration=True, false=True)

    def _duration_reached(self) -> None:
        self._duration_timer = None
        if self._started is not None and self.user_speaking:
            self.confirm()

    def _cancel(self, *, duration: bool = False, false: bool = False) -> None:
        if duration and self._duration_timer is not None:
            self._duration_timer.cancel()
            self._duration_timer = None
        if false and self._false_timer is not None:
            self._false_timer.cancel()
            self._false_timer = None
