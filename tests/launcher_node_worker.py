"""One AgentLauncher node in its own process, driven by test_launcher_multinode over JSON lines.

Usage: python launcher_node_worker.py URL PREFIX NODE_ID TTL LIMIT
Commands on stdin: {"op": "burst", "call_id", "count", "start_at"} starts ``count`` sessions
concurrently at wall time ``start_at``; {"op": "request_close", "call_id", "session_id"}.
Events on stdout: ready, burst, request_close, closed (a session of this node ended).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from parley import Agent, AgentLauncher
from parley.launcher import CallSessionLimitExceeded
from parley.registry import SessionRegistry
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge
from parley_redis.store import RedisStore


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(url: str, prefix: str, node_id: str, ttl: float, limit: int) -> None:
    edge = InMemoryEdge(realtime_playout=False)

    async def create_agent(**params: Any) -> Agent:
        return Agent("x", edge=edge, llm=FakeLLM([]), stt=FakeSTT(None), tts=FakeTTS())

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        async with agent.join(await agent.create_call(call_type, call_id)) as session:
            await agent.finish()
            emit("closed", session_id=session.id, at=time.time())

    store = RedisStore(url, prefix=prefix)
    registry = SessionRegistry(store, node_id, ttl=ttl, address=f"http://{node_id}")
    launcher = AgentLauncher(
        create_agent, join_call, registry=registry, max_sessions_per_call=limit,
        warm_up=False, drain_timeout=0.1,
        maintenance_interval=3600,  # closes must come by publish/subscribe or heartbeat
    )  # fmt: skip
    await launcher.start()
    emit("ready", node_id=node_id)

    async def start(call_id: str) -> str | None:
        try:
            return (await launcher.start_session(call_id)).id
        except CallSessionLimitExceeded:
            return None

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["op"] == "burst":
            await asyncio.sleep(max(0.0, command["start_at"] - time.time()))
            started = await asyncio.gather(
                *(start(command["call_id"]) for _ in range(command["count"]))
            )
            emit("burst", admitted=[s for s in started if s is not None])
        elif command["op"] == "request_close":
            sent = time.time()
            result = await launcher.request_close_session(command["call_id"], command["session_id"])
            emit("request_close", result=result, at=sent)
    await launcher.stop()
    await store.aclose()


if __name__ == "__main__":
    url, prefix, node, ttl, limit = sys.argv[1:6]
    asyncio.run(main(url, prefix, node, float(ttl), int(limit)))
