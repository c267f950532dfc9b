"""The room `JobContext.connect` makes with the default edge: served on a local port by
parley-server, its URL printed, joinable only with the room's ``auth_token``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from parley import JobContext, RoomOptions
from parley.testing import until
from parley_webrtc.rooms import Rooms
from webrtc_client import ClientPeer

TOKEN = "s3cret-token"


@pytest.fixture
def free_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_PORT", "0")
    monkeypatch.setenv("PARLEY_NO_BROWSER", "1")


async def connecting(ctx: JobContext) -> AsyncIterator[asyncio.Task[object]]:
    task: asyncio.Task[object] = asyncio.create_task(ctx.connect())
    await until(lambda: ctx.room_url is not None or task.done(), what="the room's URL")
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ctx.shutdown()


async def test_the_room_is_served_with_its_url_printed_and_people_can_join(
    free_port: None, capsys: pytest.CaptureFixture[str]
) -> None:
    from parley.plugins import resolve

    edge = resolve("edge", "webrtc", rooms=Rooms(), loopback=True)
    ctx = JobContext(room_options=RoomOptions(room_id="served-room", name="Bot", edge=edge))
    async for task in connecting(ctx):
        printed = capsys.readouterr().out.strip().splitlines()
        assert printed == [f"Talk to the agent: {ctx.room_url}"]
        url = urlsplit(ctx.room_url or "")
        assert url.path == "/webrtc/" and parse_qs(url.query) == {"call": ["served-room"]}
        base = f"{url.scheme}://{url.netloc}"
        async with httpx.AsyncClient(base_url=base) as http:
            page = await http.get(f"/webrtc/?{url.query}")
            assert page.status_code == 200 and "parley" in page.text.lower()
            await asyncio.wait_for(task, 30)  # connect does not wait for anyone
            waiting = asyncio.create_task(ctx.wait_for_participant())
            await asyncio.sleep(0.05)
            assert not waiting.done()  # nobody joined yet
            peer = ClientPeer(http, "served-room")
            try:
                assert (await peer.offer()).status_code == 200
                await peer.wait_connected()
                await asyncio.wait_for(waiting, 30)
            finally:
                await peer.close()
    url = urlsplit(ctx.room_url or "")
    async with httpx.AsyncClient(base_url=f"{url.scheme}://{url.netloc}") as http:
        with pytest.raises(httpx.ConnectError):
            await http.get("/webrtc/")  # shutdown stopped the page


async def test_only_the_rooms_token_lets_a_participant_in(free_port: None) -> None:
    from parley.plugins import resolve

    rooms = Rooms()
    edge = resolve("edge", "webrtc", rooms=rooms, loopback=True)
    options = RoomOptions(room_id="secret-room", auth_token=TOKEN, vision=True, edge=edge)
    ctx = JobContext(room_options=options)
    async for task in connecting(ctx):
        url = urlsplit(ctx.room_url or "")
        assert parse_qs(url.query) == {"call": ["secret-room"], "token": [TOKEN], "camera": ["1"]}
        base = f"{url.scheme}://{url.netloc}"
        room = rooms.get("secret-room")
        assert room is not None
        for params in ({}, {"token": "wrong"}):
            async with httpx.AsyncClient(base_url=base, params=params) as http:
                page = await http.get("/webrtc/", params={"call": "secret-room", **params})
                assert page.status_code == 403
                assert (await http.get("/webrtc/calls")).json() == {"calls": []}
                stranger = ClientPeer(http, "secret-room")
                try:
                    refused = await stranger.offer()
                finally:
                    await stranger.close()
                assert refused.status_code == 403, refused.text
                assert "token" in refused.json()["detail"]
                assert room.peers == {}  # no slot taken
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base, headers=bearer) as http:
            assert (await http.get("/webrtc/calls")).json()["calls"][0]["call_id"] == "secret-room"
        async with httpx.AsyncClient(base_url=base, params={"token": TOKEN}) as http:
            page = await http.get("/webrtc/", params={"call": "secret-room", "token": TOKEN})
            assert page.status_code == 200
            guest = ClientPeer(http, "secret-room", video=True)
            try:
                assert (await guest.offer()).status_code == 200
                await guest.wait_connected()
                await asyncio.wait_for(task, 30)
                assert (await guest.leave()).status_code == 200
            finally:
                await guest.close()


async def test_a_busy_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from parley.plugins import resolve

    blocker = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = blocker.sockets[0].getsockname()[1]
    monkeypatch.setenv("PARLEY_PORT", str(port))
    rooms = Rooms()
    edge = resolve("edge", "webrtc", rooms=rooms)
    ctx = JobContext(room_options=RoomOptions(room_id="busy", edge=edge))
    try:
        with pytest.raises(RuntimeError, match="PARLEY_PORT"):
            await ctx.connect()
    finally:
        blocker.close()
        await blocker.wait_closed()
    assert rooms.get("busy") is None  # the agent left the room it could not serve


async def test_without_parley_server_the_error_names_it(
    free_port: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import parley.plugins
    from parley.plugins import resolve

    real = parley.plugins.call_hook
    monkeypatch.setattr(
        parley.plugins,
        "call_hook",
        lambda name, **kw: [] if name == "serve_room" else real(name, **kw),
    )
    rooms = Rooms()
    edge = resolve("edge", "webrtc", rooms=rooms)
    ctx = JobContext(room_options=RoomOptions(room_id="alone", edge=edge))
    with pytest.raises(RuntimeError, match="parley-server"):
        await ctx.connect()
    assert rooms.get("alone") is None
