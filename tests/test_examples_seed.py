"""examples/seed_agent.py runs as users run it: ``serve`` and ``run``, as real processes.

Most tests pick the testing kit's fake parts (``PARLEY_EXAMPLE_PARTS=fake``), so no model is
loaded; one runs it as a user would, on the offline parts and the local WebRTC edge.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

SEED = Path(__file__).resolve().parents[1] / "examples" / "seed_agent.py"


class Example:
    def __init__(self, *args: str, parts: str = "fake") -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PARLEY_EXAMPLE_PARTS": parts, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [sys.executable, str(SEED), *args, "--port", str(self.port), "--no-splash"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str) -> str:
        for _ in range(600):
            for line in list(self.lines):
                if text in line:
                    return line
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never printed:\n" + "\n".join(self.lines))

    def wait_healthy(self) -> None:
        for _ in range(600):
            if self.process.poll() is not None:
                raise AssertionError("the example exited:\n" + "\n".join(self.lines))
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("the example never answered /health:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def examples() -> Iterator[list[Example]]:
    started: list[Example] = []
    yield started
    for example in started:
        example.stop()


def test_seed_example_serves_the_session_api(examples: list[Example]) -> None:
    example = Example("serve")
    examples.append(example)
    example.wait_healthy()
    with httpx.Client(base_url=example.url) as http:
        started = http.post("/calls/seed-demo/sessions", json={})
        assert started.status_code == 201, started.text
        session_id = started.json()["session_id"]
        listed = http.get("/calls/seed-demo/sessions").json()["sessions"]
        assert [s["session_id"] for s in listed] == [session_id]
        assert http.delete(f"/calls/seed-demo/sessions/{session_id}").status_code == 202
    example.process.send_signal(signal.SIGTERM)
    assert example.process.wait(timeout=60) == 0


def test_seed_example_runs_one_agent_in_console_mode(examples: list[Example]) -> None:
    example = Example("run", "--no-demo", "--call-id", "seed-console")
    examples.append(example)
    line = example.wait_for("/calls/seed-console/sessions/")
    assert example.url in line
    with httpx.Client(base_url=example.url) as http:
        sessions = http.get("/calls/seed-console/sessions").json()["sessions"]
        assert len(sessions) == 1
    example.process.send_signal(signal.SIGTERM)
    assert example.process.wait(timeout=60) == 0
    assert "Agent session sess_" in "\n".join(example.lines)


def test_seed_example_runs_on_the_offline_parts_and_the_webrtc_edge(
    examples: list[Example],
) -> None:
    from parley.plugins import list_parts

    offline = {
        "stt": "whisper",
        "tts": "piper",
        "llm": "llamacpp",
        "vad": "silero",
        "edge": "webrtc",
    }
    missing = [
        name
        for kind, name in offline.items()
        if not any(p.name == name and p.deps_ok for p in list_parts(kind))
    ]
    if missing:
        pytest.skip(f"install the offline plugins to run this: missing {', '.join(missing)}")
    example = Example("run", "--no-demo", "--call-id", "seed-offline", parts="auto")
    examples.append(example)
    line = example.wait_for("to talk to the agent")
    assert f"{example.url}/webrtc/?call=seed-offline" in line  # the browser page, not the API
    with httpx.Client(base_url=example.url) as http:
        page = http.get("/webrtc/?call=seed-offline")
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        [session] = http.get("/calls/seed-offline/sessions").json()["sessions"]
        assert session["state"] in {"listening", "speaking", "thinking"}
    example.process.send_signal(signal.SIGTERM)
    assert example.process.wait(timeout=60) == 0
