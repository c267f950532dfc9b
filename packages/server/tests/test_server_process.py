"""The server as users run it: a real uvicorn process on 127.0.0.1, driven over HTTP."""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from parley_server_testkit import ServerProcess

Start = Callable[..., ServerProcess]
ALICE = {"Authorization": "Bearer secret"}


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    error: str = body["error"]
    return error


def test_every_status_code_over_real_http(server_process: Start) -> None:
    server = server_process(
        "serve",
        env={
            "PARLEY_TEST_TOKEN": "secret",
            "PARLEY_TEST_MAX_SESSIONS": "2",
            "PARLEY_TEST_PER_CALL": "1",
            "PARLEY_TEST_CORS_ORIGIN": "https://app.example.com",
        },
    )
    server.wait_healthy()
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").status_code == 200
        metrics = http.get("/metrics")
        assert metrics.status_code == 200 and "parley_sessions" in metrics.text

        assert http.post("/calls/demo/sessions", json={}).status_code == 401
        assert (
            http.post(
                "/calls/demo/sessions", headers={"Authorization": "Bearer x"}, json={}
            ).status_code
            == 403
        )
        assert (
            _error(http.post("/calls/Demo/sessions", headers=ALICE, json={})) == "invalid_call_id"
        )
        bad_json = http.post(
            "/calls/demo/sessions",
            content=b"{oops",
            headers={**ALICE, "content-type": "application/json"},
        )
        assert bad_json.status_code == 400 and _error(bad_json) == "invalid_json"
        text = http.post(
            "/calls/demo/sessions", content=b"hi", headers={**ALICE, "content-type": "text/plain"}
        )
        assert text.status_code == 415
        huge = http.post(
            "/calls/demo/sessions",
            content=b"x" * 100_000,
            headers={**ALICE, "content-type": "application/json"},
        )
        assert huge.status_code == 413 and _error(huge) == "body_too_large"

        started = http.post("/calls/demo/sessions", headers=ALICE, json={"params": {"lang": "fr"}})
        assert started.status_code == 201, started.text
        session = f"/calls/demo/sessions/{started.json()['session_id']}"
        assert http.post("/calls/demo/sessions", headers=ALICE, json={}).status_code == 429
        assert http.get(session, headers=ALICE).json()["state"] == "listening"
        listed = http.get("/calls/demo/sessions", headers=ALICE).json()["sessions"]
        assert [s["session_id"] for s in listed] == [started.json()["session_id"]]
        assert http.get("/calls/demo/sessions/sess_nope", headers=ALICE).status_code == 404
        assert http.get("/custom/hello").json() == {"hello": "world"}
        assert _error(http.get("/no/such/route")) == "not_found"

        preflight = http.options(
            "/calls/demo/sessions",
            headers={"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        )
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.com"
        refused = http.options(
            "/calls/demo/sessions",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert refused.status_code == 400 and _error(refused) == "cors_refused"

        other = http.post("/calls/other/sessions", headers=ALICE, json={})
        assert other.status_code == 201
        full = http.get("/ready")
        assert full.status_code == 503 and "at capacity" in full.json()["detail"]
        assert _error(http.post("/calls/third/sessions", headers=ALICE, json={})) == "session_limit"

        assert http.delete(session).status_code == 401
        assert http.delete(session, headers=ALICE).status_code == 202
        beacon = f"/calls/other/sessions/{other.json()['session_id']}/close"
        assert http.post(beacon, headers=ALICE, content=b"{}").status_code == 202
    server.wait_for_line("with params ['lang']")


def test_sigterm_drains_then_exits(server_process: Start) -> None:
    server = server_process("serve")
    server.wait_healthy()
    with httpx.Client(base_url=server.url) as http:
        session_id = http.post("/calls/demo/sessions", json={}).json()["session_id"]
        server.signal(signal.SIGTERM)
        for _ in range(300):
            ready = http.get("/ready")
            if ready.status_code == 503:
                break
            time.sleep(0.05)
        assert ready.status_code == 503 and "draining" in ready.json()["detail"]
        refused = http.post("/calls/late/sessions", json={})
        assert refused.status_code == 503 and "draining" in refused.json()["detail"]
        assert server.process.poll() is None  # the running session keeps the node up
        assert http.get(f"/calls/demo/sessions/{session_id}").status_code == 200
        assert http.delete(f"/calls/demo/sessions/{session_id}").status_code == 202
    assert server.wait() == 0
    assert "SIGTERM: draining" in server.output and "drained; shutting down" in server.output


def test_two_workers_share_one_port(server_process: Start) -> None:
    server = server_process("serve", "--workers", "2", env={"PARLEY_TEST_DRAIN_TIMEOUT": "0.5"})
    server.wait_healthy()
    with httpx.Client(base_url=server.url) as http:
        started = http.post("/calls/demo/sessions", json={})
        assert started.status_code == 201, started.text
        assert http.get("/custom/hello").status_code == 200  # each worker built the script's Runner
    server.wait_for_line("Started parent process")
    server.wait_for_line("Application startup complete", count=2)
    assert "in-memory session store" in server.output
    server.signal(signal.SIGTERM)
    assert server.wait() == 0


def test_run_console_mode_prints_the_url_and_stops_on_sigterm(
    server_process: Start, tmp_path: Path
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"not really a video")
    server = server_process(
        "run", "--no-demo", "--call-id", "console", "--video-track-override", str(video)
    )
    line = server.wait_for_line("is on call console: ")
    assert f"{server.url}/calls/console/sessions/sess_" in line
    server.wait_for_line("with params ['video_track_override']")
    with httpx.Client(base_url=server.url) as http:
        sessions = http.get("/calls/console/sessions").json()["sessions"]
        assert len(sessions) == 1 and sessions[0]["state"] == "listening"
    server.signal(signal.SIGTERM)
    assert server.wait() == 0


def test_run_refuses_a_missing_video_file_and_a_bad_call_id(server_process: Start) -> None:
    missing = server_process("run", "--no-demo", "--video-track-override", "/no/such/file.mp4")
    assert missing.wait() == 2
    assert "does not exist" in missing.output
    bad = server_process("run", "--no-demo", "--call-id", "Not Valid")
    assert bad.wait() == 2
    assert "invalid call_id" in bad.output


def test_the_parley_console_script_serves_a_script(server_process: Start) -> None:
    from parley_server_testkit import TEST_AGENT

    server = server_process("serve", str(TEST_AGENT), command=[sys.executable, "-m", "parley.cli"])
    server.wait_healthy()
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/custom/hello").status_code == 200  # the script's own Runner
        started = http.post("/calls/demo/sessions", json={})
        assert started.status_code == 201
        assert (
            http.delete(f"/calls/demo/sessions/{started.json()['session_id']}").status_code == 202
        )
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
