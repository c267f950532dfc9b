"""A Redis URL for the tests: REDIS_URL, else a redis-server started here; without either the
tests that need one skip (and fail when CI=true)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from parley_redis.testing import missing_redis, redis_server


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except LookupError as exc:
        missing_redis(str(exc))
