"""Signaling routes and the edge with a Python aiortc participant (no browser needed)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import numpy as np
import parley_webrtc
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, VideoStreamTrack
from fastapi import FastAPI
from parley.edge import (
    ConnectionClosed,
    DataReceived,
    Participant,
    ParticipantJoined,
    ParticipantLeft,
    User,
)
from parley.frames import AudioFrame
from parley.testing import until
from parley.testing.signals import tone_frames
from parley_webrtc import inline_decode
from parley_webrtc.connection import WebRTCConnection
from parley_webrtc.edge import WebRTCEdge
from parley_webrtc.rooms import Rooms
from parley_webrtc.routes import create_router
from webrtc_client import ClientPeer

E = TypeVar("E")
TONE = next(tone_frames(1.0, 48000, frequency=300, frame_duration=1.0))


@dataclass
class Agent:
    edge: WebRTCEdge
    connection: WebRTCConnection
    http: httpx.AsyncClient
    events: list[object] = field(default_factory=list)

    async def event(self, kind: type[E]) -> E:
        found = await until(
            lambda: next((e for e in self.events if isinstance(e, kind)), None),
            what=f"a {kind.__name__} event",
        )
        return found


@pytest.fixture
async def make_agent() -> AsyncIterator[Callable[..., Any]]:
    edges: list[WebRTCEdge] = []
    clients: list[httpx.AsyncClient] = []

    async def make(call_id: str = "c1", **edge_options: Any) -> Agent:
        rooms = Rooms()
        max_participants = edge_options.pop("call_max_participants", None)
        edge = WebRTCEdge(rooms=rooms, **edge_options)
        options = {} if max_participants is None else {"max_participants": max_participants}
        call = await edge.create_call("default", call_id, **options)
        connection = await edge.join(call, User("Agent", "agent"))
        app = FastAPI()
        app.include_router(create_router(rooms))
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge")
        agent = Agent(edge, connection, http)
        connection.events.subscribe(agent.events.append)
        edges.append(edge)
        clients.append(http)
        return agent

    yield make
    for edge in edges:
        await edge.aclose()
    for client in clients:
        await client.aclose()


@pytest.fixture
async def agent(make_agent: Callable[..., Any]) -> Agent:
    result: Agent = await make_agent()
    return result


@pytest.fixture
async def peers() -> AsyncIterator[list[ClientPeer]]:
    made: list[ClientPeer] = []
    yield made
    for peer in made:
        await peer.close()


def client(agent: Agent, peers: list[ClientPeer], clip: AudioFrame | None = TONE) -> ClientPeer:
    peer = ClientPeer(agent.http, agent.connection.call.call_id, clip=clip)
    peers.append(peer)
    return peer


# --- validation ------------------------------------------------------------------------------

GOOD_HEAD = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"


@pytest.mark.parametrize(
    ("kwargs", "status", "detail"),
    [
        ({"content": "sdp", "headers": {"content-type": "text/plain"}}, 415, "application/json"),
        ({"content": b"{", "headers": {"content-type": "application/json"}}, 400, "not valid JSON"),
        ({"json": {"type": "offer"}}, 400, "sdp: Field required"),
        ({"json": {"type": "answer", "sdp": "v=0"}}, 400, "type"),
        ({"json": {"sdp": "hello"}}, 400, "must start with the line 'v=0'"),
        ({"json": {"sdp": GOOD_HEAD}}, 400, "no media section"),
        ({"json": {"sdp": GOOD_HEAD + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"}}, 400, "ICE"),
        ({"json": {"sdp": "x" * 70_000}}, 413, "limit"),
    ],
)
async def test_bad_offers_get_clear_4xx_errors(
    agent: Agent, kwargs: dict[str, Any], status: int, detail: str
) -> None:
    response = await agent.http.post("/webrtc/calls/c1/offer", **kwargs)
    assert response.status_code == status
    assert detail in response.json()["detail"]


async def test_an_offer_aiortc_cannot_apply_is_a_400(agent: Agent) -> None:
    probe = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    probe.addTransceiver("audio")
    await probe.setLocalDescription(await probe.createOffer())
    sdp = probe.localDescription.sdp.replace("a=rtpmap:96", "a=rtpmap:xx")
    await probe.close()
    response = await agent.http.post("/webrtc/calls/c1/offer", json={"sdp": sdp})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("malformed SDP offer: ValueError")
    assert agent.connection.peers == {}


async def test_unknown_call_is_404(agent: Agent, peers: list[ClientPeer]) -> None:
    peer = ClientPeer(agent.http, "nope", clip=None)
    peers.append(peer)
    response = await peer.offer()
    assert response.status_code == 404
    assert "unknown call 'nope'" in response.json()["detail"]


async def test_a_full_call_refuses_with_429_until_someone_leaves(
    make_agent: Callable[..., Any], peers: list[ClientPeer]
) -> None:
    agent = await make_agent(call_max_participants=1)
    first = client(agent, peers)
    assert (await first.offer()).status_code == 200
    second = client(agent, peers)
    response = await second.offer()
    assert response.status_code == 429
    assert "limit" in response.json()["detail"]
    assert (await first.leave()).status_code == 200
    third = client(agent, peers)
    assert (await third.offer()).status_code == 200


async def test_leave_and_ice_for_unknown_participants_are_404(agent: Agent) -> None:
    leave = await agent.http.post("/webrtc/calls/c1/participants/ghost/leave")
    assert leave.status_code == 404
    ice = await agent.http.post("/webrtc/calls/c1/participants/ghost/ice", json={"candidate": None})
    assert ice.status_code == 404


async def test_trickled_ice_candidates(agent: Agent, peers: list[ClientPeer]) -> None:
    peer = client(agent, peers)
    assert (await peer.offer()).status_code == 200
    url = f"/webrtc/calls/c1/participants/{peer.participant_id}/ice"
    good = "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host"
    response = await agent.http.post(url, json={"candidate": good, "sdpMid": "0"})
    assert response.status_code == 200
    bad = await agent.http.post(url, json={"candidate": "candidate:oops", "sdpMid": "0"})
    assert bad.status_code == 400
    assert "malformed ICE candidate" in bad.json()["detail"]
    done = await agent.http.post(url, json={"candidate": None})
    assert done.status_code == 200


# --- a whole call ----------------------------------------------------------------------------


async def test_call_carries_audio_and_data_both_ways(agent: Agent, peers: list[ClientPeer]) -> None:
    connection = agent.connection
    heard: list[tuple[Participant, AudioFrame]] = []

    async def listen() -> None:
        async for item in connection.audio_input():
            heard.append(item)

    listening = asyncio.ensure_future(listen())
    peer = client(agent, peers)
    assert (await peer.offer()).status_code == 200
    await peer.wait_connected()
    joined = await agent.event(ParticipantJoined)
    assert joined.participant.id == peer.participant_id
    assert joined.participant.user.name == "bot"

    await connection.audio_output.write(TONE)
    await connection.send_data({"type": "state", "state": "speaking"})
    await connection.send_data(
        {"type": "transcript", "role": "agent", "text": "hi"}, to=peer.participant_id
    )
    peer.send({"type": "text", "text": "hello"})
    peer.send({"type": "ping"})
    await until(
        lambda: len(heard) >= 40 and peer.loud_frames_received >= 40 and len(peer.messages) >= 2,
        what="audio both ways and two data messages",
    )
    rms = [frame.rms() for _, frame in heard[10:40]]
    assert min(rms) == pytest.approx(0.3 / np.sqrt(2), rel=0.2)
    assert {(f.sample_rate, f.channels, f.samples) for _, f in heard} == {(48000, 1, 960)}
    state, transcript = peer.messages
    assert state == {"type": "state", "state": "speaking"}
    # The edge adds what the page needs to time the words (see WebRTCConnection.annotate).
    assert transcript.items() >= {"type": "transcript", "role": "agent", "text": "hi"}.items()
    assert {"playout_ms", "interrupted"} <= transcript.keys()
    peer_on_agent = connection.peer(peer.participant_id or "")
    assert peer_on_agent is not None
    assert peer_on_agent.inline_audio  # aiortc's decoder thread is bypassed (see inline_decode)
    received = await agent.event(DataReceived)
    assert received.message == {"type": "text", "text": "hello"}
    assert [e for e in agent.events if isinstance(e, DataReceived)] == [received]  # no ping

    with pytest.raises(KeyError, match="no participant"):
        await connection.send_data({"type": "x"}, to="ghost")
    assert (await peer.leave()).status_code == 200
    left = await agent.event(ParticipantLeft)
    assert left.participant.id == peer.participant_id
    assert connection.humans() == []

    await connection.leave()
    await asyncio.wait_for(listening, 5)  # audio_input ends when the agent leaves
    assert isinstance(agent.events[-1], ConnectionClosed)


async def test_a_silent_participant_is_dropped_after_the_liveness_timeout(
    make_agent: Callable[..., Any], peers: list[ClientPeer]
) -> None:
    agent = await make_agent(liveness_timeout=1.0)
    peer = client(agent, peers, clip=None)  # no microphone, never sends on the data channel
    assert (await peer.offer()).status_code == 200
    await agent.event(ParticipantJoined)
    left = await agent.event(ParticipantLeft)
    assert left.participant.id == peer.participant_id
    assert agent.connection.peers == {}


async def test_a_participant_that_hangs_up_without_leave_is_removed(
    agent: Agent, peers: list[ClientPeer]
) -> None:
    peer = client(agent, peers)
    assert (await peer.offer()).status_code == 200
    await agent.event(ParticipantJoined)
    await peer.pc.close()
    left = await agent.event(ParticipantLeft)
    assert left.participant.id == peer.participant_id


async def test_agent_leaving_says_bye_and_ends_the_call(
    agent: Agent, peers: list[ClientPeer]
) -> None:
    peer = client(agent, peers)
    assert (await peer.offer()).status_code == 200
    await peer.wait_connected()
    await agent.event(ParticipantJoined)
    await agent.connection.leave()
    await agent.connection.wait_closed()
    assert await agent.event(ParticipantLeft)
    late = client(agent, peers)
    assert (await late.offer()).status_code == 404
    await agent.connection.leave()  # idempotent


async def test_video_in_keeps_only_the_latest_frame(agent: Agent, peers: list[ClientPeer]) -> None:
    peer = client(agent, peers)
    peer.pc.addTrack(VideoStreamTrack())  # 640x480 at 30 fps
    assert (await peer.offer()).status_code == 200
    await peer.wait_connected()
    frames = agent.connection.video_input()
    participant, first = await asyncio.wait_for(anext(frames), 20)
    assert participant.id == peer.participant_id
    assert (first.width, first.height, first.format) == (640, 480, "rgb24")

    def unread() -> float | None:
        """Media time of the frame the connection keeps for the reader, if any."""
        kept = agent.connection._video.get(peer.participant_id)
        return None if kept is None else float(kept[1].time or 0.0)

    # A slow reader: it reads again only once 0.4 s of newer video (a dozen frames at 30 fps)
    # has arrived, however long that takes on a loaded machine.
    await until(
        lambda: (newest := unread()) is not None and newest - first.timestamp >= 0.4,
        what="0.4 s of video after the first frame",
    )
    _, second = await anext(frames)  # a frame is waiting: no suspension, nothing new arrives
    # The backlog was dropped: the next read is the newest frame, and the one after is fresh.
    assert second.timestamp - first.timestamp >= 0.4
    _, third = await asyncio.wait_for(anext(frames), 20)
    assert third.timestamp > second.timestamp


async def test_ensure_call_lets_a_launcher_start_the_agent_on_demand() -> None:
    rooms = Rooms()
    edge = WebRTCEdge(rooms=rooms)
    started: list[str] = []

    async def ensure_call(call_id: str) -> None:
        started.append(call_id)
        await edge.join(await edge.create_call("default", call_id), User("Agent", "agent"))

    app = FastAPI()
    app.include_router(create_router(rooms, ensure_call=ensure_call, join_wait=5))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://edge"
    ) as http:
        peer = ClientPeer(http, "on-demand", clip=None)
        try:
            assert (await peer.offer()).status_code == 200
        finally:
            await peer.close()
    assert started == ["on-demand"]
    await edge.aclose()


async def test_a_call_id_hosts_one_agent(agent: Agent) -> None:
    call = await agent.edge.create_call("default", "c1")
    with pytest.raises(RuntimeError, match="already has an agent"):
        await agent.edge.join(call, User("Other", "other"))


# --- the page and the plugin -----------------------------------------------------------------


async def test_the_router_serves_the_demo_page_and_lists_calls(agent: Agent) -> None:
    page = await agent.http.get("/webrtc/")
    assert page.status_code == 200
    assert 'src="static/app.js"' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "css")):
        asset = await agent.http.get(f"/webrtc/static/{name}")
        assert asset.status_code == 200
        assert kind in asset.headers["content-type"]
    assert (await agent.http.get("/webrtc/static/secret.py")).status_code == 404
    redirect = await agent.http.get("/webrtc?call=c1")
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/webrtc/?call=c1")
    calls = (await agent.http.get("/webrtc/calls")).json()["calls"]
    assert [(c["call_id"], c["participants"], c["max_participants"]) for c in calls] == [
        ("c1", 0, 4)
    ]


async def test_plugin_registers_the_edge_and_the_routes() -> None:
    registered: list[tuple[Any, ...]] = []

    def register(*args: Any, **kwargs: Any) -> None:
        registered.append((*args, kwargs))

    parley_webrtc.register_parts(register)
    assert registered[0][:3] == ("edge", "webrtc", "parley_webrtc.edge:WebRTCEdge")
    assert parley_webrtc.PARLEY_API == 1
    assert parley_webrtc.Edge is WebRTCEdge

    class Context:
        webrtc_rooms = Rooms()

    app = FastAPI()
    parley_webrtc.register_routes(app, Context())
    assert {"/webrtc/", "/webrtc/calls/{call_id}/offer"} <= set(app.openapi()["paths"])


async def test_parley_plugins_finds_the_edge_by_name() -> None:
    from parley.plugins import resolve, webrtc

    assert webrtc.Edge is WebRTCEdge
    assert isinstance(resolve("edge", "webrtc"), WebRTCEdge)


async def test_audio_still_arrives_when_the_inline_decoder_cannot_be_installed(
    agent: Agent, peers: list[ClientPeer], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inline_decode, "install", lambda receiver, sink: False)
    heard: list[AudioFrame] = []

    async def listen() -> None:
        async for _, frame in agent.connection.audio_input():
            heard.append(frame)

    listening = asyncio.ensure_future(listen())
    peer = client(agent, peers)
    assert (await peer.offer()).status_code == 200
    await until(lambda: len(heard) >= 20, what="20 frames through aiortc's own decoder")
    listening.cancel()
    assert {(f.sample_rate, f.channels, f.samples) for f in heard} == {(48000, 1, 960)}
    assert max(f.rms() for f in heard) > 0.1


async def test_closing_a_peer_ends_its_decoder_thread(
    agent: Agent, peers: list[ClientPeer]
) -> None:
    def decoder_threads() -> int:
        return sum(t.name == "audio-decoder" for t in threading.enumerate())

    before = decoder_threads()
    peer = client(agent, peers)
    assert (await peer.offer()).status_code == 200
    await peer.wait_connected()
    await until(lambda: decoder_threads() >= before + 2, what="both sides' decoder threads")
    await agent.connection.remove_participant(peer.participant_id or "", "test")
    await peer.close()
    await until(lambda: decoder_threads() == before, what="the decoder threads to end")
