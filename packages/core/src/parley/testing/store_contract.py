"""The `SessionStore` contract as a pytest suite, so any store can prove it behaves like the
built-in ones: values with expiry, atomic counters, member sets with limits, pub/sub.

Subclass `StoreContract` in a test module and give it a ``new_store`` fixture: a factory of
connections to one fresh, shared backend (each call may return a new connection, as several
nodes would hold, or the same object for an in-process store)::

    import pytest
    from parley.testing.store_contract import StoreContract

    class TestAcmeStore(StoreContract):
        @pytest.fixture
        async def new_store(self):
            async with acme_test_database() as url:
                yield lambda: AcmeStore(url)

The tests are ``async def``: run them with pytest-asyncio (``asyncio_mode = "auto"``). Some wait
out short TTLs (0.3 s), so a store must honour sub-second expiry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from parley.store import SessionStore

__all__ = ["NewStore", "StoreContract"]

NewStore = Callable[[], SessionStore]


class StoreContract:
    """The contract tests; a subclass provides the ``new_store`` fixture."""

    @pytest.fixture
    def new_store(self) -> NewStore:
        raise NotImplementedError("give the StoreContract subclass a new_store fixture")

    @pytest.fixture
    def store(self, new_store: NewStore) -> SessionStore:
        return new_store()

    async def test_values_round_trip(self, store: SessionStore) -> None:
        assert await store.get("k") is None
        await store.set("k", b"v1")
        assert await store.get("k") == b"v1"
        await store.set("k", b"v2")
        assert await store.get("k") == b"v2"
        assert await store.get_many(["k", "missing", "k"]) == [b"v2", None, b"v2"]
        assert await store.get_many([]) == []
        assert await store.delete("k") is True
        assert await store.delete("k") is False
        assert await store.get("k") is None

    async def test_values_expire(self, store: SessionStore) -> None:
        await store.set("short", b"x", ttl=0.3)
        await store.set("long", b"y", ttl=30)
        await store.set("forever", b"z")
        assert await store.expire("missing", 1) is False
        assert await store.expire("forever", 0.3) is True
        await asyncio.sleep(0.5)
        assert await store.get("short") is None
        assert await store.get("forever") is None
        assert await store.get("long") == b"y"
        assert sorted(await store.keys("")) == ["long"]

    async def test_incr_counts_atomically(self, new_store: NewStore) -> None:
        a, b = new_store(), new_store()
        assert await a.incr("n") == 1
        assert await b.incr("n", 5) == 6
        results = await asyncio.gather(*(s.incr("burst") for s in (a, b) * 20))
        assert sorted(results) == list(range(1, 41))
        assert await a.incr("n", -2, ttl=0.3) == 4
        await asyncio.sleep(0.5)
        assert await a.get("n") is None

    @pytest.mark.parametrize(
        ("prefix", "expected"),
        [
            ("a*", ["a*"]),
            ("a?", ["a?x"]),
            ("a[", ["a[1]"]),
            ("a]", ["a]"]),
            ("a\\", ["a\\b"]),
            ("a^", ["a^"]),
            ("a", ["a*", "a?x", "a[1]", "a]", "a\\b", "a^", "ab"]),
            ("", ["a*", "a?x", "a[1]", "a]", "a\\b", "a^", "ab", "other"]),
        ],
    )
    async def test_keys_take_the_prefix_literally(
        self, store: SessionStore, prefix: str, expected: list[str]
    ) -> None:
        for key in ["a*", "a?x", "a[1]", "a]", "a\\b", "a^", "ab", "other"]:
            await store.set(key, b"1")
        assert sorted(await store.keys(prefix)) == sorted(expected)

    async def test_member_set_enforces_its_limit(self, store: SessionStore) -> None:
        assert await store.add_member("call", "s1", ttl=30, limit=2) is True
        assert await store.add_member("call", "s2", ttl=30, limit=2) is True
        assert await store.add_member("call", "s3", ttl=30, limit=2) is False
        # A member already present is refreshed, whatever the limit.
        assert await store.add_member("call", "s1", ttl=30, limit=1) is True
        assert sorted(await store.members("call")) == ["s1", "s2"]
        assert await store.remove_member("call", "s1") is True
        assert await store.remove_member("call", "s1") is False
        assert await store.add_member("call", "s3", ttl=30, limit=2) is True
        assert sorted(await store.members("call")) == ["s2", "s3"]
        assert await store.add_member("call", "s4", ttl=30) is True  # no limit
        assert await store.members("other") == []

    async def test_members_expire_one_by_one(self, store: SessionStore) -> None:
        await store.add_member("call", "short", ttl=0.3)
        await store.add_member("call", "long", ttl=30)
        await store.add_member("call", "refreshed", ttl=0.3)
        assert await store.refresh_member("call", "refreshed", ttl=30) is True
        assert await store.refresh_member("call", "absent", ttl=30) is False
        await asyncio.sleep(0.5)
        assert sorted(await store.members("call")) == ["long", "refreshed"]
        # The expired member no longer counts against the limit.
        assert await store.add_member("call", "new", ttl=30, limit=3) is True
        assert await store.add_member("call", "extra", ttl=30, limit=3) is False

    async def test_member_set_disappears_with_its_last_member(self, store: SessionStore) -> None:
        await store.add_member("gone", "m", ttl=0.3)
        assert await store.keys("gone") == ["gone"]
        await asyncio.sleep(0.5)
        assert await store.keys("gone") == []
        await store.add_member("emptied", "m", ttl=30)
        await store.remove_member("emptied", "m")
        assert await store.keys("emptied") == []

    async def test_concurrent_adds_never_exceed_the_limit(self, new_store: NewStore) -> None:
        nodes = [new_store(), new_store()]
        results = await asyncio.gather(
            *(nodes[i % 2].add_member("hot", f"s{i}", ttl=30, limit=1) for i in range(50))
        )
        assert results.count(True) == 1
        assert len(await nodes[0].members("hot")) == 1

    async def test_publish_reaches_every_subscriber_of_that_channel_only(
        self, new_store: NewStore
    ) -> None:
        a, b = new_store(), new_store()
        async with (
            a.subscribe("ch*") as first,
            b.subscribe("ch*") as second,
            a.subscribe("chx") as other,
        ):
            await b.publish("ch*", b"hello")
            await b.publish("ch*", b"again")
            assert [await anext(first), await anext(first)] == [b"hello", b"again"]
            assert [await anext(second), await anext(second)] == [b"hello", b"again"]
            await b.publish("chx", b"own")
            assert await anext(other) == b"own"  # and "ch*" messages never matched "chx"

    async def test_ping(self, store: SessionStore) -> None:
        assert await store.ping() is True
