"""The SessionRegistry suite, run against MemoryStore and a real redis-server.

Several registries on one backend (each with its own store connection for Redis) play the
nodes of a cluster. Redis comes from REDIS_URL or a redis-server started here; without
either the Redis cases skip (and fail when CI=true).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AsyncExitStack
from typing import Any

import pytest
from parley.registry import SessionRegistry
from parley.store import SessionStore, StoreUnavailable
from parley.stores.memory import MemoryStore
from parley.testing import until

NewStore = Callable[[], SessionStore]
MakeNode = Callable[..., Awaitable[SessionRegistry]]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        from parley_redis.testing import missing_redis, redis_server
    except ImportError:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but parley-redis is not installed")
        pytest.skip("parley-redis is not installed")
    try:
        with redis_server() as url:
            yield url
    except LookupError as exc:
        missing_redis(str(exc))


@pytest.fixture(params=["memory", "redis"])
async def new_store(request: pytest.FixtureRequest) -> AsyncIterator[NewStore]:
    """Makes connections to one shared backend (the same object for memory)."""
    if request.param == "memory":
        shared = MemoryStore()
        yield lambda: shared
        return
    from parley_redis.testing import shared_stores

    async with shared_stores(request.getfixturevalue("redis_url")) as factory:
        yield factory


@pytest.fixture
async def make_node(new_store: NewStore) -> AsyncIterator[MakeNode]:
    """Starts a registry ("node") on the shared backend; all are stopped after the test."""
    async with AsyncExitStack() as stack:

        async def make(
            node_id: str, *, store: SessionStore | None = None, start: bool = True, **options: Any
        ) -> SessionRegistry:
            options.setdefault("auto_heartbeat", False)
            registry = SessionRegistry(store or new_store(), node_id=node_id, **options)
            stack.push_async_callback(registry.stop)
            if start:
                await registry.start()
            return registry

        yield make


class Closes:
    """An on_close_requested callback that records what it was asked to close."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_times = fail_times
        self._arrived = asyncio.Event()

    async def __call__(self, call_id: str, session_id: str) -> None:
        self.calls.append((call_id, session_id))
        self._arrived.set()
        if self.fail_times > 0:
            self.fail_times -= 1
            raise RuntimeError("closing failed")

    async def wait(self, count: int = 1) -> None:
        async with asyncio.timeout(30):
            while len(self.calls) < count:
                self._arrived.clear()
                await self._arrived.wait()


def ids(records: Sequence[Any]) -> list[str]:
    return sorted(r.session_id for r in records)


async def test_register_update_get_list_release(make_node: MakeNode) -> None:
    a = await make_node("node-a", address="10.0.0.1:8000")
    b = await make_node("node-b")
    assert await a.reserve("call", "s1", limit=5) is True
    record = await a.register("call", "s1", call_type="support", metrics={"turns": 0})
    assert (record.node_id, record.node_address, record.call_type) == (
        "node-a",
        "10.0.0.1:8000",
        "support",
    )
    assert (record.state, record.metrics, record.error) == ("starting", {"turns": 0}, None)

    await a.update("call", "s1", state="running", metrics={"turns": 2})
    seen = await b.get("call", "s1")
    assert seen is not None
    assert (seen.state, seen.metrics, seen.node_id) == ("running", {"turns": 2}, "node-a")
    await a.update("call", "s1", state="failed", error="join failed: timeout")
    seen = await b.get("call", "s1")
    assert seen is not None
    assert (seen.state, seen.error, seen.metrics) == (
        "failed",
        "join failed: timeout",
        {"turns": 2},
    )

    await b.register("call", "s2")  # without reserve: still counted for the call
    await b.register("other", "s3")
    assert ids(await a.list_sessions("call")) == ["s1", "s2"]
    assert ids(await a.list_sessions()) == ["s1", "s2", "s3"]
    assert [r.session_id for r in a.local_sessions()] == ["s1"]

    await a.release("call", "s1")
    await a.release("call", "s1")  # idempotent
    assert await b.get("call", "s1") is None
    assert ids(await b.list_sessions("call")) == ["s2"]
    with pytest.raises(KeyError, match="not registered on this node"):
        await a.update("call", "s1", state="running")


@pytest.mark.parametrize("limit", [1, 3])
async def test_limit_holds_exactly_under_a_concurrent_burst_across_nodes(
    make_node: MakeNode, limit: int
) -> None:
    nodes = [await make_node("node-a"), await make_node("node-b")]
    results = await asyncio.gather(
        *(nodes[i % 2].reserve("hot", f"s{i}", limit=limit) for i in range(50))
    )
    assert results.count(True) == limit
    admitted = [f"s{i}" for i, ok in enumerate(results) if ok]
    for session_id in admitted:
        owner = nodes[int(session_id[1:]) % 2]
        await owner.register("hot", session_id, state="running")
    assert ids(await nodes[0].list_sessions("hot")) == sorted(admitted)
    assert await nodes[1].reserve("hot", "late", limit=limit) is False


async def test_release_frees_the_slot(make_node: MakeNode) -> None:
    a = await make_node("node-a")
    b = await make_node("node-b")
    assert await a.reserve("call", "s1", limit=1) is True
    assert await a.reserve("call", "s1", limit=1) is True  # the same session again
    assert await b.reserve("call", "s2", limit=1) is False
    await a.release("call", "s1")
    assert await b.reserve("call", "s2", limit=1) is True


@pytest.mark.parametrize("tricky", ["a*", "a?", "a[b", "a[]", "*", "a:b", "a%3Ab", "a\\b"])
async def test_call_ids_are_never_patterns(make_node: MakeNode, tricky: str) -> None:
    a = await make_node("node-a")
    neighbours = ["a", "ab", "a:b:c", "abc", "b"]
    for call_id in neighbours:
        assert await a.reserve(call_id, "n1", limit=1) is True
        await a.register(call_id, "n1")
    assert await a.reserve(tricky, "t1", limit=1) is True  # other calls' sessions don't count
    await a.register(tricky, "t1")
    assert await a.reserve(tricky, "t2", limit=1) is False
    assert [(r.call_id, r.session_id) for r in await a.list_sessions(tricky)] == [(tricky, "t1")]
    assert await a.get(tricky, "n1") is None
    for call_id in neighbours:
        assert [r.session_id for r in await a.list_sessions(call_id)] == ["n1"]
    assert len(await a.list_sessions()) == len(neighbours) + 1
    await a.release(tricky, "t1")
    assert len(await a.list_sessions()) == len(neighbours)


async def test_nodes_are_listed_with_capacity_sessions_and_draining(make_node: MakeNode) -> None:
    a = await make_node("node-a", address="10.0.0.1:8000", capacity=10)
    b = await make_node("node-b")
    await a.reserve("call", "s1")
    await a.register("call", "s1")
    await a.heartbeat()
    await b.set_draining(True)
    nodes = {n.node_id: n for n in await a.list_nodes()}
    assert set(nodes) == {"node-a", "node-b"}
    assert (nodes["node-a"].address, nodes["node-a"].capacity) == ("10.0.0.1:8000", 10)
    assert (nodes["node-a"].sessions, nodes["node-a"].draining) == (1, False)
    assert (nodes["node-b"].sessions, nodes["node-b"].draining) == (0, True)
    await b.stop()
    assert [n.node_id for n in await a.list_nodes()] == ["node-a"]


async def test_close_requested_on_another_node_arrives_by_pubsub(make_node: MakeNode) -> None:
    closes = Closes()
    a = await make_node("node-a", on_close_requested=closes)
    b = await make_node("node-b")
    await a.reserve("call", "s1")
    await a.register("call", "s1", state="running")
    await a.register("call", "s2", state="running")
    assert await b.request_close("call", "s1") is True
    await closes.wait()  # neither node heartbeats here: only publish/subscribe can deliver it
    assert closes.calls == [("call", "s1")]
    assert await b.request_close("call", "missing") is False
    assert await b.request_close("nocall", "s1") is False


async def test_close_requested_on_the_owning_node_is_delivered_locally(make_node: MakeNode) -> None:
    closes = Closes()
    a = await make_node("node-a", on_close_requested=closes)
    await a.register("call", "s1")
    assert await a.request_close("call", "s1") is True
    await closes.wait()
    assert closes.calls == [("call", "s1")]


async def test_a_lost_close_message_is_delivered_by_the_next_heartbeat(make_node: MakeNode) -> None:
    closes = Closes()
    # Not started: it is not subscribed, so the published request is lost.
    a = await make_node("node-a", on_close_requested=closes, start=False)
    b = await make_node("node-b")
    await a.register("call", "s1")
    await a.register("call", "s2")
    assert await b.request_close("call", "s1") is True
    await asyncio.sleep(0.2)
    assert closes.calls == []
    assert await a.heartbeat() is True
    await closes.wait()
    assert closes.calls == [("call", "s1")]
    await a.heartbeat()  # the marker was consumed: no second delivery
    await asyncio.sleep(0.1)
    assert closes.calls == [("call", "s1")]


async def test_a_failed_close_is_retried_at_the_next_heartbeat(make_node: MakeNode) -> None:
    closes = Closes(fail_times=1)
    a = await make_node("node-a", on_close_requested=closes)
    b = await make_node("node-b")
    await a.register("call", "s1")
    assert await b.request_close("call", "s1") is True
    await closes.wait()
    await a.heartbeat()
    await closes.wait(2)
    assert closes.calls == [("call", "s1"), ("call", "s1")]


async def test_a_dead_nodes_records_expire_while_live_ones_stay(
    make_node: MakeNode, new_store: NewStore
) -> None:
    # Both nodes use one TTL, as a cluster must. The live node heartbeats twenty times per TTL,
    # so only a stall of almost the whole TTL could expire its records.
    ttl = 2.0
    live = await make_node("node-live", ttl=ttl, auto_heartbeat=True, heartbeat_interval=0.1)
    assert await live.reserve("call", "l1", limit=3) is True
    await live.register("call", "l1", state="running")
    dead = await make_node("node-dead", ttl=ttl)  # never heartbeats
    for session_id in ("d1", "d2"):
        assert await dead.reserve("call", session_id, limit=3) is True
        await dead.register("call", session_id, state="running")
    assert ids(await live.list_sessions("call")) == ["d1", "d2", "l1"]

    async def dead_gone() -> bool:
        return ids(await live.list_sessions("call")) == ["l1"]

    # The dead node's records, written after l1, expire: l1 has outlived its first TTL.
    await until(dead_gone)
    assert await live.get("call", "d1") is None
    assert [n.node_id for n in await live.list_nodes()] == ["node-live"]
    # The dead node's slots are free again.
    assert await live.reserve("call", "l2", limit=3) is True
    assert await live.reserve("call", "l3", limit=3) is True
    # The heartbeat loop keeps going: l1 outlives a second TTL, measured by the store's own
    # clock (a key written now with the same TTL) rather than by the test's.
    clock = new_store()
    await clock.set("clock", b"", ttl=ttl)

    async def another_ttl_passed() -> bool:
        return await clock.get("clock") is None

    await until(another_ttl_passed)
    assert ids(await live.list_sessions("call")) == ["l1"]


class FlakyStore(SessionStore):
    """Wraps a store; while ``down`` every operation raises StoreUnavailable."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.down = False

    def _check(self) -> None:
        if self.down:
            raise StoreUnavailable("store is down (test)")

    async def get(self, key: str) -> bytes | None:
        self._check()
        return await self.inner.get(key)

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        self._check()
        return await self.inner.get_many(keys)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        self._check()
        await self.inner.set(key, value, ttl)

    async def delete(self, key: str) -> bool:
        self._check()
        return await self.inner.delete(key)

    async def expire(self, key: str, ttl: float) -> bool:
        self._check()
        return await self.inner.expire(key, ttl)

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        self._check()
        return await self.inner.incr(key, amount, ttl)

    async def keys(self, prefix: str) -> list[str]:
        self._check()
        return await self.inner.keys(prefix)

    async def add_member(self, key: str, member: str, ttl: float, limit: int | None = None) -> bool:
        self._check()
        return await self.inner.add_member(key, member, ttl, limit)

    async def refresh_member(self, key: str, member: str, ttl: float) -> bool:
        self._check()
        return await self.inner.refresh_member(key, member, ttl)

    async def remove_member(self, key: str, member: str) -> bool:
        self._check()
        return await self.inner.remove_member(key, member)

    async def members(self, key: str) -> list[str]:
        self._check()
        return await self.inner.members(key)

    async def publish(self, channel: str, message: bytes) -> None:
        self._check()
        await self.inner.publish(channel, message)

    def subscribe(self, channel: str) -> Any:
        self._check()
        return self.inner.subscribe(channel)

    async def ping(self) -> bool:
        return not self.down and await self.inner.ping()


async def test_an_outage_degrades_clearly_and_recovers(
    make_node: MakeNode, new_store: NewStore, caplog: pytest.LogCaptureFixture
) -> None:
    flaky = FlakyStore(new_store())
    closes = Closes()
    a = await make_node("node-a", store=flaky, on_close_requested=closes)
    b = await make_node("node-b")
    await a.reserve("call", "s1", limit=2)
    await a.register("call", "s1", state="running")
    assert (a.healthy, b.healthy) == (True, True)

    flaky.down = True
    with pytest.raises(StoreUnavailable):
        await a.reserve("call", "s2", limit=2)
    assert await a.heartbeat() is False  # never raises
    assert a.healthy is False
    with pytest.raises(StoreUnavailable):
        await a.list_sessions()
    assert "cannot reach its store" in caplog.text
    assert [r.session_id for r in a.local_sessions()] == ["s1"]  # the session keeps running
    assert closes.calls == []

    flaky.down = False
    assert await a.heartbeat() is True
    assert [a.healthy] == [True]
    assert "reachable again" in caplog.text
    assert ids(await b.list_sessions("call")) == ["s1"]


async def test_a_node_started_during_an_outage_catches_up(
    make_node: MakeNode, new_store: NewStore
) -> None:
    flaky = FlakyStore(new_store())
    flaky.down = True
    closes = Closes()
    a = await make_node("node-a", store=flaky, on_close_requested=closes)  # does not raise
    assert a.healthy is False
    flaky.down = False
    assert await a.heartbeat() is True
    await a.register("call", "s1")
    b = await make_node("node-b")
    assert [n.node_id for n in await b.list_nodes()] == ["node-a", "node-b"]
    # The listener keeps retrying its subscription; once it is back, a close arrives by
    # publish/subscribe (node A does not heartbeat here).
    async with asyncio.timeout(20):
        while not closes.calls:
            assert await b.request_close("call", "s1") is True
            await asyncio.sleep(0.2)
    assert closes.calls == [("call", "s1")]


async def test_records_are_rewritten_after_they_expired_in_an_outage(
    make_node: MakeNode, new_store: NewStore
) -> None:
    flaky = FlakyStore(new_store())
    a = await make_node("node-a", store=flaky, ttl=0.4)
    b = await make_node("node-b")
    await a.reserve("call", "s1", limit=1)
    await a.register("call", "s1", state="running")
    flaky.down = True

    async def expired() -> bool:
        return await b.list_sessions("call") == []

    await until(expired)
    assert await a.heartbeat() is False
    flaky.down = False
    assert await a.heartbeat() is True
    assert ids(await b.list_sessions("call")) == ["s1"]
    assert await b.reserve("call", "s2", limit=1) is False  # the slot is held again


async def test_stop_removes_the_nodes_records(make_node: MakeNode) -> None:
    a = await make_node("node-a")
    b = await make_node("node-b")
    await a.register("call", "s1")
    assert [n.node_id for n in await b.list_nodes()] == ["node-a", "node-b"]
    await a.stop()
    assert await b.list_sessions() == []
    assert [n.node_id for n in await b.list_nodes()] == ["node-b"]


def test_rejects_a_heartbeat_slower_than_the_ttl() -> None:
    with pytest.raises(ValueError, match="heartbeat_interval"):
        SessionRegistry(MemoryStore(), ttl=5, heartbeat_interval=5)
    with pytest.raises(ValueError, match="ttl"):
        SessionRegistry(MemoryStore(), ttl=0)
