"""Two AgentLauncher processes share one real Redis: exact per-call limit under a burst,
cross-node close, and a killed node's sessions leaving the registry within the TTL.

Redis comes from REDIS_URL or a redis-server started here; without either the test skips
(and fails when CI=true).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from parley.registry import SessionRegistry
from parley_redis.testing import missing_redis, redis_server, shared_stores

WORKER = Path(__file__).with_name("launcher_node_worker.py")
# Each node heartbeats every TTL / 3: a loaded machine would have to stall a node for 2 s to
# expire a live node's records.
TTL = 3.0
LIMIT = 3


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    try:
        with redis_server() as url:
            yield url
    except LookupError as exc:
        missing_redis(str(exc))


class Node:
    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name

    @classmethod
    async def spawn(cls, url: str, prefix: str, name: str) -> Node:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), url, prefix, name, str(TTL), str(LIMIT),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        node = cls(process, name)
        await node.expect("ready")
        return node

    async def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def expect(self, event: str) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(30):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise AssertionError(f"{self.name} exited before sending {event!r}")
                message: dict[str, Any] = json.loads(line)
                if message["event"] == event:
                    return message

    async def close(self) -> None:
        if self.process.returncode is None and self.process.stdin is not None:
            self.process.stdin.close()
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
        await self.process.wait()


async def test_two_launchers_share_limits_close_and_expiry(redis_url: str) -> None:
    async with shared_stores(redis_url) as new_store:
        store = new_store()
        observer = SessionRegistry(store, "observer", ttl=TTL, auto_heartbeat=False)
        a = await Node.spawn(redis_url, store.prefix, "node-a")
        b = await Node.spawn(redis_url, store.prefix, "node-b")
        try:
            start_at = time.time() + 0.5
            for node in (a, b):
                await node.send(op="burst", call_id="hot", count=20, start_at=start_at)
            on_a = (await a.expect("burst"))["admitted"]
            on_b = (await b.expect("burst"))["admitted"]
            assert len(on_a) + len(on_b) == LIMIT, "max_sessions_per_call holds exactly"
            listed = await observer.list_sessions("hot")
            assert sorted(r.session_id for r in listed) == sorted(on_a + on_b)
            assert {r.state for r in listed} == {"listening"}

            # node B finds and closes a session that runs on node A
            await a.send(op="burst", call_id="own", count=1, start_at=0)
            (victim,) = (await a.expect("burst"))["admitted"]
            record = await observer.get("own", victim)
            assert record is not None and record.node_id == "node-a"
            await b.send(op="request_close", call_id="own", session_id=victim)
            requested = await b.expect("request_close")
            assert requested["result"] is True
            # Delivered by publish/subscribe or node A's next heartbeat: the worker's
            # maintenance pass comes only once an hour, long after `expect` gives up.
            closed = await a.expect("closed")
            assert closed["session_id"] == victim

            async def gone(call_id: str, session_id: str) -> bool:
                return await observer.get(call_id, session_id) is None

            async with asyncio.timeout(30):
                while not await gone("own", victim):
                    await asyncio.sleep(0.05)

            # killing node A's process makes its sessions disappear within the TTL
            a.process.kill()
            async with asyncio.timeout(10 * TTL):
                while {r.node_id for r in await observer.list_sessions()} - {"node-b"}:
                    await asyncio.sleep(0.1)
            assert sorted(r.session_id for r in await observer.list_sessions("hot")) == sorted(on_b)
        finally:
            await a.close()
            await b.close()
