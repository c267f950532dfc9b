"""The barge-in state machine on its own: a fake target records what it was told to do."""

from __future__ import annotations

import asyncio

from parley.barge_in import BargeIn
from parley.policy import InterruptionOptions

LONG = 60.0  # seconds; a timer this long never fires during a test


class Target:
    def __init__(self, pending_words: int = 0) -> None:
        self.calls: list[str] = []
        self.words = pending_words

    def pause_speech(self) -> None:
        self.calls.append("pause")

    def resume_speech(self) -> None:
        self.calls.append("resume")

    def interrupt_for_user(self) -> None:
        self.calls.append("interrupt")

    def false_interruption(self, resume: bool) -> None:
        self.calls.append("false-resume" if resume else "false-stop")

    def pending_words(self) -> int:
        return self.words


async def until(predicate: object, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.002)


def machine(target: Target, **options: object) -> BargeIn:
    return BargeIn(InterruptionOptions(**options), target)  # type: ignore[arg-type]


async def test_speech_over_the_agent_pauses_it_and_enough_speech_confirms() -> None:
    target = Target()
    barge_in = machine(target, min_duration=0.5, false_interruption_timeout=LONG)
    barge_in.speech_started(agent_interruptible=True)
    assert target.calls == ["pause"] and barge_in.active
    barge_in.speech_stopped(0.6)
    assert target.calls == ["pause", "interrupt"] and not barge_in.active


async def test_the_duration_timer_confirms_while_the_user_still_speaks() -> None:
    target = Target()
    barge_in = machine(target, min_duration=0.05, false_interruption_timeout=LONG)
    barge_in.speech_started(agent_interruptible=True)
    await until(lambda: "interrupt" in target.calls)
    assert target.calls == ["pause", "interrupt"]


async def test_words_alone_confirm_either_condition_is_enough() -> None:
    target = Target()
    barge_in = machine(target, min_duration=LONG, min_words=2, false_interruption_timeout=LONG)
    barge_in.speech_started(agent_interruptible=True)
    barge_in.words(1)
    assert target.calls == ["pause"]
    barge_in.words(2)
    assert target.calls == ["pause", "interrupt"]


async def test_min_words_zero_means_no_word_condition() -> None:
    target = Target()
    barge_in = machine(target, min_duration=LONG, min_words=0, false_interruption_timeout=LONG)
    barge_in.speech_started(agent_interruptible=True)
    barge_in.words(5)
    assert target.calls == ["pause"] and barge_in.active


async def test_a_short_sound_is_a_false_interruption_and_the_agent_resumes() -> None:
    target = Target()
    barge_in = machine(target, min_duration=0.5, false_interruption_timeout=0.01)
    barge_in.speech_started(agent_interruptible=True)
    barge_in.speech_stopped(0.1)
    await until(lambda: len(target.calls) == 2)
    assert target.calls == ["pause", "false-resume"] and not barge_in.active


async def test_without_resume_a_false_interruption_stops_the_agent() -> None:
    target = Target()
    barge_in = machine(
        target, min_duration=0.5, false_interruption_timeout=0.01, resume_false_interruption=False
    )
    barge_in.speech_started(agent_interruptible=True)
    barge_in.speech_stopped(0.1)
    await until(lambda: len(target.calls) == 2)
    assert target.calls == ["pause", "false-stop"]


async def test_a_transcribed_turn_on_its_way_is_not_dismissed_and_its_commit_confirms() -> None:
    target = Target(pending_words=2)
    barge_in = machine(target, min_duration=0.5, false_interruption_timeout=LONG)
    barge_in.speech_started(agent_interruptible=True)
    barge_in.speech_stopped(0.1)
    barge_in.dismiss_if_quiet()
    assert target.calls == ["pause"] and barge_in.active
    barge_in.turn_committed()
    assert target.calls == ["pause", "interrupt"]


async def test_speaking_again_cancels_the_false_interruption_wait() -> None:
    target = Target()
    barge_in = machine(target, min_duration=0.5, false_interruption_timeout=LONG)
    barge_in.speech_started(agent_interruptible=True)
    barge_in.speech_stopped(0.1)
    barge_in.speech_started(agent_interruptible=True)
    barge_in.dismiss_if_quiet()  # the user speaks: nothing to dismiss
    assert target.calls == ["pause"] and barge_in.active


async def test_min_duration_zero_interrupts_at_onset() -> None:
    target = Target()
    barge_in = machine(target, min_duration=0)
    barge_in.speech_started(agent_interruptible=True)
    assert target.calls == ["pause", "interrupt"]


async def test_disabled_or_uninterruptible_speech_is_left_alone() -> None:
    target = Target()
    machine(target, enabled=False).speech_started(agent_interruptible=True)
    machine(target).speech_started(agent_interruptible=False)
    assert target.calls == []
