"""Every route a plugin mounts goes through the ServeOptions permission callbacks by default."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, WebSocket
from fastapi.testclient import TestClient
from parley.plugins import hookimpl, plugin_manager
from parley_server import Runner, ServeOptions
from parley_server_testkit import fake_launcher, serving
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import WebSocketDenialResponse

PLUGIN = "parley-server-test-guarded-routes"


class _CarelessPlugin:
    """Mounts routes of every kind and guards none of them, but one it marks public."""

    @hookimpl
    def register_routes(self, app: FastAPI, context: Any) -> None:
        @app.get("/careless/calls/{call_id}/secret")
        async def call_secret(call_id: str) -> dict[str, str]:
            return {"secret": call_id}

        @app.get("/careless/page")
        async def page(call: str | None = None) -> dict[str, str | None]:
            return {"page": call}

        @app.get("/careless/everything")
        async def everything() -> dict[str, str]:
            return {"all": "calls"}

        router = APIRouter(prefix="/careless/router")

        @router.post("/calls/{call_id}/join")
        async def join(call_id: str) -> dict[str, str]:
            return {"joined": call_id}

        @router.get("/guarded/{call_id}", dependencies=[Depends(context.permissions.join_call)])
        async def guarded(call_id: str) -> dict[str, str]:
            return {"guarded": call_id}

        @router.get("/static.js", dependencies=[Depends(context.permissions.checks_itself)])
        async def static() -> dict[str, str]:
            return {"static": "ok"}

        app.include_router(router)
        trusted = APIRouter(prefix="/careless/included")

        @trusted.get("/calls/{call_id}/thing")
        async def thing(call_id: str) -> dict[str, str]:
            return {"thing": call_id}

        app.include_router(trusted, dependencies=[Depends(context.permissions.join_call)])

        async def raw(request: Request) -> PlainTextResponse:
            return PlainTextResponse("raw " + request.query_params.get("call", ""))

        app.router.routes.append(Route("/careless/raw", raw))
        sub = FastAPI()

        @sub.get("/inside")
        async def inside() -> dict[str, str]:
            return {"mounted": "yes"}

        app.mount("/careless/mounted", sub)


@pytest.fixture
def careless_plugin() -> Iterator[None]:
    plugin = _CarelessPlugin()
    manager = plugin_manager()
    manager.register(plugin, name=PLUGIN)
    try:
        yield
    finally:
        manager.unregister(plugin)


def only_call_a(call_id: str) -> bool:
    return call_id == "a"  # False (403) for every other call, and for routes with no call


def lister(call_id: str, request: Request) -> None:
    if request.headers.get("authorization") != "Bearer admin":
        raise HTTPException(401, "who are you?", headers={"WWW-Authenticate": "Bearer"})


async def test_unguarded_plugin_routes_get_the_servers_callbacks(careless_plugin: None) -> None:
    options = ServeOptions(can_start_session=only_call_a, can_list_sessions=lister)
    runner = Runner(fake_launcher(), options)
    async with serving(runner, lifespan=False) as client:
        # A call in the path: the right to join it (can_start_session).
        assert (await client.get("/careless/calls/a/secret")).json() == {"secret": "a"}
        denied = await client.get("/careless/calls/b/secret")
        assert denied.status_code == 403 and denied.json()["error"] == "forbidden"
        assert (await client.post("/careless/router/calls/a/join")).status_code == 200
        assert (await client.post("/careless/router/calls/b/join")).status_code == 403
        # A call in the query: the same right.
        assert (await client.get("/careless/page?call=a")).json() == {"page": "a"}
        assert (await client.get("/careless/page?call=b")).status_code == 403
        # No call at all: the right to list sessions; the callback's own 401 keeps its headers.
        refused = await client.get("/careless/page")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == "Bearer"
        admin = {"authorization": "Bearer admin"}
        assert (await client.get("/careless/everything", headers=admin)).status_code == 200
        assert (await client.get("/careless/everything")).status_code == 401
        # ASGI routes (a raw route, a mounted app) are wrapped with the same check.
        assert (await client.get("/careless/raw?call=a")).text == "raw a"
        raw = await client.get("/careless/raw?call=b")
        assert raw.status_code == 403 and raw.json()["error"] == "forbidden"
        assert (await client.get("/careless/mounted/inside")).status_code == 401
        inside = await client.get("/careless/mounted/inside", headers=admin)
        assert inside.json() == {"mounted": "yes"}


async def test_a_route_that_guards_itself_or_is_marked_public_is_left_alone(
    careless_plugin: None,
) -> None:
    calls: list[str] = []

    def counting(call_id: str) -> bool:
        calls.append(call_id)
        return call_id == "a"

    runner = Runner(fake_launcher(), ServeOptions(can_start_session=counting))
    async with serving(runner, lifespan=False) as client:
        assert (await client.get("/careless/router/guarded/a")).status_code == 200
        assert calls == ["a"]  # its own guard only: not asked twice
        assert (await client.get("/careless/router/guarded/b")).status_code == 403
        # Guarded where it was included: checked once, by that guard.
        calls.clear()
        assert (await client.get("/careless/included/calls/a/thing")).status_code == 200
        assert calls == ["a"]
        assert (await client.get("/careless/included/calls/b/thing")).status_code == 403
        # Marked `checks_itself`: no callback runs, though listing would be refused.
        calls.clear()
        assert (await client.get("/careless/router/static.js")).json() == {"static": "ok"}
        assert calls == []


async def test_the_session_api_is_not_guarded_twice(careless_plugin: None) -> None:
    asked: list[str] = []

    def listing(call_id: str) -> None:
        asked.append(call_id)

    runner = Runner(fake_launcher(), ServeOptions(can_list_sessions=listing))
    async with serving(runner, lifespan=False) as client:
        assert (await client.get("/calls/room/sessions")).status_code == 200
    assert asked == ["room"]


async def test_routes_added_after_the_plugins_are_not_touched(careless_plugin: None) -> None:
    runner = Runner(fake_launcher(), ServeOptions(can_list_sessions=lister))

    @runner.fast_api.get("/mine")
    async def mine() -> dict[str, str]:
        return {"mine": "yes"}

    async with serving(runner, lifespan=False) as client:
        assert (await client.get("/mine")).json() == {"mine": "yes"}


class _SocketPlugin:
    @hookimpl
    def register_routes(self, app: FastAPI, context: Any) -> None:
        router = APIRouter(prefix="/sockets")

        @router.websocket("/calls/{call_id}/live")
        async def live(websocket: WebSocket, call_id: str) -> None:
            await websocket.accept()
            await websocket.send_text(f"live {call_id}")
            await websocket.close()

        app.include_router(router)


async def test_websocket_routes_are_guarded_too() -> None:
    plugin = _SocketPlugin()
    manager = plugin_manager()
    manager.register(plugin, name=PLUGIN + "-ws")
    try:
        runner = Runner(fake_launcher(), ServeOptions(can_start_session=only_call_a))
    finally:
        manager.unregister(plugin)
    client = TestClient(runner.fast_api)
    with client.websocket_connect("/sockets/calls/a/live") as socket:
        assert socket.receive_text() == "live a"
    # The handshake is refused with the HTTP status (403), as for any other plugin route.
    with (
        pytest.raises(WebSocketDenialResponse) as refused,
        client.websocket_connect("/sockets/calls/b/live"),
    ):
        pass
    assert refused.value.status_code == 403
