"""Helpers shared by the server tests: fake launchers, an in-process client, a real server."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from parley import Agent, AgentLauncher
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, until
from parley_server import Runner

HERE = Path(__file__).resolve().parent
TEST_AGENT = HERE / "parley_server_test_agent.py"


class Calls:
    """What create_agent received, so tests can assert that nothing was started."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []


def fake_launcher(
    calls: Calls | None = None, edge: InMemoryEdge | None = None, **options: Any
) -> AgentLauncher:
    async def create_agent(**params: Any) -> Agent:
        if calls is not None:
            calls.created.append(params)
        if params.get("fail_create"):
            raise RuntimeError("asked to fail")
        return Agent(
            "test",
            edge=edge if edge is not None else InMemoryEdge(),
            llm=FakeLLM(["Hello there, nice to meet you."]),
            tts=FakeTTS(),
            stt=FakeSTT(["what is the weather"]),
            vad=FakeVAD(),
        )

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        if params.get("fail_join"):
            raise ConnectionError("the edge refused the join")
        if params.get("stuck_join"):
            await asyncio.Event().wait()  # a join that never comes back
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()

    options.setdefault("warm_up", False)
    options.setdefault("drain_timeout", 0.2)
    return AgentLauncher(create_agent, join_call, **options)


@asynccontextmanager
async def serving(runner: Runner, *, lifespan: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client talking to the runner's app in-process (lifespan run around it)."""
    app = runner.fast_api
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as client:
        if lifespan:
            async with app.router.lifespan_context(app):
                yield client
        else:
            yield client


async def eventually(check: Callable[[], Any], within: float = 30.0, pause: float = 0.02) -> None:
    """Retry ``check`` (sync or async) until it stops raising AssertionError (`until` with
    an assertion for a predicate); the deadline only catches a hang."""

    async def passes() -> bool:
        result = check()
        if asyncio.iscoroutine(result):
            await result
        return True

    await until(passes, within, interval=pause)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerProcess:
    """A real server in a subprocess on 127.0.0.1; output is collected in ``lines``."""

    def __init__(self, command: list[str], env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.process = subprocess.Popen(
            [*command, "--port", str(self.port), "--no-splash"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
            cwd=str(HERE),
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_healthy(self, attempts: int = 300) -> None:
        for _ in range(attempts):
            if self.process.poll() is not None:
                raise AssertionError(
                    f"server exited with {self.process.returncode}:\n{self.output}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server never became healthy:\n{self.output}")

    def wait_for_line(self, text: str, count: int = 1, attempts: int = 300) -> str:
        """The ``count``-th line containing ``text``, once printed."""
        for _ in range(attempts):
            found = [line for line in list(self.lines) if text in line]
            if len(found) >= count:
                return found[count - 1]
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                if len([line for line in self.lines if text in line]) >= count:
                    continue
                raise AssertionError(f"server exited before printing {text!r}:\n{self.output}")
            time.sleep(0.1)
        raise AssertionError(f"{text!r} never printed {count} time(s):\n{self.output}")

    def signal(self, sig: int = signal.SIGTERM) -> None:
        self.process.send_signal(sig)

    def wait(self, timeout: float = 60) -> int:
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._reader.join(timeout=5)
