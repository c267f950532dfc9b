"""Session store implementations that ship with core (others come as plugins, e.g. ``redis``)."""

from parley.stores.memory import MemoryStore

__all__ = ["MemoryStore"]
