"""`RedisStore`: the Parley session store on Redis, so many nodes share one registry.

- Every key and channel is namespaced by ``prefix`` (default ``"parley:"``).
- Keys are literal: `keys` escapes glob characters before ``SCAN MATCH``, so a call id such
  as ``a*`` can never match other calls' keys.
- Member sets are sorted sets scored by expiry time (milliseconds, from the Redis server's own
  clock so nodes with skewed clocks agree); Lua scripts make add/refresh/list atomic.
- Any connection failure surfaces as `StoreUnavailable`; the client retries once on a fresh
  connection first, which hides a server restart from the next command.
- Subscriptions reconnect and resubscribe by themselves after an outage, and log a warning on
  ``parley.redis`` each time one was lost (messages published meanwhile are missed).

Requires Redis >= 5 (scripts that call ``TIME`` before writing).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterator,
    Sequence,
)
from contextlib import asynccontextmanager, contextmanager, suppress
from typing import Any, cast
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from parley.store import SessionStore, StoreUnavailable
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger("parley.redis")

DEFAULT_URL = "redis://localhost:6379/0"
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# Shared prologue: the server's clock in ms, then drop the set's expired members.
_NOW_AND_PRUNE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""

# The set lives exactly as long as its longest-lived member.
_EXPIRE_WITH_LAST = """
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then redis.call('PEXPIREAT', KEYS[1], last[2]) end
"""

# KEYS[1] set; ARGV: member, ttl_ms, limit (-1: none). Returns 1 if added/refreshed, 0 if full.
_ADD_MEMBER = (
    _NOW_AND_PRUNE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  local limit = tonumber(ARGV[3])
  if limit >= 0 and redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
"""
    + _EXPIRE_WITH_LAST
    + "return 1"
)

# KEYS[1] set; ARGV: member, ttl_ms. Returns 1 if refreshed, 0 if absent.
_REFRESH_MEMBER = (
    _NOW_AND_PRUNE
    + """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
"""
    + _EXPIRE_WITH_LAST
    + "return 1"
)

# KEYS[1] set. Returns the live members.
_MEMBERS = _NOW_AND_PRUNE + "return redis.call('ZRANGE', KEYS[1], 0, -1)"


class RedisStore(SessionStore):
    """Session store on Redis.

    ``url`` defaults to the ``REDIS_URL`` environment variable, then ``redis://localhost:6379/0``.
    Pass ``client`` to reuse a configured ``redis.asyncio.Redis`` instead (it is not closed by
    `aclose`). ``prefix`` namespaces every key and channel, so several deployments can share
    one database.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "parley:",
        client: aioredis.Redis | None = None,
        socket_timeout: float = 5.0,
        connect_timeout: float = 2.0,
        scan_count: int = 500,
    ) -> None:
        self.url = url or os.environ.get("REDIS_URL") or DEFAULT_URL
        self.prefix = prefix
        self._scan_count = scan_count
        self._owns_client = client is None
        self._client: aioredis.Redis = client or aioredis.Redis.from_url(
            self.url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=connect_timeout,
            # One quick retry on a fresh connection hides a server restart from the next
            # command; an outage still fails fast instead of stalling callers for seconds.
            retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=1),
            health_check_interval=30,
        )
        self._add_member = self._client.register_script(_ADD_MEMBER)
        self._refresh_member = self._client.register_script(_REFRESH_MEMBER)
        self._members = self._client.register_script(_MEMBERS)

    def __repr__(self) -> str:
        return f"RedisStore({_redact(self.url)!r}, prefix={self.prefix!r})"

    def _k(self, key: str) -> str:
        return self.prefix + key

    @contextmanager
    def _mapped(self) -> Iterator[None]:
        try:
            yield
        except _UNREACHABLE as exc:
            raise StoreUnavailable(f"Redis at {_redact(self.url)} is unreachable: {exc}") from exc

    async def _call(self, command: Awaitable[Any] | Any) -> Any:
        # redis-py types commands as "awaitable or value" (sync and async share stubs).
        with self._mapped():
            return await command

    # -- plain keys -------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(self._client.get(self._k(key)))
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        names = [self._k(key) for key in keys]
        values: list[bytes | None] = await self._call(self._client.mget(names))
        return values

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        await self._call(
            self._client.set(self._k(key), value, px=None if ttl is None else _ms(ttl))
        )

    async def delete(self, key: str) -> bool:
        return bool(await self._call(self._client.delete(self._k(key))))

    async def expire(self, key: str, ttl: float) -> bool:
        return bool(await self._call(self._client.pexpire(self._k(key), _ms(ttl))))

    async def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        name = self._k(key)
        with self._mapped():
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.incrby(name, amount)
                if ttl is not None:
                    pipe.pexpire(name, _ms(ttl))
                results = await pipe.execute()
        return int(results[0])

    async def keys(self, prefix: str) -> list[str]:
        pattern = escape_glob(self._k(prefix)) + "*"
        found: set[str] = set()  # SCAN may return a key more than once
        with self._mapped():
            async for name in self._client.scan_iter(match=pattern, count=self._scan_count):
                found.add(_text(name)[len(self.prefix) :])
        return list(found)

    # -- member sets --------------------------------------------------------------------------

    async def add_member(self, key: str, member: str, ttl: float, limit: int | None = None) -> bool:
        args: list[str | int] = [member, _ms(ttl), -1 if limit is None else limit]
        return bool(await self._call(self._add_member(keys=[self._k(key)], args=args)))

    async def refresh_member(self, key: str, member: str, ttl: float) -> bool:
        args: list[str | int] = [member, _ms(ttl)]
        return bool(await self._call(self._refresh_member(keys=[self._k(key)], args=args)))

    async def remove_member(self, key: str, member: str) -> bool:
        return bool(await self._call(self._client.zrem(self._k(key), member)))

    async def members(self, key: str) -> list[str]:
        names: list[bytes] = await self._call(self._members(keys=[self._k(key)]))
        return [_text(name) for name in names]

    # -- publish/subscribe --------------------------------------------------------------------

    async def publish(self, channel: str, message: bytes) -> None:
        await self._call(self._client.publish(self._k(channel), message))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[bytes]]:
        subscription = _Subscription(self._client, self._k(channel), _redact(self.url))
        with self._mapped():
            await subscription.connect()
        messages = subscription.messages()
        try:
            yield messages
        finally:
            await messages.aclose()
            await subscription.close()

    # -- lifecycle ----------------------------------------------------------------------------

    async def ping(self) -> bool:
        try:
            return bool(await cast(Awaitable[Any], self._client.ping()))
        except _UNREACHABLE:
            return False

    async def aclose(self) -> None:
        if self._owns_client:
            await self._client.aclose()


class _Subscription:
    """One channel subscription on its own connection, re-made after connection loss.

    Older redis-py raise from ``get_message`` when the connection drops, and the subscription
    is made again here; newer ones reconnect and resubscribe inside ``get_message``, which
    `_WatchedPubSub` reports. Either way a loss is logged once as a warning: messages
    published while it lasted are missed.
    """

    def __init__(self, client: aioredis.Redis, channel: str, where: str) -> None:
        self._client = client
        self._channel = channel
        self._where = where
        self._pubsub: PubSub | None = None
        self._closed = False

    async def connect(self) -> None:
        pubsub = _WatchedPubSub(self._client.connection_pool, self._resubscribed_by_client)
        try:
            await pubsub.subscribe(self._channel)
        except BaseException:
            await _quietly_close(pubsub)
            raise
        self._pubsub = pubsub

    async def messages(self) -> AsyncGenerator[bytes, None]:
        while not self._closed:
            pubsub = self._pubsub
            if pubsub is None:
                await self._reconnect()
                continue
            try:
                # A bounded wait lets redis-py run its periodic health check on idle channels.
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            except _UNREACHABLE as exc:
                logger.warning(
                    "lost the subscription to %s at %s (%s); resubscribing when Redis is back; "
                    "messages sent meanwhile are missed",
                    self._channel,
                    self._where,
                    exc,
                )
                self._pubsub = None
                await _quietly_close(pubsub)
                continue
            if message is not None and message.get("type") == "message":
                yield cast(bytes, message["data"])

    def _resubscribed_by_client(self) -> None:
        logger.warning(
            "the subscription to %s at %s lost its connection and redis-py resubscribed; "
            "messages sent meanwhile are missed",
            self._channel,
            self._where,
        )

    async def _reconnect(self) -> None:
        delay = 0.05
        while not self._closed:
            try:
                await self.connect()
            except _UNREACHABLE:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            logger.info("resubscribed to %s at %s", self._channel, self._where)
            return

    async def close(self) -> None:
        self._closed = True
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            await _quietly_close(pubsub)


class _WatchedPubSub(PubSub):
    """A `PubSub` that calls ``on_resubscribed`` when redis-py re-made its connection and
    subscribed again by itself (``on_connect`` runs on every reconnection; it finds channels
    to restore only after the first subscription)."""

    def __init__(self, pool: aioredis.ConnectionPool, on_resubscribed: Callable[[], None]):
        super().__init__(pool, ignore_subscribe_messages=True)
        self._on_resubscribed = on_resubscribed

    async def on_connect(self, connection: Any) -> None:
        restoring = bool(self.channels)
        await super().on_connect(connection)
        if restoring:
            self._on_resubscribed()


async def _quietly_close(pubsub: PubSub) -> None:
    with suppress(*_UNREACHABLE):  # the connection is already gone; nothing to release
        await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]


def escape_glob(text: str) -> str:
    """``text`` with Redis glob characters escaped, so ``SCAN MATCH`` takes it literally."""
    return "".join("\\" + ch if ch in "*?[]^\\" else ch for ch in text)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _redact(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))
