"""Two server processes share one real Redis: a browser may reach either for any call.

Each node (``packages/plugins-webrtc/tests/webrtc_node.py``) is a Runner with the ``webrtc``
edge whose `SessionRegistry` lives in Redis under its own address. Signaling that reaches the
node without the call's session is redirected (307) to the node that has it, found in the
registry: no sticky sessions. An aiortc client and headless Chromium follow the redirects and
talk to the agent on the other node.

Redis comes from ``REDIS_URL`` or a ``redis-server`` started here, Chromium is Debian's
``chromium``; without them the tests skip, and with ``CI=true`` they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import RTCConfiguration, RTCPeerConnection
from parley.testing import until
from parley_redis.testing import missing_redis, redis_server
from webrtc_chromium import (
    Page,
    PageError,
    launch_chromium,
    require_chromium,
    speech_like_wav,
)
from webrtc_client import ClientPeer

NODE_SCRIPT = (
    Path(__file__).resolve().parent.parent / "packages/plugins-webrtc/tests/webrtc_node.py"
)


@dataclass
class Node:
    node_id: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(node: Node, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if node.process.poll() is not None:
            raise AssertionError(f"{node.node_id} exited at start:\n{node.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{node.url}/ready", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise AssertionError(f"{node.node_id} not ready after {timeout} s:\n{node.log_tail()}")


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    """Nodes A and B: two processes, one Redis, one key prefix."""
    try:
        with redis_server() as redis_url:
            prefix = f"parley-test-{uuid.uuid4().hex[:12]}:"
            logs = tmp_path_factory.mktemp("nodes")
            started: list[Node] = []
            try:
                for name in ("node-a", "node-b"):
                    port = free_port()
                    log = logs / f"{name}.log"
                    with log.open("wb") as out:
                        process = subprocess.Popen(
                            [sys.executable, str(NODE_SCRIPT), redis_url, prefix, name, str(port)],
                            stdin=subprocess.DEVNULL,
                            stdout=out,
                            stderr=subprocess.STDOUT,
                        )
                    started.append(Node(name, f"http://127.0.0.1:{port}", process, log))
                for node in started:
                    wait_ready(node)
                yield started[0], started[1]
            finally:
                for node in started:
                    node.process.send_signal(signal.SIGTERM)
                for node in started:
                    try:
                        node.process.wait(10)
                    except subprocess.TimeoutExpired:
                        node.process.kill()
                        node.process.wait()
    except LookupError as exc:
        missing_redis(str(exc))


async def start_session(node: Node, call_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=node.url) as http:
        started = await http.post(f"/calls/{call_id}/sessions", json={})
    assert started.status_code == 201, started.text
    body: dict[str, Any] = started.json()
    return body


async def a_real_offer() -> str:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    try:
        pc.addTransceiver("audio", direction="recvonly")
        await pc.setLocalDescription(await pc.createOffer())
        sdp: str = pc.localDescription.sdp
        return sdp
    finally:
        await pc.close()


async def test_aiortc_client_follows_the_redirect_to_the_node_with_the_call(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = nodes
    session = await start_session(a, "mn-client")
    session_path = f"/calls/mn-client/sessions/{session['session_id']}"
    async with httpx.AsyncClient(base_url=b.url) as http:
        record = (await http.get(session_path)).json()  # B sees A's session in the registry
        assert record["node_id"] == "node-a" and record["node_address"] == a.url

        # B does not host the call: 307 to the same route on A, found in the registry.
        offer = await http.post(
            "/webrtc/calls/mn-client/offer", json={"type": "offer", "sdp": await a_real_offer()}
        )
        assert offer.status_code == 307
        assert offer.headers["location"] == f"{a.url}/webrtc/calls/mn-client/offer"
        missing = await http.post(
            "/webrtc/calls/mn-nobody/offer", json={"type": "offer", "sdp": await a_real_offer()}
        )
        assert missing.status_code == 404

    # A client that only knows node B joins, talks and leaves through it.
    speech = speech_like_wav(tmp_path / "speech.wav", voiced=1.0, pause=4.0)
    async with httpx.AsyncClient(base_url=b.url, follow_redirects=True) as http:
        client = ClientPeer(http, "mn-client", clip=speech)
        try:
            answered = await client.offer()
            assert answered.status_code == 200, answered.text
            assert [r.status_code for r in answered.history] == [307]
            assert str(answered.url) == f"{a.url}/webrtc/calls/mn-client/offer"
            assert answered.json()["agent"]["name"] == "Agent on node-a"
            await client.wait_connected()

            # The agent on A hears the speech and answers: its audio reaches the client.
            await until(lambda: client.loud_frames_received > 25, 20, what="the agent's reply")
            reply = await until(
                lambda: next((m for m in client.messages if m.get("role") == "agent"), None),
                what="the agent's transcript on the data channel",
            )
            assert reply["text"] == "Hi, this is node-a speaking."

            async def turns() -> int:
                record = (await http.get(session_path)).json()
                return int(record["metrics"]["turns"])

            async with asyncio.timeout(30):  # A syncs its metrics to the registry
                while await turns() < 1:
                    await asyncio.sleep(0.2)
            assert await turns() >= 1

            left = await client.leave()
            assert left.status_code == 200 and left.json()["left"] is True
            assert [r.status_code for r in left.history] == [307]
        finally:
            await client.close()


async def wait_origin(page: Page, origin: str) -> None:
    """Wait until the page (possibly navigating) has loaded from ``origin``."""

    async def loaded() -> bool:
        with contextlib.suppress(PageError):
            state = await page.evaluate("[location.origin, document.readyState]")
            return bool(state == [origin, "complete"])
        return False

    async with asyncio.timeout(30):
        while not await loaded():
            await asyncio.sleep(0.1)


async def test_browser_is_sent_to_the_node_that_hosts_the_call(
    nodes: tuple[Node, Node], tmp_path: Path
) -> None:
    a, b = nodes
    chromium = require_chromium()
    wav = tmp_path / "user.wav"
    # The user speaks every 5.2 s (the file loops): however long the page takes to connect on
    # a loaded machine, an utterance reaches the agent whole.
    speech_like_wav(wav, voiced=1.2, pause=4.0, sample_rate=16000)
    async with launch_chromium(chromium, fake_audio=wav) as browser:
        # The page is open on A before any agent is on the call…
        page = await browser.open(f"{a.url}/webrtc/?call=mn-browser")
        # …then the agent starts on B. Joining from A's page: A answers the offer with a
        # redirect to B, and the page reloads, which A redirects to B's page.
        await start_session(b, "mn-browser")
        await page.click("#join")
        await wait_origin(page, b.url)
        assert await page.evaluate("location.href") == f"{b.url}/webrtc/?call=mn-browser"

        # On B's page the call is local: join, be heard, hear the agent.
        await page.click("#join")
        await page.wait_for("parley.connection === 'connected'")
        await page.wait_for("parley.remoteRmsPeak > 0.05", 30)
        await page.wait_for(
            "parley.messages.some(m => m.type === 'transcript' && m.role === 'agent'"
            " && m.text === 'Hi, this is node-b speaking.')",
            30,
        )
        assert await page.evaluate("document.getElementById('agent-name').textContent") == (
            "talking to Agent on node-b"
        )

        # Opening A's page for the call now goes straight to B's.
        await page.navigate(f"{a.url}/webrtc/?call=mn-browser&from=a")
        await wait_origin(page, b.url)
