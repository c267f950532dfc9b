"""Parley's local WebRTC edge: the agent process is the peer, a browser talks to it directly.

This entry module stays light: it registers the edge and the signaling routes by name and
imports aiortc only when a class is used (``from parley.plugins import webrtc; webrtc.Edge()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley_webrtc.connection import WebRTCConnection
    from parley_webrtc.edge import WebRTCEdge
    from parley_webrtc.rooms import Rooms
    from parley_webrtc.routes import create_router

    Edge = WebRTCEdge

PARLEY_API = 1

__all__ = ["PARLEY_API", "Edge", "Rooms", "WebRTCConnection", "WebRTCEdge", "create_router"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Edge": "parley_webrtc.edge:WebRTCEdge",
        "WebRTCEdge": "parley_webrtc.edge:WebRTCEdge",
        "WebRTCConnection": "parley_webrtc.connection:WebRTCConnection",
        "Rooms": "parley_webrtc.rooms:Rooms",
        "create_router": "parley_webrtc.routes:create_router",
    },
)


@hookimpl
def register_parts(register: Any) -> None:
    register(
        "edge",
        "webrtc",
        "parley_webrtc.edge:WebRTCEdge",
        capabilities={"local": True, "routes": "/webrtc"},
        description="The agent process is the WebRTC peer (aiortc); browsers join directly.",
        requires=("aiortc", "fastapi"),
    )


@hookimpl
def register_routes(app: Any, context: Any) -> None:
    """Mount signaling and the demo page at ``/webrtc``.

    Optional attributes read from ``context``: ``webrtc_rooms`` (a `Rooms`; default: this
    process's), ``ensure_call`` (``async (call_id) -> None``: start an agent session for a
    call a browser asks for, when none is running), ``launcher`` (its ``registry`` finds the
    node hosting a call, for redirects between nodes), ``permissions`` (the server's permission
    callbacks: who may join and list calls) and ``add_demo_page``.
    """
    from parley_webrtc.routes import create_router, favicon_response

    launcher = getattr(context, "launcher", None)
    app.include_router(
        create_router(
            getattr(context, "webrtc_rooms", None),
            ensure_call=getattr(context, "ensure_call", None),
            registry=getattr(launcher, "registry", None),
            permissions=getattr(context, "permissions", None),
        )
    )
    if not any(getattr(route, "path", None) == "/favicon.ico" for route in app.routes):
        # Browsers ask the server root for it whatever the page says: answer, not 404.
        # A public asset: marked as checking itself, so the server's guard lets anyone fetch it.
        from fastapi import Depends

        marker = getattr(getattr(context, "permissions", None), "checks_itself", None)
        app.add_api_route(
            "/favicon.ico",
            favicon_response,
            include_in_schema=False,
            dependencies=[Depends(marker)] if marker is not None else None,
        )
    add_demo_page = getattr(context, "add_demo_page", None)
    if add_demo_page is not None:
        # The Runner's `run` opens this page for the session's call.
        add_demo_page("/webrtc/?call={call_id}", "WebRTC demo", serves=_on_webrtc)


def _on_webrtc(session: Any) -> bool:
    """The demo page joins only calls on this plugin's edge."""
    connection = getattr(session, "connection", None)
    edge = getattr(getattr(connection, "call", None), "edge", None)
    return type(edge).__module__.startswith("parley_webrtc")
