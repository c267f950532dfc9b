"""Parley plugin ``redis``: a Redis session store so many nodes share one session registry.

This module stays light: it registers the part; redis-py is imported when a store is built.
``from parley.plugins import redis; store = redis.Store("redis://host:6379/0")``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley.plugins.registry import Registrar

    from parley_redis.store import RedisStore

    Store = RedisStore

PARLEY_API = 1

__getattr__, __dir__ = lazy_exports(
    __name__,
    {"RedisStore": "parley_redis.store:RedisStore", "Store": "parley_redis.store:RedisStore"},
)

__all__ = ["PARLEY_API", "RedisStore", "Store", "register_parts"]


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "store",
        "redis",
        "parley_redis.store:RedisStore",
        capabilities={
            "shared": True,  # several nodes see the same sessions
            "pubsub": True,
            "atomic_limits": True,
        },
        description="Redis session store (redis-py asyncio); URL from the argument or REDIS_URL",
        requires=("redis",),
    )
