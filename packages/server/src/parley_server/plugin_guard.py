"""Every route a plugin mounts is guarded by the `ServeOptions` permission callbacks, by default.

While plugins run ``register_routes(app, context)``, the app's router carries one extra
dependency, so each route they add through FastAPI (``include_router``, ``add_api_route``,
``@app.get``…) gets it; ASGI routes they add (``app.mount``, ``app.add_route``) are wrapped.
At request time the guard leaves alone a route that lists one of `Permissions`' dependencies
itself (``Depends(context.permissions.join_call)``, ``checks_itself``…), or whose router was
included with one (``app.include_router(router, dependencies=[...])``). Any other route asks:

- with a call in its path (``{call_id}``) or query (``?call=``): the right to join that call
  (``can_start_session``);
- otherwise: the right to list sessions (``can_list_sessions``) with call id ``""``.

A plugin that forgets its guard thus fails closed for callbacks that refuse by default.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, APIWebSocketRoute
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import ASGIApp, Receive, Scope, Send

from parley_server.errors import ApiError, error_code, error_response
from parley_server.permissions import Permissions


class PluginRouteGuard:
    def __init__(self, permissions: Permissions) -> None:
        self.permissions = permissions
        self._guards_itself: dict[int, bool] = {}  # by route id; routes live as long as the app

    async def __call__(self, request: HTTPConnection) -> None:
        route = request.scope.get("route")
        if route is not None and self.guards_itself(route):
            return
        await self.check(request)

    async def check(self, request: HTTPConnection) -> None:
        call_id = request.path_params.get("call_id") or request.query_params.get("call") or ""
        right = "join_call" if call_id else "list_sessions"
        await self.permissions.require(request, right, str(call_id))

    def guards_itself(self, route: Any) -> bool:
        known = self._guards_itself.get(id(route))
        if known is None:
            dependant = getattr(route, "dependant", None)
            known = dependant is not None and self._lists_marker(dependant)
            self._guards_itself[id(route)] = known
        return known

    def trust_router(self, router: Any) -> None:
        """Every route of ``router`` (included with a guard of its own) guards itself:
        FastAPI keeps ``include_router(..., dependencies=...)`` outside the route we see."""
        for route in getattr(router, "routes", ()):
            self._guards_itself[id(route)] = True
            self.trust_router(getattr(route, "original_router", None))

    def _lists_marker(self, dependant: Dependant) -> bool:
        return any(
            sub.call in self.permissions.markers or self._lists_marker(sub)
            for sub in dependant.dependencies
        )

    def wrap(self, app: ASGIApp) -> ASGIApp:
        """An ASGI app (a mount, a raw route) behind the same check."""

        async def guarded(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] in ("http", "websocket"):
                try:
                    await self.check(
                        Request(scope, receive)
                        if scope["type"] == "http"
                        else HTTPConnection(scope)
                    )
                except HTTPException as exc:
                    if scope["type"] == "websocket":
                        await send({"type": "websocket.close", "code": 1008})
                        return
                    error = exc.error if isinstance(exc, ApiError) else error_code(exc.status_code)
                    headers = dict(exc.headers) if exc.headers else None
                    response = error_response(exc.status_code, error, str(exc.detail), headers)
                    await response(scope, receive, send)
                    return
            await app(scope, receive, send)

        return guarded


@contextlib.contextmanager
def guarding_plugin_routes(app: FastAPI, permissions: Permissions) -> Iterator[PluginRouteGuard]:
    """Guard what plugins add to ``app`` inside this block (see the module docstring)."""
    guard = PluginRouteGuard(permissions)
    router = app.router
    before: list[BaseRoute] = list(router.routes)
    saved = router.dependencies
    router.dependencies = [*saved, Depends(guard)]
    include_router = app.include_router

    def including(included: Any, *args: Any, **options: Any) -> None:
        dependencies = options.get("dependencies") or ()
        if any(getattr(d, "dependency", None) in permissions.markers for d in dependencies):
            guard.trust_router(included)
        include_router(included, *args, **options)

    app.include_router = including  # type: ignore[method-assign,assignment]
    try:
        yield guard
    finally:
        del app.include_router  # the method again
        router.dependencies = saved
        known = {id(route) for route in before}
        for route in router.routes:
            fastapi_route = isinstance(route, APIRoute | APIWebSocketRoute)
            if (
                id(route) not in known
                and isinstance(route, Mount | Route | WebSocketRoute)
                and not fastapi_route
            ):
                route.app = guard.wrap(route.app)
