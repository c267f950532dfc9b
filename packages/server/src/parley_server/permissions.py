"""The `ServeOptions` permission callbacks as enforced dependencies, for the session API and
for every route a plugin mounts (`RouteContext.permissions`).

A callback refuses by raising ``HTTPException(401 | 403)`` or by returning ``False`` (403);
any other return value allows.
"""

# No ``from __future__ import annotations``: FastAPI reads `enforced`'s signature at runtime.

import inspect
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request, WebSocket
from fastapi.dependencies.utils import get_dependant, solve_dependencies
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from parley_server.errors import ApiError

if TYPE_CHECKING:
    from parley_server.options import Permission, ServeOptions


def enforced(permission: "Permission", right: str) -> "Permission":
    """A dependency that runs ``permission`` (with its own parameters) and answers 403 when
    it returns ``False``."""

    async def check(allowed: Annotated[Any, Depends(permission)]) -> None:
        if allowed is False:
            raise ApiError(403, "forbidden", f"not allowed to {right}")

    return check


class Permissions:
    """The four rights of the session API as dependencies a route lists in ``dependencies=``.

    ``join_call`` (a browser joining a call through a plugin's signaling or demo page) is the
    right to start a session on that call. ``allows(request, right, call_id)`` checks a right
    for a call that is not in the route's path (e.g. filtering ``GET /webrtc/calls``).
    """

    def __init__(self, options: "ServeOptions") -> None:
        self._callbacks = {
            "start_session": options.can_start_session,
            "close_session": options.can_close_session,
            "view_session": options.can_view_session,
            "list_sessions": options.can_list_sessions,
        }
        self.start_session = enforced(options.can_start_session, "start a session on this call")
        self.close_session = enforced(options.can_close_session, "close this session")
        self.view_session = enforced(options.can_view_session, "view this session")
        self.list_sessions = enforced(options.can_list_sessions, "list this call's sessions")
        self.join_call = self.start_session
        # The dependencies that mark a route as guarded (see `guards_itself`).
        self.markers = frozenset(
            {
                self.start_session,
                self.close_session,
                self.view_session,
                self.list_sessions,
                self.checks_itself,
            }
        )

    @staticmethod
    def checks_itself() -> None:
        """A marker a plugin route lists when it checks rights in its handler (with `allows`)
        or serves nothing private (static files): the default guard then leaves it alone."""

    async def allows(self, request: HTTPConnection, right: str, call_id: str) -> bool:
        """Whether the callback for ``right`` (``"list_sessions"``…) allows this request on
        ``call_id``: False when it raises an HTTP error or returns False."""
        try:
            await self.require(request, right, call_id)
        except HTTPException:
            return False
        return True

    async def require(self, request: HTTPConnection, right: str, call_id: str) -> None:
        """Raise the callback's own HTTP error (401 with its headers, …), or 403 when it
        returns False or cannot read what it needs from the request. For a WebSocket, the
        callback sees the handshake (declare ``HTTPConnection``, not ``Request``, to read it)."""
        permission = self._callbacks["start_session" if right == "join_call" else right]
        dependant = get_dependant(path="/calls/{call_id}", call=permission)
        async with AsyncExitStack() as stack:
            # A probe request of its own: the callback's `yield` dependencies end with the check.
            scope = {
                **request.scope,
                "path_params": {**request.path_params, "call_id": call_id},
                "fastapi_inner_astack": stack,
                "fastapi_function_astack": stack,
            }
            probe: Request | WebSocket
            if scope["type"] == "websocket":
                probe = WebSocket(scope, _no_messages, _no_messages)
            else:
                probe = Request(scope, getattr(request, "receive", _no_messages))
            solved = await solve_dependencies(
                request=probe,
                dependant=dependant,
                async_exit_stack=stack,
                embed_body_fields=False,
            )
            if solved.errors:
                raise ApiError(403, "forbidden", f"not allowed to {_RIGHTS[right]}")
            if inspect.iscoroutinefunction(permission):
                result = await permission(**solved.values)
            else:  # as FastAPI runs a sync dependency: off the event loop
                result = await run_in_threadpool(permission, **solved.values)
        if result is False:
            raise ApiError(403, "forbidden", f"not allowed to {_RIGHTS[right]}")


async def _no_messages(*_: Any) -> Any:
    raise RuntimeError("a permission callback cannot read or send WebSocket messages")


_RIGHTS = {
    "start_session": "start a session on this call",
    "join_call": "join this call",
    "close_session": "close this session",
    "view_session": "view this session",
    "list_sessions": "list this call's sessions",
}
