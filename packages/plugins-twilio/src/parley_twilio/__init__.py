"""Parley's telephony edge: phone calls through Twilio Media Streams.

This entry module stays light: it registers the edge and the routes by name and imports the
rest only when a class is used (``from parley.plugins import twilio; twilio.Edge()``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from parley.plugins.hookspecs import hookimpl
from parley.plugins.lazy import lazy_exports

if TYPE_CHECKING:
    from parley_twilio.connection import TwilioConnection
    from parley_twilio.edge import TwilioEdge
    from parley_twilio.events import DTMFReceived
    from parley_twilio.line import Lines
    from parley_twilio.routes import create_router
    from parley_twilio.settings import TwilioSettings

    Edge = TwilioEdge

PARLEY_API = 1

__all__ = [
    "PARLEY_API",
    "DTMFReceived",
    "Edge",
    "Lines",
    "TwilioConnection",
    "TwilioEdge",
    "TwilioSettings",
    "create_router",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Edge": "parley_twilio.edge:TwilioEdge",
        "TwilioEdge": "parley_twilio.edge:TwilioEdge",
        "TwilioConnection": "parley_twilio.connection:TwilioConnection",
        "DTMFReceived": "parley_twilio.events:DTMFReceived",
        "Lines": "parley_twilio.line:Lines",
        "TwilioSettings": "parley_twilio.settings:TwilioSettings",
        "create_router": "parley_twilio.routes:create_router",
    },
)


@hookimpl
def register_parts(register: Any) -> None:
    register(
        "edge",
        "twilio",
        "parley_twilio.edge:TwilioEdge",
        # Audio in/out, no video, no data channel: `TwilioEdge.capabilities` says so.
        capabilities={"telephony": True, "routes": "/twilio"},
        description="Phone calls through Twilio Media Streams (G.711 µ-law at 8 kHz).",
        requires=("fastapi", "httpx", "numpy"),
    )


@hookimpl
def register_routes(app: Any, context: Any) -> None:
    """Mount the webhook, the media stream and outbound calls at ``/twilio``.

    Read from ``context``: ``launcher`` (starts a session per call), ``permissions`` (who
    may place outbound calls) and, if a server provides it, ``twilio_settings``.
    """
    from parley_twilio.routes import create_router

    # An ordinary `include_router`, under the server's plugin-route guard: every route lists
    # `context.permissions.checks_itself` (Twilio's requests prove themselves with
    # X-Twilio-Signature; dialing out asks the permission callbacks in its handler).
    app.include_router(
        create_router(
            getattr(context, "launcher", None),
            settings=getattr(context, "twilio_settings", None),
            permissions=getattr(context, "permissions", None),
        )
    )
