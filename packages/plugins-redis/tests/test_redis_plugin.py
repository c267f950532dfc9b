"""parley-redis: its registration and its behaviour without a server."""

from __future__ import annotations

from importlib.metadata import entry_points

import parley_redis
import pytest
from parley.plugins.registry import Registrar
from parley.store import StoreUnavailable
from parley_redis.store import RedisStore, _redact, escape_glob
from parley_redis.testing import free_port


def test_entry_point_and_registration() -> None:
    (entry,) = [e for e in entry_points(group="parley") if e.name == "redis"]
    assert entry.value == "parley_redis"
    assert parley_redis.PARLEY_API == 1
    register = Registrar("redis")
    parley_redis.register_parts(register)
    (part,) = register.parts
    assert (part.kind, part.name, part.target) == (
        "store",
        "redis",
        "parley_redis.store:RedisStore",
    )
    assert part.requires == ("redis",)
    assert part.capabilities["atomic_limits"] is True
    assert parley_redis.Store is RedisStore


def test_resolves_as_the_redis_store_part() -> None:
    from parley.plugins.manager import resolve

    store = resolve("store", "redis", url="redis://127.0.0.1:1/0", prefix="app:")
    assert isinstance(store, RedisStore)
    assert (store.url, store.prefix) == ("redis://127.0.0.1:1/0", "app:")


def test_url_comes_from_the_argument_then_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6379/2")
    assert RedisStore().url == "redis://from-env:6379/2"
    assert RedisStore("redis://given:6379/0").url == "redis://given:6379/0"
    monkeypatch.delenv("REDIS_URL")
    assert RedisStore().url == "redis://localhost:6379/0"


def test_escape_glob_and_redaction() -> None:
    assert escape_glob("a*b?c[d]e^f\\g") == "a\\*b\\?c\\[d\\]e\\^f\\\\g"
    assert escape_glob("plain:key-1") == "plain:key-1"
    assert _redact("redis://user:secret@host:6380/1") == "redis://user:***@host:6380/1"
    assert _redact("redis://host:6379/0") == "redis://host:6379/0"
    assert "secret" not in repr(RedisStore("redis://:secret@host:6379/0"))


async def test_an_unreachable_server_raises_store_unavailable() -> None:
    store = RedisStore(f"redis://:pw@127.0.0.1:{free_port()}/0", connect_timeout=1.0)
    try:
        assert await store.ping() is False
        with pytest.raises(StoreUnavailable, match="unreachable") as caught:
            await store.get("k")
        assert "pw" not in str(caught.value)
        with pytest.raises(StoreUnavailable):
            await store.add_member("k", "m", ttl=1, limit=1)
        with pytest.raises(StoreUnavailable):
            await store.keys("")
        with pytest.raises(StoreUnavailable):
            await store.incr("n")
        with pytest.raises(StoreUnavailable):
            async with store.subscribe("ch"):
                pass
    finally:
        await store.aclose()
