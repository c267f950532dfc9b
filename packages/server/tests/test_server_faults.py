"""Fault injection against the HTTP server (issue 16): refusing callbacks, hostile bodies,
a store that goes away, signals while a start is stuck, slow clients.

Every case checks the status, the session's end state where one exists, and that nothing is
left behind: no session or start in the launcher, no slot in the store, no stray task.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Header
from parley import AgentLauncher
from parley.registry import SessionRegistry
from parley_redis.store import RedisStore
from parley_redis.testing import RedisServer, own_redis_server, shared_stores
from parley_server import Runner, ServeOptions
from parley_server_testkit import Calls, ServerProcess, eventually, fake_launcher, serving

Start = Callable[..., ServerProcess]


def nothing_left(launcher: AgentLauncher) -> None:
    stats = launcher.stats()
    assert (stats.running, stats.starting) == (0, 0)
    assert launcher.registry.local_sessions() == []


def parley_tasks() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name().startswith("parley-") and not t.done()]


# --- permission callbacks that return False ---------------------------------------------------


def deny_unless_alice(call_id: str, authorization: str | None = Header(default=None)) -> bool:
    return authorization == "Bearer alice"


async def test_a_callback_returning_false_denies_every_session_route_with_403() -> None:
    calls = Calls()
    launcher = fake_launcher(calls)
    options = ServeOptions(
        can_start_session=deny_unless_alice,
        can_close_session=deny_unless_alice,
        can_view_session=deny_unless_alice,
        can_list_sessions=deny_unless_alice,
    )
    alice = {"Authorization": "Bearer alice"}
    async with serving(Runner(launcher, options)) as client:
        refused = await client.post("/calls/demo/sessions", json={})
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert calls.created == []
        nothing_left(launcher)
        started = await client.post("/calls/demo/sessions", json={}, headers=alice)
        assert started.status_code == 201
        session = f"/calls/demo/sessions/{started.json()['session_id']}"
        for method, url in (("GET", session), ("GET", "/calls/demo/sessions"), ("DELETE", session)):
            assert (await client.request(method, url)).status_code == 403, (method, url)
        assert (await client.get(session, headers=alice)).json()["state"] == "listening"
        assert (await client.delete(session, headers=alice)).status_code == 202
        await eventually(lambda: nothing_left(launcher))
    assert parley_tasks() == []


# --- start requests must be JSON objects ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"", "text/plain", 415),
        (b"", "application/x-www-form-urlencoded", 415),
        (b"a=1", "application/x-www-form-urlencoded", 415),
        (b"", "multipart/form-data; boundary=x", 415),
        (b"", None, 415),
        (b"{}", "text/plain", 415),
        (b"null", "application/json", 400),
        (b"[]", "application/json", 400),
        (b'"x"', "application/json", 400),
        (b"\xef\xbb\xbf{}", "application/json", 400),
        (b"\xff\xfe{\x00}\x00", "application/json", 400),
        (b"", "application/json", 400),
    ],
)
async def test_a_start_request_that_is_not_a_json_object_starts_nothing(
    content: bytes, content_type: str | None, status: int
) -> None:
    calls = Calls()
    launcher = fake_launcher(calls)
    headers = {"Origin": "https://evil.example"}
    if content_type is not None:
        headers["Content-Type"] = content_type
    async with serving(Runner(launcher)) as client:
        response = await client.post("/calls/demo/sessions", content=content, headers=headers)
        assert response.status_code == status, response.text
        assert response.json()["detail"]
        assert calls.created == []
        nothing_left(launcher)
        assert (await client.get("/calls/demo/sessions")).json()["sessions"] == []


async def test_a_start_stuck_past_start_timeout_answers_504_and_frees_its_slot() -> None:
    calls = Calls()
    launcher = fake_launcher(calls, start_timeout=0.3, max_sessions_per_call=1)
    async with serving(Runner(launcher)) as client:
        stuck = await client.post("/calls/demo/sessions", json={"params": {"stuck_join": True}})
        assert stuck.status_code == 504, stuck.text
        assert stuck.json()["error"] == "session_start_timeout"
        assert "start_timeout=0.3 s" in stuck.json()["detail"]
        assert (launcher.stats().running, launcher.stats().starting) == (0, 0)
        assert [t for t in parley_tasks() if t.get_name().startswith("parley-sess")] == []
        # The slot the stuck start held on the call is free again.
        started = await client.post("/calls/demo/sessions", json={})
        assert started.status_code == 201, started.text


# --- video_track_override from HTTP ----------------------------------------------------------


async def test_video_track_override_is_refused_unless_a_directory_is_enabled(
    tmp_path: Path,
) -> None:
    calls = Calls()
    launcher = fake_launcher(calls)
    async with serving(Runner(launcher)) as client:
        response = await client.post(
            "/calls/demo/sessions", json={"params": {"video_track_override": "/etc/hostname"}}
        )
        assert response.status_code == 400
        assert response.json()["error"] == "video_track_override_disabled"
    assert calls.created == []
    nothing_left(launcher)


async def test_video_track_override_only_reads_under_its_directory_and_reveals_nothing(
    tmp_path: Path,
) -> None:
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "clip.mp4").write_bytes(b"a clip")
    (tmp_path / "secret.mp4").write_bytes(b"not yours")
    calls = Calls()
    launcher = fake_launcher(calls)
    options = ServeOptions(video_track_override_dir=videos)
    async with serving(Runner(launcher, options)) as client:
        refusals = []
        for path in (
            str(tmp_path / "secret.mp4"),  # exists, outside
            "../secret.mp4",  # exists, outside
            str(tmp_path / "nothing.mp4"),  # does not exist
            "nothing.mp4",
            "/etc/passwd",
            "clip.mp4\x00",
            "",
        ):
            response = await client.post(
                "/calls/demo/sessions", json={"params": {"video_track_override": path}}
            )
            assert response.status_code == 400, path
            refusals.append(response.json())
        assert all(body == refusals[0] for body in refusals)  # no hint of what exists
        assert calls.created == []
        nothing_left(launcher)
        started = await client.post(
            "/calls/demo/sessions", json={"params": {"video_track_override": "clip.mp4"}}
        )
        assert started.status_code == 201, started.text
        assert calls.created == [{"video_track_override": str((videos / "clip.mp4").resolve())}]


# --- HEAD on the probes ----------------------------------------------------------------------


async def test_head_on_health_and_ready_answers_without_a_body() -> None:
    launcher = fake_launcher(max_concurrent_sessions=1)
    async with serving(Runner(launcher)) as client:
        health = await client.head("/health")
        assert health.status_code == 200 and health.content == b""
        ready = await client.head("/ready")
        assert ready.status_code == 200 and ready.content == b""
        started = await client.post("/calls/demo/sessions", json={})
        full = await client.head("/ready")
        assert full.status_code == 503 and full.content == b""
        await client.delete(f"/calls/demo/sessions/{started.json()['session_id']}")
        await eventually(lambda: nothing_left(launcher))


# --- the store goes down ---------------------------------------------------------------------


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    with own_redis_server() as server:
        yield server


@pytest.fixture
async def redis_stores(redis: RedisServer) -> AsyncIterator[Callable[[], RedisStore]]:
    async with shared_stores(redis.url, socket_timeout=2.0, connect_timeout=1.0) as new_store:
        yield new_store


async def test_a_store_outage_answers_503_on_every_route_and_ready_turns_at_once(
    redis: RedisServer, redis_stores: Callable[[], RedisStore]
) -> None:
    calls = Calls()
    store = redis_stores()
    launcher = fake_launcher(calls, registry=SessionRegistry(store), max_sessions_per_call=1)
    async with serving(Runner(launcher)) as client:
        running = await client.post("/calls/demo/sessions", json={})
        assert running.status_code == 201
        session = f"/calls/demo/sessions/{running.json()['session_id']}"
        assert (await client.get("/ready")).status_code == 200
        redis.kill()

        started = await client.post("/calls/other/sessions", json={})
        assert started.status_code == 503, started.text
        assert started.json()["error"] == "store_unavailable"
        assert started.headers["retry-after"]
        # The very next probe: the failed call above already marked the store down.
        ready = await client.get("/ready")
        assert ready.status_code == 503 and "store" in ready.json()["detail"]
        assert (await client.head("/ready")).status_code == 503
        elsewhere = "/calls/demo/sessions/sess_elsewhere"  # found only through the store
        for method, url in (
            ("GET", "/calls/demo/sessions"),
            ("GET", session),
            ("DELETE", elsewhere),
            ("POST", f"{elsewhere}/close"),
        ):
            response = await client.request(method, url)
            assert response.status_code == 503, (method, url, response.text)
            assert response.json()["error"] == "store_unavailable"
        assert len(calls.created) == 1  # the refused start never reached create_agent
        assert launcher.stats().running == 1  # the running session keeps running
        assert launcher.stats().starting == 0
        # This node's own session closes without the store.
        assert (await client.delete(session)).status_code == 202
        await eventually(lambda: nothing_left(launcher))

        redis.start()
        await eventually(lambda: _ok(launcher.registry.healthy))
        assert (await client.get("/ready")).status_code == 200
        await eventually(lambda: _no_call_slots(store))
    assert parley_tasks() == []


async def test_ready_notices_a_store_outage_without_any_other_request(
    redis: RedisServer, redis_stores: Callable[[], RedisStore]
) -> None:
    launcher = fake_launcher(registry=SessionRegistry(redis_stores(), heartbeat_interval=29))
    async with serving(Runner(launcher)) as client:
        assert (await client.get("/ready")).status_code == 200
        redis.kill()  # no heartbeat comes: only the probe itself can notice
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json()["readiness"]["store_healthy"] is False
        assert (await client.head("/ready")).status_code == 503
        redis.start()
        await eventually(lambda: _ready(client))
    nothing_left(launcher)


async def _ready(client: httpx.AsyncClient) -> None:
    assert (await client.get("/ready")).status_code == 200


def _ok(value: bool) -> None:
    assert value


async def _no_call_slots(store: RedisStore) -> None:
    keys = await store.keys("")
    assert [key for key in keys if "demo" in key or "other" in key] == []


# --- real processes: signals and slow clients -------------------------------------------------


def _start_in_background(url: str) -> threading.Thread:
    def post() -> None:
        try:
            httpx.post(url, json={}, timeout=120)
        except httpx.HTTPError:
            pass  # the server went away under the request: expected

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("stuck", ["create", "join", "ignore_cancel"])
def test_a_second_signal_ends_a_server_whose_start_is_stuck(
    server_process: Start, stuck: str
) -> None:
    server = server_process("serve", env={"PARLEY_TEST_STUCK": stuck})
    server.wait_healthy()
    _start_in_background(f"{server.url}/calls/demo/sessions")
    server.wait_for_line("test agent is stuck")
    server.signal(signal.SIGTERM)
    server.wait_for_line("SIGTERM: draining")
    server.signal(signal.SIGINT)
    server.wait_for_line("SIGINT again")
    code = server.wait(timeout=90)  # a hang fails here; it ends in seconds
    assert code in (0, -signal.SIGKILL), server.output
    if stuck != "ignore_cancel":  # a cancelled start ends quietly: 503, no traceback
        assert code == 0, server.output
        assert "cut off: the server is shutting down" in server.output
        assert "Traceback" not in server.output, server.output


def test_one_signal_ends_a_server_whose_start_is_stuck_after_the_grace_period(
    server_process: Start,
) -> None:
    """The stuck request is cancelled once uvicorn's graceful-shutdown bound passes."""
    server = server_process("serve", env={"PARLEY_TEST_STUCK": "create"})
    server.wait_healthy()
    _start_in_background(f"{server.url}/calls/demo/sessions")
    server.wait_for_line("test agent is stuck")
    server.signal(signal.SIGTERM)
    assert server.wait(timeout=90) == 0, server.output


def test_a_slow_client_is_cut_off_before_its_headers_finish(server_process: Start) -> None:
    server = server_process("serve")
    server.wait_healthy()
    with socket.create_connection(("127.0.0.1", server.port), timeout=90) as slow:
        slow.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        deadline = time.monotonic() + 90  # only catches a hang
        closed = False
        while time.monotonic() < deadline:
            try:
                slow.sendall(b"X")  # one header byte a second
                slow.settimeout(1)
                if slow.recv(1024) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except OSError:
                closed = True
                break
        assert closed, "the server never closed a connection whose headers never ended"
    with httpx.Client(base_url=server.url) as http:  # and it still serves others
        assert http.head("/health").status_code == 200
        assert http.head("/ready").status_code == 200
    server.wait_for_line("no complete request head")


@pytest.mark.parametrize(
    ("content", "named"), [(b"null", "null"), (b"[1]", "an array"), (b"7", "a number")]
)
async def test_a_body_that_is_not_an_object_is_named_in_json_words(
    content: bytes, named: str
) -> None:
    async with serving(Runner(fake_launcher())) as client:
        response = await client.post(
            "/calls/demo/sessions", content=content, headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["detail"] == (
        f"the body must be a JSON object, got {named}; send {{}} at least"
    )
