"""A Redis outage: kill redis-server mid-test, then restart it on the same port.

These tests always run their own redis-server (REDIS_URL cannot be killed); without the
binary they skip, or fail when CI=true.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from parley.registry import SessionRegistry
from parley.store import StoreUnavailable
from parley_redis.store import RedisStore
from parley_redis.testing import RedisServer, shared_stores, temporary_store


async def publish_until_heard(store: RedisStore, messages: AsyncIterator[bytes]) -> bytes:
    """Publish on ``ch`` until the subscription hears it: resubscribing takes a moment after
    a restart, and what was published before that is lost."""
    receive = asyncio.ensure_future(anext(messages))
    try:
        async with asyncio.timeout(30):
            while not receive.done():
                with suppress(StoreUnavailable):
                    await store.publish("ch", b"after")
                await asyncio.wait({receive}, timeout=0.2)
        return receive.result()
    finally:
        receive.cancel()


def losses_logged(caplog: pytest.LogCaptureFixture, store: RedisStore) -> list[str]:
    """The warnings the store logged about losing its subscription to ``ch``."""
    channel = store.prefix + "ch"
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "parley.redis"
        and record.levelno == logging.WARNING
        and channel in record.getMessage()
    ]


@pytest.mark.parametrize("outage", ["noticed", "brief"])
async def test_a_subscription_survives_a_restart_and_says_so(
    server: RedisServer, caplog: pytest.LogCaptureFixture, outage: str
) -> None:
    """Whether the outage is seen by a command ("noticed") or only by the subscription's own
    connection (a "brief" restart, which newer redis-py heal inside ``get_message``), the
    subscription delivers again afterwards and the loss is logged as a warning."""
    caplog.set_level(logging.INFO, logger="parley.redis")
    async with temporary_store(server.url) as store, store.subscribe("ch") as messages:
        await store.publish("ch", b"before")
        assert await anext(messages) == b"before"
        assert losses_logged(caplog, store) == []
        server.kill()
        if outage == "noticed":
            with pytest.raises(StoreUnavailable):
                await store.publish("ch", b"lost")
        server.start()
        assert await publish_until_heard(store, messages) == b"after"
        assert len(losses_logged(caplog, store)) >= 1


class Closes:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self.arrived = asyncio.Event()

    async def __call__(self, call_id: str, session_id: str) -> None:
        self.calls.append((call_id, session_id))
        self.arrived.set()


async def test_registry_degrades_during_an_outage_and_recovers(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    closes = Closes()
    async with shared_stores(server.url) as new_store:
        a = SessionRegistry(
            new_store(), "node-a", ttl=5, auto_heartbeat=False, on_close_requested=closes
        )
        b = SessionRegistry(new_store(), "node-b", ttl=5, auto_heartbeat=False)
        async with a, b:
            for session_id in ("s0", "s1"):
                assert await a.reserve("call", session_id, limit=2) is True
                await a.register("call", session_id, state="running")
            assert await b.request_close("call", "s0") is True
            async with asyncio.timeout(10):
                await closes.arrived.wait()

            server.kill()
            with pytest.raises(StoreUnavailable):
                await a.store.get("anything")
            with pytest.raises(StoreUnavailable):
                await b.reserve("call", "s2", limit=2)
            with pytest.raises(StoreUnavailable):
                await b.request_close("call", "s1")
            assert b.healthy is False
            assert await a.heartbeat() is False  # logged, never raised
            assert a.healthy is False
            assert await a.store.ping() is False
            assert "cannot reach its store" in caplog.text
            # Running sessions are untouched: still known locally, nobody asked to close them.
            assert sorted(r.session_id for r in a.local_sessions()) == ["s0", "s1"]
            assert closes.calls == [("call", "s0")]

            server.start()  # same port, empty: it kept nothing
            assert await a.heartbeat() is True
            assert await b.heartbeat() is True
            assert (a.healthy, b.healthy) == (True, True)
            assert "reachable again" in caplog.text
            assert sorted(r.session_id for r in await b.list_sessions("call")) == ["s0", "s1"]
            assert await b.reserve("call", "s2", limit=2) is False  # the slots are held again

            # Publish/subscribe resumes: node A never heartbeats from here on, so only a
            # published message can reach its callback.
            async with asyncio.timeout(20):
                while ("call", "s1") not in closes.calls:
                    assert await b.request_close("call", "s1") is True
                    await asyncio.sleep(0.2)
            assert closes.calls == [("call", "s0"), ("call", "s1")]
