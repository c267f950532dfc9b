"""The SessionStore contract (`parley.testing.store_contract`) against a real redis-server:
the ``redis_url`` fixture of conftest.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from parley.testing.store_contract import NewStore, StoreContract
from parley_redis.testing import shared_stores


class TestRedisStore(StoreContract):
    @pytest.fixture
    async def new_store(self, redis_url: str) -> AsyncIterator[NewStore]:
        async with shared_stores(redis_url) as factory:
            yield factory
