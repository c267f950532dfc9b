"""The per-call limit holds through a store that lost its data: the first re-claim wins."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from parley import Agent, AgentLauncher
from parley.events import SessionState
from parley.registry import SessionRegistry
from parley.stores.memory import MemoryStore
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge

CALL = "limited"


class Node:
    def __init__(self, store: MemoryStore, node_id: str) -> None:
        self.closed: list[tuple[str, str]] = []
        self.close_requested = asyncio.Event()
        self.registry = SessionRegistry(
            store, node_id=node_id, auto_heartbeat=False, on_close_requested=self._close
        )

    async def _close(self, call_id: str, session_id: str) -> None:
        self.closed.append((call_id, session_id))
        await self.registry.release(call_id, session_id)
        self.close_requested.set()

    async def start_session(self, session_id: str) -> bool:
        if not await self.registry.reserve(CALL, session_id, limit=1):
            return False
        await self.registry.register(CALL, session_id, state="listening")
        return True


async def test_two_sessions_on_a_full_call_after_data_loss_leave_the_first_to_reclaim(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = MemoryStore()
    a, b = Node(store, "node-a"), Node(store, "node-b")
    await a.registry.start()
    await b.registry.start()
    try:
        assert await a.start_session("sess-a")
        assert not await b.start_session("sess-b")  # the limit holds before the loss

        store.clear()  # the store restarts empty
        assert await b.start_session("sess-b")  # admitted: the store forgot sess-a's slot

        caplog.set_level(logging.WARNING, logger="parley.registry")
        assert await b.registry.heartbeat()
        assert await a.registry.heartbeat()  # sess-a cannot re-claim: sess-b holds the slot
        await asyncio.wait_for(a.close_requested.wait(), timeout=10)

        assert a.closed == [(CALL, "sess-a")] and b.closed == []
        assert [r.session_id for r in await a.registry.list_sessions(CALL)] == ["sess-b"]
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert any("closing session sess-a" in w and "slot was lost" in w for w in warnings)

        # later heartbeats leave the survivor alone
        assert await a.registry.heartbeat() and await b.registry.heartbeat()
        assert b.closed == []
        assert [r.session_id for r in await b.registry.list_sessions(CALL)] == ["sess-b"]
    finally:
        await a.registry.stop()
        await b.registry.stop()


async def test_a_session_alone_on_its_call_reclaims_its_slot_after_data_loss() -> None:
    store = MemoryStore()
    a = Node(store, "node-a")
    await a.registry.start()
    try:
        assert await a.start_session("sess-a")
        store.clear()
        assert await a.registry.heartbeat()
        assert a.closed == []
        assert [r.session_id for r in await a.registry.list_sessions(CALL)] == ["sess-a"]
        other = Node(store, "node-b")
        assert not await other.start_session("sess-b")  # the re-claimed slot counts again
    finally:
        await a.registry.stop()


async def test_launchers_sharing_a_store_close_the_session_that_lost_its_slot() -> None:
    store = MemoryStore()
    edge = InMemoryEdge()

    async def create_agent(**params: Any) -> Agent:
        return Agent("hi", edge=edge, llm=FakeLLM([]), tts=FakeTTS(), stt=FakeSTT(None))

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        async with agent.join(await agent.create_call(call_type, call_id)):
            await agent.finish()

    def launcher(node_id: str) -> AgentLauncher:
        registry = SessionRegistry(store, node_id=node_id, auto_heartbeat=False)
        return AgentLauncher(
            create_agent,
            join_call,
            registry=registry,
            max_sessions_per_call=1,
            warm_up=False,
            drain_timeout=0.1,
        )

    async with launcher("node-a") as a, launcher("node-b") as b:
        first = await a.start_session(CALL)
        store.clear()
        second = await b.start_session(CALL)
        await b.registry.heartbeat()
        await a.registry.heartbeat()
        await asyncio.wait_for(first.wait(), timeout=10)
        async with asyncio.timeout(10):
            while a.stats().running:  # the close finishes in the background
                await asyncio.sleep(0.01)
        assert b.stats().running == 1
        assert second.state is SessionState.LISTENING
        assert [r.session_id for r in await a.list_sessions(CALL)] == [second.id]
