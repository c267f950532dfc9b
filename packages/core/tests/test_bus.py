"""The control-event bus: delivery, isolation of failing handlers, closing."""

import asyncio
import logging
from dataclasses import dataclass

import pytest
from parley.bus import EventBus


@dataclass
class Event:
    text: str = ""


@dataclass
class Transcript(Event):
    final: bool = False


@dataclass
class Other:
    pass


async def test_sync_and_async_handlers_receive_events() -> None:
    bus = EventBus()
    seen: list[str] = []

    @bus.on(Event)
    def sync_handler(event: Event) -> None:
        seen.append(f"sync:{event.text}")

    @bus.on(Event)
    async def async_handler(event: Event) -> None:
        await asyncio.sleep(0)
        seen.append(f"async:{event.text}")

    bus.emit(Event("hi"))
    assert seen == ["sync:hi"]  # sync handlers run during emit, coroutines are scheduled
    await bus.drain()
    assert seen == ["sync:hi", "async:hi"]


async def test_subclass_events_reach_base_class_handlers() -> None:
    bus = EventBus()
    seen: list[tuple[str, object]] = []
    bus.subscribe(lambda e: seen.append(("base", e)), Event)
    bus.subscribe(lambda e: seen.append(("sub", e)), Transcript)
    bus.subscribe(lambda e: seen.append(("any", e)))

    transcript = Transcript("hello", final=True)
    bus.emit(transcript)
    bus.emit(Event("plain"))
    bus.emit(Other())
    assert seen == [
        ("sub", transcript),
        ("base", transcript),
        ("any", transcript),
        ("base", Event("plain")),
        ("any", Event("plain")),
        ("any", Other()),
    ]


def test_has_subscribers() -> None:
    bus = EventBus()
    assert not bus.has_subscribers(Event)
    bus.subscribe(lambda e: None, Event)
    assert bus.has_subscribers(Transcript)
    assert not bus.has_subscribers(Other)
    bus.subscribe(lambda e: None)
    assert bus.has_subscribers(Other)


async def test_a_failing_handler_is_logged_and_the_others_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[str] = []

    @bus.on(Event)
    def broken(event: Event) -> None:
        raise RuntimeError("sync boom")

    @bus.on(Event)
    async def broken_async(event: Event) -> None:
        raise RuntimeError("async boom")

    @bus.on(Event)
    def works(event: Event) -> None:
        seen.append(event.text)

    @bus.on(Event)
    async def works_async(event: Event) -> None:
        seen.append(f"async {event.text}")

    with caplog.at_level(logging.ERROR, logger="parley.events"):
        bus.emit(Event("one"))  # the emitter never sees the errors
        await bus.drain()
        bus.emit(Event("two"))
        await bus.drain()
    assert seen == ["one", "async one", "two", "async two"]
    messages = [r.getMessage() for r in caplog.records]
    assert sum("broken" in m for m in messages) == 4
    assert {str(r.exc_info[1]) for r in caplog.records if r.exc_info} == {"sync boom", "async boom"}


def test_unsubscribe() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append, Event)
    bus.emit(Event("a"))
    bus.unsubscribe(seen.append)
    bus.emit(Event("b"))
    assert seen == [Event("a")]


def test_a_handler_that_unsubscribes_itself_does_not_skip_the_next() -> None:
    bus = EventBus()
    seen: list[str] = []

    def once(event: Event) -> None:
        seen.append("once")
        bus.unsubscribe(once)

    bus.subscribe(once, Event)
    bus.subscribe(lambda e: seen.append("always"), Event)
    bus.emit(Event())
    bus.emit(Event())
    assert seen == ["once", "always", "always"]


async def test_aclose_waits_for_running_handlers() -> None:
    bus = EventBus()
    finished: list[str] = []
    go = asyncio.Event()

    @bus.on(Event)
    async def slow(event: Event) -> None:
        await go.wait()
        finished.append(event.text)

    bus.emit(Event("a"))
    bus.emit(Event("b"))
    closing = asyncio.create_task(bus.aclose(timeout=30))
    await asyncio.sleep(0)
    assert not closing.done()
    go.set()
    await closing
    assert sorted(finished) == ["a", "b"]


async def test_aclose_cancels_handlers_that_outlive_the_timeout() -> None:
    bus = EventBus()
    cancelled: list[str] = []
    never = asyncio.Event()

    @bus.on(Event)
    async def stuck(event: Event) -> None:
        try:
            await never.wait()
        except asyncio.CancelledError:
            cancelled.append(event.text)
            raise

    bus.emit(Event("x"))
    await asyncio.sleep(0)
    await bus.aclose(timeout=0.01)
    assert cancelled == ["x"]


async def test_no_handlers_run_after_close() -> None:
    bus = EventBus()
    seen: list[Event] = []
    bus.subscribe(seen.append, Event)

    @bus.on(Event)
    async def later(event: Event) -> None:
        seen.append(event)

    await bus.aclose()
    bus.emit(Event("late"))
    await asyncio.sleep(0)
    await bus.drain()
    assert seen == []
    await bus.aclose()  # closing twice is harmless


def test_async_handler_without_a_running_loop_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = EventBus()
    seen: list[str] = []

    @bus.on(Event)
    async def needs_loop(event: Event) -> None:
        seen.append("async")

    bus.subscribe(lambda e: seen.append("sync"), Event)
    with caplog.at_level(logging.ERROR, logger="parley.events"):
        bus.emit(Event())
    assert seen == ["sync"]
    assert any("needs a running event loop" in r.getMessage() for r in caplog.records)
