"""`ServeOptions`: permission callbacks, CORS, limits and switches for the HTTP session API."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from pydantic import BaseModel

Permission = Callable[..., Any]
"""A FastAPI dependency: it may declare ``call_id`` (and ``session_id``) to receive them from
the path, headers (``Header()``), other dependencies (``Depends()``). It refuses the request
by raising ``HTTPException(401 | 403, ...)`` or by returning ``False`` (403); any other return
value allows it."""

_ORIGIN = re.compile(r"^https?://[^\s/?#]+$")


def allow_all(call_id: str) -> None:
    """The default permission: every request is allowed (see ServeOptions)."""


@dataclass
class ServeOptions:
    """How the Runner serves HTTP.

    Permission callbacks (``can_start_session``, ``can_close_session``, ``can_view_session``,
    ``can_list_sessions``) are ordinary FastAPI dependencies, run after ``call_id`` is
    validated and before the request body is looked at. They default to `allow_all`: the
    server binds 127.0.0.1 unless told otherwise, and `Runner.serve` warns when it listens
    on another address with no callback set.

    CORS is off unless ``cors_allow_origins`` lists origins (``"https://app.example.com"``).
    ``"*"`` must stand alone and cannot be combined with ``cors_allow_credentials``: browsers
    refuse that pair, and allowing any site to send your users' cookies would be unsafe.

    ``fast_api=app`` serves ``app`` as it is: no default route, no CORS, no plugin route, no
    error handler. The launcher still starts and stops with the app's lifespan.

    ``session_params`` (a pydantic model) validates and documents the ``params`` a client may
    send when starting a session; by default any JSON object with identifier keys is passed
    to ``create_agent`` and ``join_call``.

    The same callbacks guard every route a plugin mounts, by default (WebRTC signaling and
    demo page: joining a call needs ``can_start_session`` for it; listing calls shows only the
    calls ``can_list_sessions`` allows; see `parley_server.plugin_guard`).

    ``video_track_override_dir``: ``params.video_track_override`` in a start request is refused
    unless this names a directory; then only files under it are accepted.

    ``start_sessions_on_demand`` lets plugin routes (e.g. a WebRTC offer for a call with no
    agent yet) start a session themselves; only the plugin route's own guard checks those
    starts (parley-webrtc's: ``can_start_session`` for the call), so it is off by default.
    """

    fast_api: FastAPI | None = None
    can_start_session: Permission = allow_all
    can_close_session: Permission = allow_all
    can_view_session: Permission = allow_all
    can_list_sessions: Permission = allow_all
    cors_allow_origins: Sequence[str] = ()
    cors_allow_methods: Sequence[str] = ("GET", "POST", "DELETE")
    cors_allow_headers: Sequence[str] = ("Authorization", "Content-Type")
    cors_allow_credentials: bool = False
    cors_max_age: int = 600
    max_body_bytes: int = 64 * 1024
    session_params: type[BaseModel] | None = None
    video_track_override_dir: str | os.PathLike[str] | None = None
    plugin_routes: bool = True
    start_sessions_on_demand: bool = False
    metrics: bool = True
    docs: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.cors_allow_origins, str):
            raise TypeError("cors_allow_origins must be a list of origins, not one string")
        self.cors_allow_origins = tuple(self.cors_allow_origins)
        self.cors_allow_methods = tuple(m.upper() for m in self.cors_allow_methods)
        self.cors_allow_headers = tuple(self.cors_allow_headers)
        origins = self.cors_allow_origins
        if "*" in origins:
            if len(origins) > 1:
                raise ValueError("cors_allow_origins: '*' allows every origin; list it alone")
            if self.cors_allow_credentials:
                raise ValueError(
                    "cors_allow_origins=['*'] cannot be combined with cors_allow_credentials=True: "
                    "browsers reject it, and it would let any website act with your users' "
                    "credentials. List the origins that may call the API instead"
                )
        for origin in origins:
            if origin != "*" and not _ORIGIN.match(origin):
                raise ValueError(
                    f"cors_allow_origins: {origin!r} is not an origin; write scheme://host[:port] "
                    "with no path or trailing slash, e.g. 'https://app.example.com'"
                )
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        for name in ("can_start_session", "can_close_session", "can_view_session"):
            if not callable(getattr(self, name)):
                raise TypeError(f"{name} must be a callable FastAPI dependency")
        if not callable(self.can_list_sessions):
            raise TypeError("can_list_sessions must be a callable FastAPI dependency")

    @property
    def open_access(self) -> bool:
        """True when no permission callback was set."""
        return all(
            callback is allow_all
            for callback in (
                self.can_start_session,
                self.can_close_session,
                self.can_view_session,
                self.can_list_sessions,
            )
        )
