"""`RouteContext`: what the ``register_routes(app, context)`` hook gives a plugin."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from parley.launcher import validate_call_id

from parley_server.permissions import Permissions

if TYPE_CHECKING:
    from parley.launcher import AgentLauncher

    from parley_server.options import ServeOptions

EnsureCall = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class DemoPage:
    """A page a plugin serves for people to join a call, e.g. ``/webrtc/?call={call_id}``."""

    path: str
    title: str = "Demo"
    # Which sessions the page can join (e.g. only those on the plugin's own edge); None: all.
    serves: Callable[[Any], bool] | None = None

    def url(self, base_url: str, call_id: str) -> str:
        path = self.path.replace("{call_id}", call_id)
        return base_url.rstrip("/") + (path if path.startswith("/") else "/" + path)


@dataclass
class RouteContext:
    """Handed to every plugin's ``register_routes(app, context)``.

    - ``launcher``: the `AgentLauncher` (start, list, close sessions).
    - ``serve_options``: the Runner's `ServeOptions`.
    - ``permissions``: the ServeOptions callbacks as dependencies (`Permissions`). A route a
      plugin mounts lists the one it needs (``dependencies=[Depends(permissions.join_call)]``)
      or ``checks_itself``; a route that lists none gets the default guard
      (`parley_server.plugin_guard`): the right to join the call it names, else to list.
    - ``ensure_call``: ``async (call_id) -> None`` that starts a session on ``call_id`` when
      this node runs none, or None when ``ServeOptions.start_sessions_on_demand`` is off.
    - ``add_demo_page(path, title, serves=None)``: tell the Runner where people join a call
      (``serves(session)`` says which sessions the page can join); ``run``
      prints (and opens) that URL. ``{call_id}`` in ``path`` is replaced by the call id.

    Plugins should read attributes with ``getattr(context, name, None)`` so that they work
    with older and newer servers alike.
    """

    launcher: AgentLauncher
    serve_options: ServeOptions
    ensure_call: EnsureCall | None = None
    demo_pages: list[DemoPage] = field(default_factory=list)
    permissions: Permissions = field(init=False)

    def __post_init__(self) -> None:
        self.permissions = Permissions(self.serve_options)

    def add_demo_page(
        self, path: str, title: str = "Demo", serves: Callable[[Any], bool] | None = None
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"a demo page path starts with '/', got {path!r}")
        self.demo_pages.append(DemoPage(path, title, serves))


def on_demand_starter(launcher: AgentLauncher) -> EnsureCall:
    """``ensure_call`` for `RouteContext`: one session per call on this node, started once."""
    # Per-call locks (not one global lock), dropped when no request waits on them.
    locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    async def ensure_call(call_id: str) -> None:
        validate_call_id(call_id)
        lock, users = locks.setdefault(call_id, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                if any(r.call_id == call_id for r in launcher.registry.local_sessions()):
                    return
                await launcher.start_session(call_id)
        finally:
            users[0] -= 1
            if users[0] == 0:
                del locks[call_id]

    return ensure_call
