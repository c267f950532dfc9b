"""Put this folder on sys.path (for parley_server_testkit) and provide the server fixture."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from parley_server_testkit import TEST_AGENT, ServerProcess  # noqa: E402


@pytest.fixture
def server_process() -> Iterator[Callable[..., ServerProcess]]:
    """Start real servers; every one is stopped after the test."""
    started: list[ServerProcess] = []

    def start(
        *args: str, env: dict[str, str] | None = None, command: list[str] | None = None
    ) -> ServerProcess:
        """``python parley_server_test_agent.py ARGS --port N --no-splash`` (or ``command``)."""
        server = ServerProcess([*(command or [sys.executable, str(TEST_AGENT)]), *args], env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
