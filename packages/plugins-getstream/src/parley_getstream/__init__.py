"""Parley's edge on Stream's video network (getstream.io), through Stream's Python SDK.

This entry module stays light: it registers the edge and its demo link route by name and
imports the SDK only when a class is used (``from parley.plugins import getstream;
getstream.Edge()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley_getstream.calls import JoinedCalls
    from parley_getstream.connection import StreamConnection
    from parley_getstream.credentials import StreamCredentials
    from parley_getstream.edge import StreamEdge
    from parley_getstream.errors import StreamError
    from parley_getstream.output import StreamAudioOutput
    from parley_getstream.routes import create_router

    Edge = StreamEdge

PARLEY_API = 1

__all__ = [
    "PARLEY_API",
    "Edge",
    "JoinedCalls",
    "StreamAudioOutput",
    "StreamConnection",
    "StreamCredentials",
    "StreamEdge",
    "StreamError",
    "create_router",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Edge": "parley_getstream.edge:StreamEdge",
        "StreamEdge": "parley_getstream.edge:StreamEdge",
        "StreamConnection": "parley_getstream.connection:StreamConnection",
        "StreamAudioOutput": "parley_getstream.output:StreamAudioOutput",
        "StreamCredentials": "parley_getstream.credentials:StreamCredentials",
        "StreamError": "parley_getstream.errors:StreamError",
        "JoinedCalls": "parley_getstream.calls:JoinedCalls",
        "create_router": "parley_getstream.routes:create_router",
    },
)


@hookimpl
def register_parts(register: Any) -> None:
    register(
        "edge",
        "getstream",
        "parley_getstream.edge:StreamEdge",
        # Audio in/out, custom events as data, video in with `video=True`: see
        # `StreamEdge.capabilities`. Its route is a demo link only; calls need no serving.
        capabilities={"network": "getstream.io", "video": True, "api_key": "STREAM_API_KEY"},
        description="Calls on Stream's video network (getstream.io), through Stream's SDK.",
        requires=("getstream", "getstream_rtc", "aiortc", "av", "numpy"),
    )


@hookimpl
def register_routes(app: Any, context: Any) -> None:
    """Mount the demo link route at ``/getstream`` and register it as the demo page.

    Read from ``context``: ``permissions`` (who may join a call) and ``add_demo_page``.
    """
    from parley_getstream.routes import DEMO_PAGE, create_router, serves

    app.include_router(create_router(permissions=getattr(context, "permissions", None)))
    add_demo_page = getattr(context, "add_demo_page", None)
    if add_demo_page is not None:
        # The Runner's `run` opens this page for the session's call: it leads to Stream's app.
        add_demo_page(DEMO_PAGE, "Stream demo", serves=serves)
