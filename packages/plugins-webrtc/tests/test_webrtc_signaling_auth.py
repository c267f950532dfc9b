"""Signaling behind a Runner (issue 16): the server's permission callbacks guard every WebRTC
route by default, malformed offers never take a slot, and a peer that never connects gives
its slot back.

Each case checks the status, the call's participants (no slot left taken) and, at the end,
that the session closes and nothing is left running.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from fastapi import Header, HTTPException
from parley import Agent, AgentLauncher
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, until
from parley_server import Runner, ServeOptions
from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.rooms import Rooms, default_rooms
from webrtc_client import ClientPeer

ALICE = {"Authorization": "Bearer alice"}
MALLORY = {"Authorization": "Bearer mallory"}


def alice_only(call_id: str, authorization: str | None = Header(default=None)) -> bool:
    """Raises 401 for anonymous requests and returns False (403) for anyone but Alice."""
    if authorization is None:
        raise HTTPException(401, "send Authorization: Bearer <token>")
    return authorization == "Bearer alice"


@dataclass
class Served:
    launcher: AgentLauncher
    rooms: Rooms
    anonymous: httpx.AsyncClient
    alice: httpx.AsyncClient
    mallory: httpx.AsyncClient

    def room(self, call_id: str) -> WebRTCConnection:
        room = self.rooms.get(call_id)
        assert room is not None
        return room


@pytest.fixture
async def served() -> AsyncIterator[Callable[..., Any]]:
    opened: list[tuple[Any, Any, list[httpx.AsyncClient]]] = []

    async def serve(**edge_options: Any) -> Served:
        async def create_agent(**params: Any) -> Agent:
            return Agent(
                "test",
                edge=WebRTCEdge(**edge_options),
                llm=FakeLLM(["Hello."]),
                tts=FakeTTS(),
                stt=FakeSTT(None),
                vad=FakeVAD(),
            )

        async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
            async with agent.join(await agent.create_call(call_type, call_id)):
                await agent.finish()

        launcher = AgentLauncher(create_agent, join_call, warm_up=False, drain_timeout=0.2)
        options = ServeOptions(
            can_start_session=alice_only,
            can_close_session=alice_only,
            can_view_session=alice_only,
            can_list_sessions=alice_only,
        )
        runner = Runner(launcher, options)
        app = runner.fast_api
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        transport = httpx.ASGITransport(app=app)
        clients = [
            httpx.AsyncClient(transport=transport, base_url="http://edge", headers=headers)
            for headers in ({}, ALICE, MALLORY)
        ]
        opened.append((lifespan, launcher, clients))
        return Served(launcher, default_rooms, *clients)

    yield serve
    for lifespan, launcher, clients in opened:
        for client in clients:
            await client.aclose()
        await lifespan.__aexit__(None, None, None)
        stats = launcher.stats()
        assert (stats.running, stats.starting) == (0, 0)
    assert list(default_rooms) == []


async def start(served: Served, call_id: str) -> WebRTCConnection:
    started = await served.alice.post(f"/calls/{call_id}/sessions", json={})
    assert started.status_code == 201, started.text
    return served.room(call_id)


async def offer_sdp(kinds: tuple[str, ...] = ("audio",)) -> str:
    probe = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    for kind in kinds:
        probe.addTransceiver(kind)
    probe.createDataChannel("parley")
    await probe.setLocalDescription(await probe.createOffer())
    sdp: str = probe.localDescription.sdp
    await probe.close()
    return sdp


# --- permissions -----------------------------------------------------------------------------


async def test_signaling_goes_through_the_servers_permission_callbacks(
    served: Callable[..., Any],
) -> None:
    s: Served = await served()
    room = await start(s, "private")
    sdp = await offer_sdp()
    offer = "/webrtc/calls/private/offer"

    assert (await s.anonymous.get("/webrtc/calls")).json() == {"calls": []}
    assert (await s.mallory.get("/webrtc/calls")).json() == {"calls": []}
    listed = (await s.alice.get("/webrtc/calls")).json()["calls"]
    assert [c["call_id"] for c in listed] == ["private"]

    assert (await s.anonymous.post(offer, json={"sdp": sdp})).status_code == 401
    assert (await s.mallory.post(offer, json={"sdp": sdp})).status_code == 403
    for route in ("ice", "leave"):
        url = f"/webrtc/calls/private/participants/nobody/{route}"
        assert (await s.anonymous.post(url, json={})).status_code == 401
        assert (await s.mallory.post(url, json={})).status_code == 403
    assert (await s.anonymous.get("/webrtc/?call=private")).status_code == 403
    assert (await s.mallory.get("/webrtc/?call=private")).status_code == 403
    assert (await s.alice.get("/webrtc/?call=private")).status_code == 200
    assert (await s.anonymous.post("/webrtc/calls/Not%20Valid/offer", json={})).status_code == 400
    assert room.peers == {}  # nobody refused took a slot

    peer = ClientPeer(s.alice, "private", clip=None)
    try:
        assert (await peer.offer()).status_code == 200
        assert len(room.peers) == 1
        assert (await peer.leave()).status_code == 200
    finally:
        await peer.close()
    assert room.peers == {}


# --- malformed offers ------------------------------------------------------------------------


def _mline_port(sdp: str, port: str) -> str:
    return re.sub(r"^m=audio \d+", f"m=audio {port}", sdp, count=1, flags=re.M)


MALFORMED: list[tuple[str, Callable[[str], str], str]] = [
    ("fingerprint", lambda sdp: re.sub(r"a=fingerprint:\S+", "a=fingerprint:md5", sdp), "md5"),
    ("port", lambda sdp: _mline_port(sdp, "99999999999"), "media line"),
    ("nul", lambda sdp: sdp.replace("a=ice-ufrag:", "a=ice-ufrag:\x00"), "control characters"),
    ("garbage", lambda sdp: "v=0\r\n" + "m=\x7f\r\n" * 3, "control characters"),
    ("junk", lambda sdp: "v=0\r\nm=audio 9 x\r\nzzz", "ICE credentials"),
    ("candidate", lambda sdp: sdp + "a=candidate:1 1 udp 1 1.2.3.4 99999999 typ host\r\n", "ICE"),
]


@pytest.mark.parametrize(("name", "mangle", "detail"), MALFORMED, ids=[m[0] for m in MALFORMED])
async def test_a_malformed_offer_is_400_and_takes_no_slot(
    served: Callable[..., Any], name: str, mangle: Callable[[str], str], detail: str
) -> None:
    s: Served = await served(max_participants=1)
    room = await start(s, "strict")
    response = await s.alice.post(
        "/webrtc/calls/strict/offer", json={"sdp": mangle(await offer_sdp())}
    )
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("malformed SDP offer")
    assert detail in response.json()["detail"]
    assert room.peers == {}


async def test_a_video_only_offer_is_400(served: Callable[..., Any]) -> None:
    s: Served = await served()
    room = await start(s, "video")
    response = await s.alice.post(
        "/webrtc/calls/video/offer", json={"sdp": await offer_sdp(("video",))}
    )
    assert response.status_code == 400
    assert "no audio section" in response.json()["detail"]
    assert room.peers == {}


# --- a peer that never connects -------------------------------------------------------------


async def test_a_peer_that_never_connects_gives_its_slot_back(served: Callable[..., Any]) -> None:
    s: Served = await served(max_participants=1, connect_timeout=0.5)
    room = await start(s, "ghost")
    first = await s.alice.post("/webrtc/calls/ghost/offer", json={"sdp": await offer_sdp()})
    assert first.status_code == 200  # the answer is never applied: no connection ever comes
    assert len(room.peers) == 1
    full = await s.alice.post("/webrtc/calls/ghost/offer", json={"sdp": await offer_sdp()})
    assert full.status_code == 429
    await until(lambda: room.peers == {}, what="the silent peer's slot to be released")
    again = await s.alice.post("/webrtc/calls/ghost/offer", json={"sdp": await offer_sdp()})
    assert again.status_code == 200


def test_the_default_connect_timeout_is_a_few_seconds() -> None:
    assert WebRTCEdge().settings.connect_timeout <= 5.0
