"""Tool execution shared by both runners: parallel calls, timeouts, counting, errors, history."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

import pytest
from parley.chat import ChatContext, ToolCall
from parley.events import SessionEvent, ToolCalled
from parley.metrics import SessionMetrics, TurnMetrics
from parley.policy import ToolOptions
from parley.tool_runner import CANCELLED_RESULT, run_tool_calls
from parley.tools import FunctionTool, function_tool


class Host:
    """The part of `RunnerHost` the tool runner uses."""

    def __init__(self, *tools: FunctionTool) -> None:
        self.metrics = SessionMetrics()
        self.events: list[SessionEvent] = []
        self.errors: list[tuple[str, BaseException]] = []
        self._tools = list(tools)

    def tools(self) -> list[FunctionTool]:
        return self._tools

    def emit(self, event: SessionEvent) -> None:
        self.events.append(event)

    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None:
        self.errors.append((source, error))

    def spawn(self, awaitable: Awaitable[Any], what: str) -> None:
        raise AssertionError("the tool runner spawns nothing")


@function_tool
async def echo(text: str) -> str:
    """Echo the text."""
    return text


@function_tool
async def weather(city: str) -> dict[str, Any]:
    """The weather in a city."""
    return {"city": city, "sky": "clear"}


@function_tool
async def broken() -> str:
    """Always fails."""
    raise ValueError("the service is down")


@function_tool(timeout=0.01)
async def slow() -> str:
    """Never answers in time."""
    await asyncio.sleep(60)
    return "late"


async def run(host: Host, *calls: ToolCall, **kwargs: Any) -> list[str]:
    return await run_tool_calls(host, list(calls), ToolOptions(), **kwargs)  # type: ignore[arg-type]


async def test_results_in_call_order_with_values_as_json_and_each_call_counted() -> None:
    host = Host(echo, weather)
    turn = TurnMetrics(turn=1)
    results = await run(
        host,
        ToolCall("echo", '{"text": "hi"}', id="a"),
        ToolCall("weather", '{"city": "Oslo"}', id="b"),
        turn=turn,
    )
    assert results == ["hi", '{"city": "Oslo", "sky": "clear"}']
    assert host.metrics.tool_calls == 2 and turn.tool_calls == 2
    assert [(e.name, e.error) for e in host.events if isinstance(e, ToolCalled)] == [
        ("echo", False),
        ("weather", False),
    ]


async def test_calls_of_a_round_run_in_parallel() -> None:
    started: list[str] = []
    release = asyncio.Event()

    @function_tool
    async def wait(name: str) -> str:
        """Wait for the other call."""
        started.append(name)
        if len(started) == 2:
            release.set()
        await release.wait()
        return name

    host = Host(wait)
    async with asyncio.timeout(30):
        results = await run(
            host,
            ToolCall("wait", '{"name": "a"}', id="a"),
            ToolCall("wait", '{"name": "b"}', id="b"),
        )
    assert results == ["a", "b"]


async def test_failures_become_result_text_and_are_counted_and_reported() -> None:
    host = Host(broken, slow)
    results = await run(
        host,
        ToolCall("broken", "{}", id="a"),
        ToolCall("slow", "{}", id="b"),
        ToolCall("missing", "{}", id="c"),
    )
    assert results == [
        "error: the service is down",
        "error: tool slow timed out after 0.01 s",
        "error: unknown tool 'missing'; available: broken, slow",
    ]
    assert host.metrics.tool_errors == 3 and host.metrics.tool_calls == 3
    assert [source for source, _ in host.errors] == ["tool", "tool", "tool"]
    assert all(e.error for e in host.events if isinstance(e, ToolCalled))


async def test_every_call_is_answered_in_the_history_even_when_cancelled() -> None:
    started = asyncio.Event()

    @function_tool
    async def hang() -> str:
        """Never returns."""
        started.set()
        await asyncio.sleep(60)
        return "never"

    host = Host(echo, hang)
    history = ChatContext()
    calls = [ToolCall("echo", '{"text": "done"}', id="a"), ToolCall("hang", "{}", id="b")]
    task = asyncio.create_task(run(host, *calls, history=history))
    await asyncio.wait_for(started.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    answered = [(m.tool_call_id, m.content) for m in history if m.role == "tool"]
    assert answered == [("a", "done"), ("b", CANCELLED_RESULT)]
