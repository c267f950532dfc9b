"""Session registry benchmark: real Redis against the in-memory store as a baseline.

Prints, per store:
- start-session registry work (reserve + register) p50/p99,
- cross-node close latency (request_close on node B -> on_close_requested on node A) p50/p99,
  and the same through two AgentLaunchers (request on B -> the session on A has closed),
- bursts of 50 concurrent starts for one call with a per-call limit of 1, split over two
  nodes: over-admits must be 0.

Redis comes from REDIS_URL, else a redis-server started here. Two registries in this process
play two nodes; with Redis each has its own connections, so every request crosses Redis.
Run: ``hatch run python bench/registry.py [--sessions N] [--closes N] [--bursts N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from parley.registry import SessionRegistry
from parley.store import SessionStore
from parley.stores.memory import MemoryStore

NewStore = Callable[[], SessionStore]


def percentiles_ms(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return f"p50 {statistics.median(samples) * 1000:7.3f} ms   p99 {cuts[98] * 1000:7.3f} ms"


@asynccontextmanager
async def two_nodes(new_store: NewStore) -> AsyncIterator[tuple[SessionRegistry, SessionRegistry]]:
    async with AsyncExitStack() as stack:
        nodes = []
        for node_id in ("node-a", "node-b"):
            registry = SessionRegistry(new_store(), node_id=node_id, ttl=30.0)
            await stack.enter_async_context(registry)
            nodes.append(registry)
        yield nodes[0], nodes[1]


async def start_sessions(node: SessionRegistry, count: int, tag: str = "start") -> list[float]:
    samples = []
    for i in range(count):
        call_id, session_id = f"{tag}-{i % 50}", f"{tag}-s{i}"
        began = time.perf_counter()
        if not await node.reserve(call_id, session_id, limit=count):
            raise RuntimeError("a reserve under a generous limit was refused")
        await node.register(call_id, session_id, state="running")
        samples.append(time.perf_counter() - began)
    return samples


async def close_latency(a: SessionRegistry, b: SessionRegistry, count: int) -> list[float]:
    arrived: dict[str, float] = {}
    events: dict[str, asyncio.Event] = {}

    async def on_close_requested(call_id: str, session_id: str) -> None:
        arrived[session_id] = time.perf_counter()
        events[session_id].set()

    a.on_close_requested = on_close_requested
    for i in range(count):
        await a.register("closing", f"c{i}", state="running")
        events[f"c{i}"] = asyncio.Event()
    samples = []
    for i in range(count):
        began = time.perf_counter()
        if not await b.request_close("closing", f"c{i}"):
            raise RuntimeError("request_close did not find the session")
        async with asyncio.timeout(10):
            await events[f"c{i}"].wait()
        samples.append(arrived[f"c{i}"] - began)
    return samples


async def burst_over_admits(a: SessionRegistry, b: SessionRegistry, bursts: int) -> int:
    over = 0
    for round_ in range(bursts):
        call_id = f"burst-{round_}"

        async def start(i: int, call_id: str = call_id) -> bool:
            node = (a, b)[i % 2]
            if not await node.reserve(call_id, f"b{i}", limit=1):
                return False
            await node.register(call_id, f"b{i}", state="running")
            return True

        admitted = sum(await asyncio.gather(*(start(i) for i in range(50))))
        over += max(0, admitted - 1)
    return over


async def launcher_close_latency(new_store: NewStore, count: int) -> list[float]:
    """Request on launcher B -> the session on launcher A has closed (default maintenance
    interval of 5 s, so only publish/subscribe can make this fast)."""
    from typing import Any

    from parley import Agent, AgentLauncher
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge

    edge = InMemoryEdge(realtime_playout=False)

    async def create_agent(**params: Any) -> Agent:
        return Agent("x", edge=edge, llm=FakeLLM([]), stt=FakeSTT(None), tts=FakeTTS())

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        async with agent.join(await agent.create_call(call_type, call_id)):
            await agent.finish()

    def node(name: str) -> AgentLauncher:
        registry = SessionRegistry(new_store(), node_id=name, ttl=30.0)
        return AgentLauncher(create_agent, join_call, registry=registry, warm_up=False)

    samples = []
    async with node("launcher-a") as a, node("launcher-b") as b:
        for i in range(count):
            session = await a.start_session(f"close-{i}")
            began = time.perf_counter()
            if not await b.request_close_session(f"close-{i}", session.id):
                raise RuntimeError("node B could not find node A's session")
            await session.wait()
            samples.append(time.perf_counter() - began)
    return samples


async def bench_store(name: str, new_store: NewStore, args: argparse.Namespace) -> None:
    async with two_nodes(new_store) as (a, b):
        await start_sessions(b, 20, tag="warm")  # warm-up: open connections, load scripts
        starts = await start_sessions(a, args.sessions)
        closes = await close_latency(a, b, args.closes)
        over = await burst_over_admits(a, b, args.bursts)
    launcher_closes = await launcher_close_latency(new_store, min(args.closes, 50))
    print(name)
    print(f"  start-session work (reserve+register), n={len(starts)}: {percentiles_ms(starts)}")
    print(f"  cross-node close (request on B -> on A), n={len(closes)}: {percentiles_ms(closes)}")
    print(
        f"  cross-node session close (launcher B request -> session closed on A), "
        f"n={len(launcher_closes)}: {percentiles_ms(launcher_closes)}   bar p99 <= 250 ms"
    )
    print(f"  {args.bursts} bursts of 50 concurrent starts, one call, limit 1: over-admits {over}")


async def main(args: argparse.Namespace) -> None:
    memory = MemoryStore()
    await bench_store("memory (single process baseline)", lambda: memory, args)
    try:
        from parley_redis.testing import redis_server, shared_stores
    except ImportError:
        print("redis: skipped, parley-redis is not installed")
        return
    try:
        with redis_server() as url:
            async with shared_stores(url) as new_store:
                await bench_store(f"redis ({url})", new_store, args)
    except LookupError as exc:
        print(f"redis: skipped, {exc}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=500, help="sessions to start")
    parser.add_argument("--closes", type=int, default=100, help="cross-node close requests")
    parser.add_argument("--bursts", type=int, default=20, help="bursts of 50 concurrent starts")
    asyncio.run(main(parser.parse_args()))
