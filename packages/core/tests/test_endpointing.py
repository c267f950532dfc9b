"""Endpointing on its own: when the user's turn is committed or given up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from parley.chat import ChatContext
from parley.endpointing import Endpointing
from parley.policy import TurnOptions
from parley.turn import TurnDetector

LONG = 60.0  # seconds; never elapses during a test


class Host:
    def __init__(self) -> None:
        self.chat_ctx = ChatContext()
        self.errors: list[str] = []

    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None:
        self.errors.append(source)


class Detector(TurnDetector):
    def __init__(self, probability: float | Exception) -> None:
        self.probability = probability
        self.asked: list[str] = []

    async def end_of_turn_probability(self, ctx: ChatContext) -> float:
        self.asked.append(ctx.messages[-1].content)
        if isinstance(self.probability, Exception):
            raise self.probability
        return self.probability


async def until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.002)


def make(
    options: TurnOptions, detector: TurnDetector | None = None
) -> tuple[Endpointing, list[str], Host]:
    decisions: list[str] = []
    host = Host()
    endpointing = Endpointing(
        host,  # type: ignore[arg-type]
        options,
        detector,
        commit=lambda: decisions.append("commit"),
        give_up=lambda: decisions.append("give up"),
    )
    return endpointing, decisions, host


def due_in(endpointing: Endpointing) -> float:
    deadline = endpointing.deadline
    assert deadline is not None
    return deadline - asyncio.get_running_loop().time()


async def test_a_transcript_is_committed_after_the_minimum_delay() -> None:
    endpointing, decisions, _ = make(TurnOptions(min_endpointing_delay=0.01))
    endpointing.schedule("hello", awaiting_transcript=False)
    await until(lambda: decisions)
    assert decisions == ["commit"] and not endpointing.waiting


async def test_speech_without_a_transcript_is_given_up_after_the_timeout() -> None:
    endpointing, decisions, _ = make(TurnOptions(final_transcript_timeout=0.01))
    endpointing.schedule("", awaiting_transcript=True)
    await until(lambda: decisions)
    assert decisions == ["give up"]


async def test_nothing_to_wait_for_schedules_nothing() -> None:
    endpointing, _, _ = make(TurnOptions())
    endpointing.schedule("", awaiting_transcript=False)
    assert not endpointing.waiting


async def test_new_speech_cancels_the_pending_commit() -> None:
    endpointing, decisions, _ = make(TurnOptions(min_endpointing_delay=0.01))
    endpointing.schedule("hello", awaiting_transcript=False)
    endpointing.cancel()
    await asyncio.sleep(0.05)  # well past the delay: a commit would have fired
    assert decisions == [] and not endpointing.waiting


async def test_a_likely_end_of_turn_waits_the_minimum_an_unlikely_one_the_maximum() -> None:
    options = TurnOptions(min_endpointing_delay=1.0, max_endpointing_delay=LONG)
    likely = Detector(0.9)
    endpointing, _, _ = make(options, likely)
    endpointing.schedule("what is the weather", awaiting_transcript=False)
    await until(lambda: endpointing.deadline is not None)
    assert likely.asked == ["what is the weather"] and due_in(endpointing) <= 1.0
    endpointing.cancel()

    unlikely = Detector(0.1)
    endpointing, _, _ = make(options, unlikely)
    endpointing.schedule("what is the", awaiting_transcript=False)
    await until(lambda: endpointing.deadline is not None)
    assert due_in(endpointing) > 1.0
    endpointing.cancel()


async def test_a_failing_detector_is_reported_and_the_turn_ends_normally() -> None:
    detector = Detector(RuntimeError("model crashed"))
    endpointing, decisions, host = make(TurnOptions(min_endpointing_delay=0.01), detector)
    endpointing.schedule("hello", awaiting_transcript=False)
    await until(lambda: decisions)
    assert decisions == ["commit"] and host.errors == ["turn"]
