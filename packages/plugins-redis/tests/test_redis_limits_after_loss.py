"""The per-call limit holds through a real Redis that lost its data (FLUSHDB, or a restart of
a server that keeps nothing): the first re-claim wins and the other session is closed.

These tests run their own redis-server (FLUSHDB on a shared one would wipe others' keys);
without the binary they skip, or fail when CI=true.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.asyncio as aioredis
from parley.registry import SessionRegistry
from parley.store import SessionStore
from parley_redis.testing import RedisServer, shared_stores

CALL = "limited"


class Node:
    def __init__(self, store: SessionStore, node_id: str) -> None:
        self.closed: list[tuple[str, str]] = []
        self.close_requested = asyncio.Event()
        self.registry = SessionRegistry(
            store, node_id=node_id, auto_heartbeat=False, on_close_requested=self._close
        )

    async def _close(self, call_id: str, session_id: str) -> None:
        self.closed.append((call_id, session_id))
        await self.registry.release(call_id, session_id)
        self.close_requested.set()

    async def start_session(self, session_id: str) -> bool:
        if not await self.registry.reserve(CALL, session_id, limit=1):
            return False
        await self.registry.register(CALL, session_id, state="listening")
        return True


async def lose_data(server: RedisServer, loss: str) -> None:
    if loss == "flushdb":
        client = aioredis.Redis.from_url(server.url)
        try:
            await client.flushdb()
        finally:
            await client.aclose()
    else:
        server.kill()
        server.start()  # same port, empty: it keeps nothing


async def until_reachable(store: SessionStore) -> None:
    """After a restart the first command may meet a dead connection; wait for a good one."""
    async with asyncio.timeout(30):
        while not await store.ping():
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("loss", ["flushdb", "restart"])
async def test_two_sessions_on_a_full_call_after_redis_loses_its_data(
    server: RedisServer, caplog: pytest.LogCaptureFixture, loss: str
) -> None:
    async with shared_stores(server.url) as new_store:
        a, b = Node(new_store(), "node-a"), Node(new_store(), "node-b")
        checker = new_store()
        await a.registry.start()
        await b.registry.start()
        try:
            assert await a.start_session("sess-a")
            assert not await b.start_session("sess-b")  # the limit holds before the loss

            await lose_data(server, loss)
            await until_reachable(b.registry.store)
            assert await checker.keys("") == []  # the slot is really gone
            assert await b.start_session("sess-b")  # admitted: Redis forgot sess-a's slot

            caplog.set_level(logging.WARNING, logger="parley.registry")
            assert await b.registry.heartbeat()
            await until_reachable(a.registry.store)
            assert await a.registry.heartbeat()  # sess-a cannot re-claim: sess-b holds it
            await asyncio.wait_for(a.close_requested.wait(), timeout=10)

            assert a.closed == [(CALL, "sess-a")] and b.closed == []
            assert [r.session_id for r in await a.registry.list_sessions(CALL)] == ["sess-b"]
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("closing session sess-a" in w and "slot was lost" in w for w in warnings)

            # later heartbeats leave the survivor alone
            assert await a.registry.heartbeat() and await b.registry.heartbeat()
            assert b.closed == []
            assert [r.session_id for r in await b.registry.list_sessions(CALL)] == ["sess-b"]

            await b.registry.release(CALL, "sess-b")
        finally:
            await a.registry.stop()
            await b.registry.stop()
        assert await checker.keys("") == []  # nothing of this test is left in Redis
