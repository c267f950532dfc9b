"""Signaling on several nodes: a call hosted elsewhere is redirected to its node (in process).

Two `SessionRegistry` nodes share one in-memory store here; the two-process version over a real
Redis, with a browser and an aiortc client following the redirects, is
``tests/test_webrtc_multinode.py`` at the repository root.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from parley.launcher import CallSessionLimitExceeded, LauncherNotRunning, SessionLimitExceeded
from parley.registry import SessionRecord, SessionRegistry
from parley.store import StoreUnavailable
from parley.stores.memory import MemoryStore
from parley_webrtc.rooms import Rooms
from parley_webrtc.routes import create_router, node_base_url

OFFER = {
    "type": "offer",
    "sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\n"
    "a=fingerprint:sha-256 00:11\r\n",
}
Ensure = Callable[[str], Awaitable[None]]


async def node(
    registry: SessionRegistry | None, ensure_call: Ensure | None = None
) -> httpx.AsyncClient:
    app = FastAPI()
    app.include_router(create_router(Rooms(), registry=registry, ensure_call=ensure_call))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://node-b")


@pytest.fixture
async def registries() -> AsyncIterator[tuple[SessionRegistry, SessionRegistry]]:
    store = MemoryStore()
    a = SessionRegistry(store, "node-a", address="127.0.0.1:8001", auto_heartbeat=False)
    b = SessionRegistry(store, "node-b", address="http://127.0.0.1:8002", auto_heartbeat=False)
    yield a, b
    await store.aclose()


async def host(registry: SessionRegistry, call_id: str, session_id: str = "sess_1") -> None:
    await registry.reserve(call_id, session_id)
    await registry.register(call_id, session_id, state="listening")


async def test_signaling_for_a_call_on_another_node_is_redirected_there(
    registries: tuple[SessionRegistry, SessionRegistry],
) -> None:
    a, b = registries
    await host(a, "far")
    async with await node(b) as http:
        offer = await http.post("/webrtc/calls/far/offer", json=OFFER)
        assert offer.status_code == 307
        assert offer.headers["location"] == "http://127.0.0.1:8001/webrtc/calls/far/offer"
        for path, body in (("ice", {"candidate": None}), ("leave", None)):
            moved = await http.post(f"/webrtc/calls/far/participants/p1/{path}", json=body)
            assert moved.status_code == 307, path
            assert moved.headers["location"].endswith(f"/webrtc/calls/far/participants/p1/{path}")
        page = await http.get("/webrtc/?call=far&name=x")
        assert page.status_code == 307
        assert page.headers["location"] == "http://127.0.0.1:8001/webrtc/?call=far&name=x"

        # Bad requests are refused here, before anything is looked up or redirected.
        assert (await http.post("/webrtc/calls/far/offer", json={"sdp": "x"})).status_code == 400
        # A call nobody hosts, or one registered as hosted here but gone: 404, no loop.
        assert (await http.post("/webrtc/calls/none/offer", json=OFFER)).status_code == 404
        await host(b, "mine")
        assert (await http.post("/webrtc/calls/mine/offer", json=OFFER)).status_code == 404
        assert (await http.get("/webrtc/?call=none")).status_code == 200


async def test_a_node_without_a_usable_address_is_reported(
    registries: tuple[SessionRegistry, SessionRegistry],
) -> None:
    a, b = registries
    nameless = SessionRegistry(a.store, "node-c", address=":8000", auto_heartbeat=False)
    await host(nameless, "lost")
    async with await node(b) as http:
        refused = await http.post("/webrtc/calls/lost/offer", json=OFFER)
        assert refused.status_code == 421
        assert "node-c" in refused.json()["detail"] and "address" in refused.json()["detail"]
        assert (await http.get("/webrtc/?call=lost")).status_code == 200  # the page still loads


async def test_an_unreachable_registry_is_503(
    registries: tuple[SessionRegistry, SessionRegistry],
) -> None:
    _, b = registries

    async def down(call_id: str | None = None) -> list[SessionRecord]:
        raise StoreUnavailable("connection refused")

    b.list_sessions = down  # type: ignore[method-assign]
    async with await node(b) as http:
        failed = await http.post("/webrtc/calls/any/offer", json=OFFER)
        assert failed.status_code == 503 and "registry" in failed.json()["detail"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SessionLimitExceeded("this node runs its maximum of 2 sessions"), 429),
        (CallSessionLimitExceeded("call has its maximum of 1 sessions"), 429),
        (LauncherNotRunning("not admitting sessions: the launcher is draining"), 503),
    ],
)
async def test_starting_a_call_on_demand_reports_launcher_refusals(
    error: Exception, status: int
) -> None:
    async def ensure_call(call_id: str) -> None:
        raise error

    async with await node(None, ensure_call) as http:
        refused = await http.post("/webrtc/calls/new/offer", json=OFFER)
        assert refused.status_code == status
        assert str(error) in refused.json()["detail"]


async def test_another_node_winning_the_call_meanwhile_redirects(
    registries: tuple[SessionRegistry, SessionRegistry],
) -> None:
    a, b = registries

    async def ensure_call(call_id: str) -> None:
        await host(a, call_id)  # node A started the call first…
        raise CallSessionLimitExceeded("call 'race' already has its maximum of 1 sessions")

    async with await node(b, ensure_call) as http:
        moved = await http.post("/webrtc/calls/race/offer", json=OFFER)
        assert moved.status_code == 307
        assert moved.headers["location"] == "http://127.0.0.1:8001/webrtc/calls/race/offer"


@pytest.mark.parametrize(
    ("address", "url"),
    [
        ("10.0.0.7:8000", "http://10.0.0.7:8000"),
        ("https://agents.example.com/", "https://agents.example.com"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        (":8000", None),
        ("", None),
        (None, None),
        ("ftp://host", None),
        ("host:notaport", None),
    ],
)
def test_node_addresses(address: Any, url: str | None) -> None:
    assert node_base_url(address) == url
