"""Two node processes share one real Redis: exact per-call limit, cross-node close, dead node.

Redis comes from REDIS_URL or a redis-server started here; without either the test skips
(and fails when CI=true).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from parley.registry import SessionRegistry
from parley.testing import until
from parley_redis.testing import shared_stores

WORKER = Path(__file__).with_name("parley_redis_node_worker.py")
TTL = 1.0


class NodeProcess:
    """A registry node running parley_redis_node_worker.py in its own Python process."""

    def __init__(self, process: asyncio.subprocess.Process, node_id: str) -> None:
        self.process = process
        self.node_id = node_id

    @classmethod
    async def spawn(cls, url: str, prefix: str, node_id: str) -> NodeProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), url, prefix, node_id, str(TTL),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        node = cls(process, node_id)
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
                    raise AssertionError(f"{self.node_id} exited before sending {event!r}")
                message: dict[str, Any] = json.loads(line)
                if message["event"] == event:
                    return message

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup at all, like a crashed node

    async def close(self) -> None:
        if self.process.returncode is None and self.process.stdin is not None:
            self.process.stdin.close()  # the worker stops its registry and exits
            try:
                async with asyncio.timeout(10):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
        await self.process.wait()


@pytest.mark.parametrize("limit", [1, 4])
async def test_two_node_processes_share_one_registry(redis_url: str, limit: int) -> None:
    async with shared_stores(redis_url) as new_store:
        store = new_store()
        observer = SessionRegistry(store, "observer", ttl=TTL, auto_heartbeat=False)
        a = await NodeProcess.spawn(redis_url, store.prefix, "node-a")
        b = await NodeProcess.spawn(redis_url, store.prefix, "node-b")
        try:
            # Both processes burst at the same wall-clock instant for one call.
            start_at = time.time() + 0.5
            for node in (a, b):
                await node.send(op="burst", call_id="hot", count=25, limit=limit, start_at=start_at)
            admitted = (await a.expect("burst"))["admitted"] + (await b.expect("burst"))["admitted"]
            assert len(admitted) == limit
            listed = await observer.list_sessions("hot")
            assert sorted(r.session_id for r in listed) == sorted(admitted)

            # Node B closes a session that runs on node A.
            await a.send(op="burst", call_id="own", count=1, limit=1, start_at=0)
            assert (await a.expect("burst"))["admitted"] == ["node-a-0"]
            await b.send(op="request_close", call_id="own", session_id="node-a-0")
            assert (await b.expect("request_close"))["result"] is True
            closed = await a.expect("close_requested")
            assert (closed["call_id"], closed["session_id"]) == ("own", "node-a-0")

            # Killing node A's process makes its records expire; node B's stay.
            assert "node-a" in {r.node_id for r in await observer.list_sessions()}
            a.kill()

            async def node_a_gone() -> bool:
                sessions = {r.node_id for r in await observer.list_sessions()}
                nodes = {n.node_id for n in await observer.list_nodes()}
                return "node-a" not in sessions | nodes

            await until(node_a_gone, 10 * TTL, interval=0.1)
            survivors = sorted(s for s in admitted if s.startswith("node-b"))
            assert sorted(r.session_id for r in await observer.list_sessions("hot")) == survivors
            assert [n.node_id for n in await observer.list_nodes()] == ["node-b"]
        finally:
            await a.close()
            await b.close()
