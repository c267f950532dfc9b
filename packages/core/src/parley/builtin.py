"""Parts that ship with core itself (registered like any plugin's)."""

from __future__ import annotations

from parley.plugins.hookspecs import hookimpl
from parley.plugins.registry import Registrar

PARLEY_API = 1


@hookimpl
def register_parts(register: Registrar) -> None:
    register(
        "store",
        "memory",
        "parley.stores.memory:MemoryStore",
        capabilities={"shared_across_nodes": False},
        description="In-process session store (single node default)",
    )
