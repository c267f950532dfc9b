"""A real Redis for tests and benchmarks: ``REDIS_URL`` if set, else a throwaway ``redis-server``.

``redis_server()`` yields a URL; `RedisServer` runs ``redis-server`` on a free local port with
persistence off, and can be killed and restarted on the same port to rehearse an outage.
``temporary_store(url)`` gives a `RedisStore` under a unique key prefix and ``shared_stores(url)``
several connections sharing one; their keys are deleted afterwards, so tests can share a
database (even a developer's own ``REDIS_URL``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any, NoReturn

from parley.store import StoreUnavailable

from parley_redis.store import RedisStore

INSTALL_HINT = (
    "a real Redis is needed: install redis-server (e.g. `apt-get install redis-server`) "
    "or set REDIS_URL=redis://host:port/db"
)


class RedisServer:
    """A ``redis-server`` subprocess on 127.0.0.1 with persistence off."""

    def __init__(self, port: int | None = None, binary: str = "redis-server") -> None:
        path = shutil.which(binary)
        if path is None:
            raise LookupError(f"no {binary} on PATH; {INSTALL_HINT}")
        self.binary = path
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it accepts connections."""
        if self.running:
            return
        args = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--protected-mode", "no"]
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while not _answers_ping(self.port):
            if self._process.poll() is not None:
                stderr = (
                    self._process.stderr.read().decode(errors="replace")
                    if self._process.stderr
                    else ""
                )
                raise RuntimeError(f"redis-server exited at start: {stderr.strip()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout}s")
            time.sleep(0.02)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash would."""
        self._end(signal.SIGKILL)

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def _end(self, sig: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


@contextmanager
def redis_server() -> Iterator[str]:
    """Yield a Redis URL: ``REDIS_URL`` if set, else a `RedisServer` started for the block.

    Raises LookupError (saying what to install) when neither is available.
    """
    url = os.environ.get("REDIS_URL")
    if url:
        yield url
        return
    with RedisServer() as server:
        yield server.url


@contextmanager
def own_redis_server() -> Iterator[RedisServer]:
    """A `RedisServer` started for the block, for a test that kills, flushes or restarts it;
    the test is skipped (failed under ``CI=true``) when redis-server is not installed."""
    try:
        server = RedisServer()
    except LookupError as exc:
        missing_redis(str(exc))
    with server:
        yield server


def missing_redis(reason: str) -> NoReturn:
    """Skip the current test because Redis is missing, or fail it when ``CI=true``."""
    import pytest  # only tests call this

    message = f"{reason}. {INSTALL_HINT}" if INSTALL_HINT not in reason else reason
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true, so Redis tests may not be skipped: {message}")
    pytest.skip(message)


@asynccontextmanager
async def shared_stores(url: str, **options: Any) -> AsyncIterator[Callable[[], RedisStore]]:
    """A factory of `RedisStore` connections that share one fresh key prefix, like several
    nodes sharing a database. Every store made is closed and the prefix's keys are deleted
    afterwards."""
    prefix = f"parley-test-{uuid.uuid4().hex[:12]}:"
    made: list[RedisStore] = []

    def new_store() -> RedisStore:
        store = RedisStore(url, prefix=prefix, **options)
        made.append(store)
        return store

    try:
        yield new_store
    finally:
        cleaner = new_store()
        try:
            for key in await cleaner.keys(""):
                await cleaner.delete(key)
        except StoreUnavailable:
            pass  # the server is gone (an outage test); nothing left to clean
        finally:
            for store in made:
                await store.aclose()


@asynccontextmanager
async def temporary_store(url: str, **options: Any) -> AsyncIterator[RedisStore]:
    """A `RedisStore` under a fresh key prefix; its keys are deleted afterwards."""
    async with shared_stores(url, **options) as new_store:
        yield new_store()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False
