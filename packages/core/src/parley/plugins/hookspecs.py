"""The hooks a Parley plugin may implement. They are the public extension contract.

A plugin is a distribution with an entry point in the ``parley`` group whose module implements
some of these hooks with ``@hookimpl`` and declares ``PARLEY_API = 1`` (the plugin API major
version it was built for). The entry module must stay light: it says *what* the plugin offers
and names import targets; heavy imports happen when a part is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from parley.plugins.registry import Registrar

hookspec = pluggy.HookspecMarker("parley")
hookimpl = pluggy.HookimplMarker("parley")


@hookspec
def register_parts(register: Registrar) -> None:
    """Declare parts and presets.

    ``register(kind, name, target, capabilities={...}, description=..., requires=(...))``
    with ``kind`` one of ``stt llm tts realtime vad turn edge store`` and ``target`` an import
    path ``"package.module:Factory"``; ``register.preset(name, kind, spec)`` makes a spec
    string such as ``"local"`` stand for another (``"whisper"``).
    """


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add commands to the ``parley`` console script."""


@hookspec
def register_routes(app: Any, context: Any) -> None:
    """Add HTTP routes to the server's FastAPI ``app``. ``context`` gives the launcher."""


@hookspec
def session_started(session: Any) -> None:
    """An agent session started (observe only; must not block)."""


@hookspec
def session_ended(session: Any) -> None:
    """An agent session ended; its metrics are final."""


@hookspec
def turn_completed(session: Any, metrics: Any) -> None:
    """A conversation turn finished; ``metrics`` holds its latency breakdown and counters."""


@hookspec
def serve_room(room: Any) -> Any:
    """Offer to host the page where people join ``room`` (a `parley.JobContext` that has
    joined its call: ``room.connection``, ``room.room_options``).

    Return an object with ``async start() -> str`` (bind, then return the URL to open; raise
    if that fails) and ``async aclose()``, or None when this plugin cannot serve the room's
    edge. `JobContext.connect` calls it for edges whose part declares the ``routes``
    capability; parley-server implements it.
    """
