"""`RoomServer`: the page and signaling routes of one `JobContext` room, on a local port.

`WorkerJob` programs (the VideoSDK style) have no `Runner`: when their room is on an edge
whose plugin mounts routes (parley-webrtc), core asks the ``serve_room`` hook for a host, and
this is it. It mounts every plugin's routes as the Runner does, guarded by the room's
``auth_token`` (a ``token`` query parameter or an ``Authorization: Bearer`` header), and
serves them with uvicorn on the job's event loop until `JobContext.shutdown`.

The port is ``PARLEY_PORT`` (default 8000, as ``run``; 0 picks a free one) on ``PARLEY_HOST``
(default 127.0.0.1).
"""

# No ``from __future__ import annotations``: FastAPI reads the token check's signature.

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Callable, Iterator
from typing import Annotated, Any
from urllib.parse import urlencode

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Query
from parley.launcher import validate_call_id
from parley.plugins import call_hook

from parley_server.console import base_url
from parley_server.context import DemoPage
from parley_server.errors import install_error_handlers
from parley_server.options import ServeOptions, allow_all
from parley_server.permissions import Permissions

logger = logging.getLogger("parley.server.room")

PORT_ENV = "PARLEY_PORT"
HOST_ENV = "PARLEY_HOST"
DEFAULT_PORT = 8000
_STARTUP_POLL = 0.02
SHUTDOWN_TIMEOUT = 5.0  # seconds open requests get before the page server is stopped


def token_permission(expected: str | None) -> Callable[..., Any]:
    """A permission callback that lets in only requests presenting ``expected``."""
    if expected is None:
        return allow_all

    def has_token(
        call_id: str,
        token: Annotated[str | None, Query()] = None,
        authorization: Annotated[str | None, Header()] = None,
    ) -> None:
        presented = token
        if presented is None and authorization and authorization.lower().startswith("bearer "):
            presented = authorization[7:].strip()
        if presented is None:
            raise HTTPException(403, f"joining room {call_id!r} needs its token (?token=...)")
        if not secrets.compare_digest(presented.encode(), expected.encode()):
            raise HTTPException(403, f"wrong token for room {call_id!r}")

    return has_token


class RoomRouteContext:
    """What `register_routes` gets for a room: its rooms, guards and demo pages, no launcher
    (plugins read attributes with ``getattr``)."""

    def __init__(self, serve_options: ServeOptions, webrtc_rooms: Any) -> None:
        self.launcher = None
        self.ensure_call = None
        self.serve_options = serve_options
        self.permissions = Permissions(serve_options)
        self.webrtc_rooms = webrtc_rooms
        self.demo_pages: list[DemoPage] = []

    def add_demo_page(
        self, path: str, title: str = "Demo", serves: Callable[[Any], bool] | None = None
    ) -> None:
        self.demo_pages.append(DemoPage(path, title, serves))


class RoomServer:
    """Serves ``room``'s page; `start` binds and returns the URL, `aclose` stops."""

    def __init__(self, room: Any, app: FastAPI, page: DemoPage) -> None:
        self.room = room
        self.app = app
        self.page = page
        self._server: Any = None
        self._serving: asyncio.Task[None] | None = None

    @classmethod
    def for_room(cls, room: Any) -> "RoomServer | None":
        """A server for ``room`` if a plugin registers a page that serves its edge."""
        options = room.room_options
        guard = token_permission(options.auth_token)
        serve_options = ServeOptions(can_start_session=guard, can_list_sessions=guard)
        context = RoomRouteContext(serve_options, getattr(room.edge, "rooms", None))
        app = FastAPI(title="Parley room", docs_url=None, redoc_url=None, openapi_url=None)
        install_error_handlers(app)
        call_hook("register_routes", app=app, context=context)
        for page in context.demo_pages:
            if page.serves is None or page.serves(room):
                return cls(room, app, page)
        return None

    def url(self, base: str) -> str:
        options = self.room.room_options
        url = self.page.url(base, self.room.room_id)
        extra: dict[str, str] = {}
        if options.auth_token is not None:
            extra["token"] = options.auth_token
        if options.vision:
            extra["camera"] = "1"  # the page asks for the camera as it joins
        if extra:
            url += ("&" if "?" in url else "?") + urlencode(extra)
        return url

    async def start(self) -> str:
        validate_call_id(self.room.room_id)  # the room id is part of its URL
        host = os.environ.get(HOST_ENV, "127.0.0.1")
        port = _port()
        # Bound here, not by uvicorn: a port in use is an OSError we can explain, where
        # uvicorn would exit the process.
        try:
            sock = _bind(host, port)
        except OSError as exc:
            raise RuntimeError(
                f"cannot serve the room's page on {host}:{port}: {exc.strerror or exc}; "
                f"set {PORT_ENV} to a free port (0 picks one)"
            ) from exc
        config = uvicorn.Config(
            self.app, host=host, port=port, log_config=None, log_level="warning", lifespan="off"
        )
        server = _JobServer(config)
        self._server = server
        self._serving = asyncio.create_task(server.serve([sock]), name="parley-room-server")
        # uvicorn exposes `started` as a flag, not an event.
        while not server.started and not self._serving.done():  # noqa: ASYNC110
            await asyncio.sleep(_STARTUP_POLL)
        if self._serving.done():
            await self._serving
            raise RuntimeError(f"the room's page server on {host}:{port} stopped at once")
        return self.url(base_url(host, sock.getsockname()[1]))

    async def aclose(self) -> None:
        server, serving = self._server, self._serving
        if server is None or serving is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(serving), SHUTDOWN_TIMEOUT)
        except TimeoutError:
            server.force_exit = True
            serving.cancel()
            await asyncio.gather(serving, return_exceptions=True)


class _JobServer(uvicorn.Server):
    """uvicorn's Server without its signal handling: the job owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _port() -> int:
    raw = os.environ.get(PORT_ENV, "").strip()
    if not raw:
        return DEFAULT_PORT
    try:
        port = int(raw)
    except ValueError:
        raise ValueError(
            f"{PORT_ENV} must be a port number (0 for any free port), got {raw!r}"
        ) from None
    if not 0 <= port <= 65535:
        raise ValueError(f"{PORT_ENV} must be between 0 and 65535, got {port}")
    return port
