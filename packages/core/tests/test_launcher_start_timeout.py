"""AgentLauncher start_timeout: a start stuck in create_agent or join_call frees its slots."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from parley import Agent, AgentLauncher
from parley.events import SessionState
from parley.launcher import SessionStartTimedOut
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge

CALL = "stuck"


def make_launcher(never: asyncio.Event) -> AgentLauncher:
    edge = InMemoryEdge()

    async def create_agent(**params: Any) -> Agent:
        if params.get("stuck_create"):
            await never.wait()
        return Agent("hi", edge=edge, llm=FakeLLM([]), tts=FakeTTS(), stt=FakeSTT(None))

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        if params.get("stuck_join"):
            await never.wait()  # never joins, so the session never starts
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()

    return AgentLauncher(
        create_agent,
        join_call,
        max_sessions_per_call=1,
        max_concurrent_sessions=1,
        start_timeout=0.3,
        warm_up=False,
        drain_timeout=0.1,
    )


@pytest.mark.parametrize(
    ("stuck", "step"), [("stuck_create", "create_agent"), ("stuck_join", "join_call")]
)
async def test_a_stuck_start_times_out_and_frees_its_slots(stuck: str, step: str) -> None:
    never = asyncio.Event()
    launcher = make_launcher(never)
    async with launcher:
        with pytest.raises(SessionStartTimedOut, match=rf"{step} .*start_timeout=0\.3 s"):
            await launcher.start_session(CALL, **{stuck: True})
        stats = launcher.stats()
        assert (stats.running, stats.starting, stats.failed_starts) == (0, 0, 1)
        assert stats.ready
        records = await launcher.list_sessions(CALL)
        assert [r.state for r in records] == ["failed"]  # visible as failed, holding no slot
        assert launcher.registry.local_sessions() == []
        # the node (limit 1) and the call (limit 1) admit the next start
        session = await launcher.start_session(CALL)
        assert session.state is SessionState.LISTENING
        assert launcher.stats().running == 1


def test_start_timeout_must_be_positive() -> None:
    async def unused(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError

    with pytest.raises(ValueError, match="start_timeout"):
        AgentLauncher(unused, unused, start_timeout=0)
