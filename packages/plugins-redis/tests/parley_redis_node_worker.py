"""One registry node in its own process, driven by test_redis_multinode over JSON lines.

Usage: python parley_redis_node_worker.py URL PREFIX NODE_ID TTL
Commands on stdin: {"op": "burst", "call_id", "count", "limit", "start_at"} reserves and
registers ``count`` sessions concurrently at wall time ``start_at``; {"op": "request_close",
"call_id", "session_id"}. Events on stdout: ready, burst, request_close, close_requested.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from parley.registry import SessionRegistry
from parley_redis.store import RedisStore


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


async def main(url: str, prefix: str, node_id: str, ttl: float) -> None:
    async def on_close_requested(call_id: str, session_id: str) -> None:
        emit("close_requested", call_id=call_id, session_id=session_id)

    store = RedisStore(url, prefix=prefix)
    registry = SessionRegistry(store, node_id, ttl=ttl, on_close_requested=on_close_requested)
    await registry.start()
    emit("ready", node_id=node_id)

    async def start_session(call_id: str, session_id: str, limit: int) -> str | None:
        if not await registry.reserve(call_id, session_id, limit=limit):
            return None
        await registry.register(call_id, session_id, state="running")
        return session_id

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        command = json.loads(line)
        if command["op"] == "burst":
            await asyncio.sleep(max(0.0, command["start_at"] - time.time()))
            results = await asyncio.gather(
                *(
                    start_session(command["call_id"], f"{node_id}-{i}", command["limit"])
                    for i in range(command["count"])
                )
            )
            emit("burst", admitted=[r for r in results if r is not None])
        elif command["op"] == "request_close":
            result = await registry.request_close(command["call_id"], command["session_id"])
            emit("request_close", result=result)
    await registry.stop()
    await store.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])))
