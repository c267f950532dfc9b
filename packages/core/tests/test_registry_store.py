"""The SessionStore contract (`parley.testing.store_contract`) run against MemoryStore; the
redis plugin runs it against a real redis-server."""

from __future__ import annotations

import pytest
from parley.stores.memory import MemoryStore
from parley.testing.store_contract import NewStore, StoreContract


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def new_store(self) -> NewStore:
        shared = MemoryStore()
        return lambda: shared
