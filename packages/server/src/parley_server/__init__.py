"""Parley's server: `Runner`, the ``run``/``serve`` commands and the HTTP session API.

This is also the entry module of the ``server`` plugin, so it stays light: it adds ``parley
run TARGET`` and ``parley serve TARGET`` to the console script and loads everything else on
first use (``from parley_server import Runner``; ``from parley import Runner`` works too).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from parley.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import click

    from parley_server.context import DemoPage, RouteContext
    from parley_server.options import ServeOptions, allow_all
    from parley_server.runner import Runner

PARLEY_API = 1

_LAZY = {
    "Runner": "parley_server.runner",
    "ServeOptions": "parley_server.options",
    "allow_all": "parley_server.options",
    "RouteContext": "parley_server.context",
    "DemoPage": "parley_server.context",
}

__all__ = ["PARLEY_API", "DemoPage", "RouteContext", "Runner", "ServeOptions", "allow_all"]


if not TYPE_CHECKING:  # type checkers see the imports above, so a misspelt name fails there

    def __getattr__(name: str) -> Any:
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module 'parley_server' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value


@hookimpl
def register_commands(cli: click.Group) -> None:
    from parley_server.loading import target_commands

    for command in target_commands():
        cli.add_command(command)


@hookimpl
def serve_room(room: Any) -> Any:
    """Host a `WorkerJob` room's page and signaling (see `parley_server.room`)."""
    from parley_server.room import RoomServer

    return RoomServer.for_room(room)
