"""Redis for the tests: `redis_url` is REDIS_URL, else a redis-server started here; `server` is
always a redis-server of the test's own, which it may kill, flush and restart. Without the
binary the tests that need one skip (and fail when CI=true)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from parley_redis.testing import RedisServer, missing_redis, own_redis_server, redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except LookupError as exc:
        missing_redis(str(exc))


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with own_redis_server() as server:
        yield server
