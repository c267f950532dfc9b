"""``GET /getstream/join/{call_id}``: the demo link of a call, as a redirect to Stream's demo app.

The Runner opens a page of this server (`add_demo_page`); this route turns it into Stream's
demo join link for the call, with a token minted at that moment, so no token is printed in
the console or kept in a browser's history of this server.
"""

# No ``from __future__ import annotations``: FastAPI reads the handler's signature at runtime.

from typing import Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import RedirectResponse

from parley_getstream.calls import JoinedCalls, joined_calls
from parley_getstream.errors import StreamError

PREFIX = "/getstream"
DEMO_PAGE = PREFIX + "/join/{call_id}"


def create_router(calls: JoinedCalls | None = None, permissions: Any = None) -> APIRouter:
    """The demo link route. ``permissions`` (the server's `RouteContext.permissions`): who
    may join a call (``join_call``, the right to start a session on it)."""
    found = calls if calls is not None else joined_calls
    router = APIRouter(prefix=PREFIX, tags=["getstream"])
    guard = [Depends(permissions.join_call)] if permissions is not None else []

    @router.get("/join/{call_id}", dependencies=guard, response_class=RedirectResponse)
    async def join_call(call_id: str) -> RedirectResponse:
        connection = found.get(call_id)
        if connection is None or connection.closed:
            raise HTTPException(404, f"no agent of this server is on Stream call {call_id!r}")
        edge = connection.call.edge
        try:
            link = await edge.demo_link(call_id)  # type: ignore[attr-defined]
        except StreamError as exc:
            raise HTTPException(502, str(exc)) from exc
        return RedirectResponse(link, status_code=307)

    return router


def serves(session: Any) -> bool:
    """The demo link joins only calls on this plugin's edge."""
    connection = getattr(session, "connection", None)
    edge = getattr(getattr(connection, "call", None), "edge", None)
    return type(edge).__module__.startswith("parley_getstream")
