"""A small typed event bus for control events (never for media frames).

Subscribe with ``@bus.on(EventType)`` (or ``@bus.on()`` for every event). Handlers may be
plain functions or coroutines. A failing handler is logged and never breaks the others or the
emitter. Coroutine handlers run as tasks that the bus tracks; `aclose` waits for them.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

logger = logging.getLogger("parley.events")

E = TypeVar("E")
Handler = Callable[[Any], Awaitable[None] | None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = {}
        self._any: list[Handler] = []
        # Each event type's handlers in delivery order, worked out once per (un)subscription
        # (events are emitted far more often than handlers change).
        self._delivery: dict[type, tuple[Handler, ...]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def on(
        self, event_type: type[E] | None = None
    ) -> Callable[[Callable[[E], Any]], Callable[[E], Any]]:
        """Decorator subscribing a handler to ``event_type`` (and its subclasses) or to all."""

        def decorator(handler: Callable[[E], Any]) -> Callable[[E], Any]:
            self.subscribe(handler, event_type)
            return handler

        return decorator

    def subscribe(self, handler: Callable[[E], Any], event_type: type[E] | None = None) -> None:
        if event_type is None:
            self._any.append(handler)
        else:
            self._handlers.setdefault(event_type, []).append(handler)
        self._delivery.clear()

    def unsubscribe(self, handler: Callable[[Any], Any]) -> None:
        for handlers in (*self._handlers.values(), self._any):
            if handler in handlers:
                handlers.remove(handler)
        self._delivery.clear()

    def has_subscribers(self, event_type: type) -> bool:
        return bool(self._any) or any(issubclass(event_type, t) for t in self._handlers)

    def emit(self, event: object) -> None:
        """Deliver ``event`` now to sync handlers; schedule coroutine handlers."""
        if self._closed:
            return
        # A tuple: a handler that (un)subscribes while we deliver must not make us skip one.
        handlers = self._delivery.get(type(event))
        if handlers is None:
            handlers = self._delivery[type(event)] = self._handlers_for(type(event))
        for handler in handlers:
            self._call(handler, event)

    def _handlers_for(self, event_type: type) -> tuple[Handler, ...]:
        """Handlers of the type and its bases, most specific first, then those of every event."""
        found: list[Handler] = []
        for base in event_type.__mro__:
            found.extend(self._handlers.get(base, ()))
        return (*found, *self._any)

    def _call(self, handler: Handler, event: object) -> None:
        try:
            result = handler(event)
        except Exception:
            logger.exception("event handler %r failed on %r", handler, event)
            return
        if result is not None and inspect.isawaitable(result):
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                if inspect.iscoroutine(result):
                    result.close()  # never awaited: close it rather than leak a warning
                logger.error(
                    "async event handler %r needs a running event loop; %r was emitted outside "
                    "one and the handler did not run",
                    handler,
                    event,
                )
                return
            task = asyncio.ensure_future(self._guard(handler, event, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _guard(handler: Handler, event: object, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("event handler %r failed on %r", handler, event)

    async def drain(self) -> None:
        """Wait until every running handler task has finished."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def aclose(self, timeout: float = 5.0) -> None:
        """Stop accepting events, let running handlers finish (cancel them after ``timeout``)."""
        self._closed = True
        if not self._tasks:
            return
        _, pending = await asyncio.wait(list(self._tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
