"""AgentLauncher: limits, idle and duration limits, drain, failed joins, per-session params."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from parley import Agent, AgentLauncher
from parley.events import SessionState
from parley.launcher import (
    CallSessionLimitExceeded,
    InvalidCallId,
    LauncherNotRunning,
    SessionLimitExceeded,
    SessionStartFailed,
)
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge


def make_launcher(edge: InMemoryEdge, **options: Any) -> tuple[AgentLauncher, list[dict[str, Any]]]:
    created: list[dict[str, Any]] = []

    async def create_agent(**params: Any) -> Agent:
        created.append(params)
        if params.get("fail_create"):
            raise RuntimeError("cannot build agent")
        return Agent(
            params.get("instructions", "hi"),
            edge=edge,
            llm=FakeLLM([]),
            tts=FakeTTS(),
            stt=FakeSTT(None),
        )

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        if params.get("fail_join"):
            raise ConnectionError("edge refused the join")
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()

    options.setdefault("warm_up", False)
    options.setdefault("drain_timeout", 0.1)
    return AgentLauncher(create_agent, join_call, **options), created


async def test_start_session_passes_params_and_lists_it() -> None:
    edge = InMemoryEdge()
    launcher, created = make_launcher(edge)
    async with launcher:
        session = await launcher.start_session("call-1", instructions="be nice")
        assert created[-1] == {"instructions": "be nice"}
        assert session.agent.instructions == "be nice"
        assert session.state is SessionState.LISTENING
        records = await launcher.list_sessions("call-1")
        assert [r.session_id for r in records] == [session.id]
        info = await launcher.get_session_info("call-1", session.id)
        assert (
            info is not None
            and info.state == "listening"
            and info.node_id == launcher.registry.node_id
        )
        assert await launcher.close_session(session.id)
        assert session.state is SessionState.CLOSED
        assert await launcher.list_sessions("call-1") == []
        assert not await launcher.close_session(session.id)


@pytest.mark.parametrize("call_id", ["UPPER", "a/b", "a*b", "", "x" * 1000, "spa ce"])
async def test_bad_call_ids_are_rejected(call_id: str) -> None:
    launcher, created = make_launcher(InMemoryEdge())
    async with launcher:
        with pytest.raises(InvalidCallId, match="invalid call_id"):
            await launcher.start_session(call_id)
    assert created == []


async def test_limits_raise_typed_errors() -> None:
    edge = InMemoryEdge()
    launcher, _ = make_launcher(edge, max_concurrent_sessions=2, max_sessions_per_call=1)
    async with launcher:
        await launcher.start_session("a")
        with pytest.raises(CallSessionLimitExceeded):
            await launcher.start_session("a")
        await launcher.start_session("b")
        assert not launcher.ready
        with pytest.raises(SessionLimitExceeded):
            await launcher.start_session("c")


async def test_concurrent_burst_respects_the_per_call_limit() -> None:
    launcher, _ = make_launcher(InMemoryEdge(), max_sessions_per_call=3)
    async with launcher:
        results = await asyncio.gather(
            *(launcher.start_session("burst") for _ in range(20)), return_exceptions=True
        )
        started = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, CallSessionLimitExceeded)]
        assert len(started) == 3 and len(refused) == 17


async def test_failed_join_is_recorded_not_dropped() -> None:
    launcher, _ = make_launcher(InMemoryEdge(), max_sessions_per_call=1)
    async with launcher:
        with pytest.raises(SessionStartFailed, match="edge refused the join"):
            await launcher.start_session("f", fail_join=True)
        records = await launcher.list_sessions("f")
        assert len(records) == 1
        assert records[0].state == "failed" and "edge refused the join" in (records[0].error or "")
        # the failed session does not hold the call's only slot
        session = await launcher.start_session("f")
        assert session.state is SessionState.LISTENING
        with pytest.raises(SessionStartFailed, match="cannot build agent"):
            await launcher.start_session("g", fail_create=True)


async def test_idle_timeout_counts_from_when_the_agent_is_alone() -> None:
    edge = InMemoryEdge()
    launcher, _ = make_launcher(edge, agent_idle_timeout=0.3, maintenance_interval=0.05)
    async with launcher:
        session = await launcher.start_session("idle")
        connection = edge.connections["idle"]
        await asyncio.sleep(0.5)
        assert not session.closed, "a participant is on the call"
        await connection.remove_participant(connection.humans()[0].id)
        await asyncio.wait_for(session.wait(), 30)
        assert launcher.stats().running == 0


async def test_an_idle_timeout_of_zero_is_off_as_in_vision_agents() -> None:
    edge = InMemoryEdge()
    launcher, _ = make_launcher(edge, agent_idle_timeout=0, maintenance_interval=0.02)
    assert launcher.agent_idle_timeout is None
    async with launcher:
        session = await launcher.start_session("zero")
        connection = edge.connections["zero"]
        await connection.remove_participant(connection.humans()[0].id)
        await asyncio.sleep(0.2)  # ten maintenance passes alone on the call
        assert not session.closed


@pytest.mark.parametrize(
    ("option", "value"), [("agent_idle_timeout", -1), ("max_session_duration_seconds", 0)]
)
def test_limits_out_of_range_are_refused(option: str, value: float) -> None:
    with pytest.raises(ValueError, match=option):
        make_launcher(InMemoryEdge(), **{option: value})


async def test_duration_limit_closes_the_session() -> None:
    launcher, _ = make_launcher(
        InMemoryEdge(), max_session_duration_seconds=0.2, maintenance_interval=0.05
    )
    async with launcher:
        session = await launcher.start_session("long")
        await asyncio.wait_for(session.wait(), 30)
        assert await launcher.list_sessions("long") == []


async def test_stop_drains_then_closes_and_refuses_new_sessions() -> None:
    launcher, _ = make_launcher(InMemoryEdge(), drain_timeout=0.2)
    await launcher.start()
    session = await launcher.start_session("drain")
    stopping = asyncio.create_task(launcher.stop())
    await asyncio.sleep(0.05)
    assert launcher.draining and not launcher.ready
    with pytest.raises(LauncherNotRunning, match="draining"):
        await launcher.start_session("late")
    await asyncio.wait_for(stopping, 30)
    assert session.state is SessionState.CLOSED
    with pytest.raises(LauncherNotRunning):
        await launcher.start_session("after")


async def test_request_close_reaches_the_session_through_the_registry() -> None:
    launcher, _ = make_launcher(InMemoryEdge())
    async with launcher:
        session = await launcher.start_session("rc")
        # as another node would: through the registry only
        assert await launcher.registry.request_close("rc", session.id)
        await asyncio.wait_for(session.wait(), 30)
        assert not await launcher.request_close_session("rc", "sess_unknown")


async def test_session_params_are_visible_to_parts_built_for_the_session() -> None:
    from parley.launcher import current_session_params

    seen: list[object] = []

    async def create_agent(**params: Any) -> Agent:
        seen.append(current_session_params.get().get("color"))
        return Agent("x", edge=InMemoryEdge(), llm=FakeLLM([]), tts=FakeTTS(), stt=FakeSTT(None))

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        seen.append(current_session_params.get().get("color"))  # user code passes nothing on
        async with agent.join(await agent.create_call(call_type, call_id)):
            await agent.finish()

    launcher = AgentLauncher(create_agent, join_call, warm_up=False, drain_timeout=0.1)
    async with launcher:
        await launcher.start_session("params", color="blue")
        assert seen == ["blue", "blue"]
        assert current_session_params.get() == {}
