"""OpenTelemetry spans of a session, recorded with the SDK's in-memory exporter.

`parley.tracing.tracer` is swapped for an SDK tracer per test (the global tracer provider is
left alone, so no other test starts recording). ``pytest -s`` shows the span tree of the turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import INVALID_SPAN, StatusCode
from parley import Agent, AgentSession, CascadingPipeline, TurnOptions, tracing
from parley.chat import ToolCall
from parley.edge import Call
from parley.events import AgentTurnEnded, SessionEvent
from parley.metrics import SessionMetrics, TurnMetrics
from parley.policy import ToolOptions
from parley.testing import FakeLLM, FakeSTT, FakeTTS, FakeVAD, InMemoryEdge, Reply
from parley.tool_runner import run_tool_calls
from parley.tools import FunctionTool, function_tool


@pytest.fixture
def exporter(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(tracing, "tracer", provider.get_tracer("parley"))
    yield exporter
    provider.shutdown()


def span_tree(spans: list[ReadableSpan], root: ReadableSpan) -> str:
    """``root`` and its descendants, indented, children in start order, with attributes and
    events (times in ms from the root's start)."""
    children: dict[int, list[ReadableSpan]] = {}
    for span in spans:
        if span.parent is not None:
            children.setdefault(span.parent.span_id, []).append(span)
    origin = root.start_time or 0
    lines: list[str] = []

    def ms(ns: int | None) -> str:
        return f"{((ns or 0) - origin) / 1e6:8.2f}"

    def walk(span: ReadableSpan, depth: int) -> None:
        attributes = (
            ", ".join(f"{k.removeprefix('parley.')}={v!r}" for k, v in span.attributes.items())
            if span.attributes
            else ""
        )
        status = " ERROR" if span.status.status_code is StatusCode.ERROR else ""
        lines.append(
            f"{ms(span.start_time)} → {ms(span.end_time)} ms  {'  ' * depth}{span.name}"
            f"{status}  {attributes}"
        )
        for event in span.events:
            lines.append(f"{ms(event.timestamp)}             {'  ' * (depth + 1)}• {event.name}")
        for kid in sorted(children.get(span.context.span_id, []), key=lambda s: s.start_time or 0):
            walk(kid, depth + 1)

    walk(root, 0)
    return "\n".join(lines)


async def until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait for state with no event to await; the deadline only catches hangs."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def test_one_turn_with_a_tool_call_makes_the_span_tree(
    exporter: InMemorySpanExporter,
) -> None:
    agent = Agent("Use tools.")

    @agent.tools.register
    async def get_weather(location: str) -> str:
        """Get the weather for a location."""
        return f"sunny in {location}"

    llm = FakeLLM(
        [
            Reply(tool_calls=[ToolCall("get_weather", '{"location": "Paris"}')]),
            "It is sunny in Paris.",
        ]
    )
    pipeline = CascadingPipeline(
        stt=FakeSTT(["weather in paris"], min_silence=0.2),
        llm=llm,
        tts=FakeTTS(),
        vad=FakeVAD(),
        turn=TurnOptions(min_endpointing_delay=0.05),
    )
    edge = InMemoryEdge(realtime_playout=False)
    session = AgentSession(agent, pipeline)
    connection = await edge.join(Call("default", "call-7", edge), agent.agent_user)
    ended: list[SessionEvent] = []
    session.events.subscribe(ended.append, AgentTurnEnded)
    await session.start(connection)
    await connection.push_speech(0.5, realtime=True)
    await connection.push_silence(0.5, realtime=True)
    await until(lambda: bool(ended))
    await session.close()

    spans = list(exporter.get_finished_spans())
    by_name: dict[str, list[ReadableSpan]] = {}
    for span in spans:
        by_name.setdefault(span.name, []).append(span)
    [root] = by_name["parley.session"]
    [turn] = by_name["parley.turn"]
    tree = span_tree(spans, root)
    # Printed before the checks: `-s` shows it, and pytest shows it with a failure.
    print("\nspan tree of one session with one turn:\n" + tree)

    assert root.parent is None
    assert root.attributes == {
        "parley.session.id": session.id,
        "parley.call.id": "call-7",
        "parley.agent.name": agent.agent_user.name,
    }
    assert {s.context.trace_id for s in spans} == {root.context.trace_id}
    assert turn.parent is not None and turn.parent.span_id == root.context.span_id
    assert turn.attributes is not None
    assert turn.attributes["parley.turn.number"] == 1
    assert turn.attributes["parley.turn.user_text_length"] == len("weather in paris")
    assert turn.attributes["parley.turn.outcome"] == "played"
    assert turn.attributes["parley.turn.tool_calls"] == 1

    under_turn = sorted(
        (s for s in spans if s.parent is not None and s.parent.span_id == turn.context.span_id),
        key=lambda s: s.start_time or 0,
    )
    assert [s.name for s in under_turn] == [
        "parley.stt",
        "parley.endpointing",
        "parley.llm",
        "parley.tool",
        "parley.llm",
        "parley.tts",
        "parley.playout",
    ]
    stt, endpointing, llm_1, tool, llm_2, tts, playout = under_turn
    assert tool.attributes == {"parley.tool.name": "get_weather", "parley.tool.error": False}
    assert tool.status.status_code is not StatusCode.ERROR
    assert [s.attributes["parley.llm.round"] for s in (llm_1, llm_2) if s.attributes] == [1, 2]
    for llm_span in (llm_1, llm_2):
        assert [e.name for e in llm_span.events] == ["first_token"]
    assert [e.name for e in tts.events] == ["first_audio"]
    assert tts.attributes is not None and tts.attributes["parley.tts.characters"] == len(
        "It is sunny in Paris."
    )
    assert playout.attributes == {"parley.playout.interrupted": False}
    # The stages follow each other: speech → transcript → commit → LLM → tool → LLM → audio.
    assert turn.start_time is not None and stt.start_time is not None
    assert turn.start_time <= stt.start_time
    assert stt.end_time is not None and endpointing.end_time is not None
    assert stt.end_time <= endpointing.end_time <= (llm_1.start_time or 0)
    assert (llm_1.end_time or 0) <= (tool.start_time or 0) <= (llm_2.start_time or 0)
    assert (turn.end_time or 0) <= (root.end_time or 0)


class _Host:
    """The part of `RunnerHost` the tool runner uses, with a session span."""

    def __init__(self, tools: list[FunctionTool], span: Any) -> None:
        self.metrics = SessionMetrics()
        self.span = span
        self._tools = tools

    def tools(self) -> list[FunctionTool]:
        return self._tools

    def emit(self, event: object) -> None:
        pass

    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None:
        pass


async def test_a_failing_tool_span_records_the_error(exporter: InMemorySpanExporter) -> None:
    @function_tool
    async def explode() -> str:
        """Fail."""
        raise RuntimeError("boom")

    session = tracing.start_session("sess_1", "call-1", "Assistant")
    host = _Host([explode], session)
    calls = [ToolCall("explode", "{}"), ToolCall("missing", "{}")]
    results = await run_tool_calls(host, calls, ToolOptions(), turn=TurnMetrics(turn=1))  # type: ignore[arg-type]
    session.end()
    assert results[0] == "error: boom" and "unknown tool" in results[1]
    tools = sorted(
        (s for s in exporter.get_finished_spans() if s.name == "parley.tool"),
        key=lambda s: str((s.attributes or {}).get("parley.tool.name")),
    )
    assert [(s.attributes or {}).get("parley.tool.name") for s in tools] == ["explode", "missing"]
    for span in tools:
        assert span.parent is not None and span.parent.span_id == session.get_span_context().span_id
        assert (span.attributes or {})["parley.tool.error"] is True
        assert span.status.status_code is StatusCode.ERROR
        assert [e.name for e in span.events] == ["exception"]


def test_nothing_is_traced_without_an_sdk() -> None:
    """The API's tracer (no provider installed): the session span does not record, and a
    turn builds no trace at all, which keeps an untraced turn cheap."""
    session = tracing.start_session("sess_1", "call-1", "Assistant")
    assert not session.is_recording()

    class Host:
        span = session

    assert tracing.TurnTrace.start(Host(), TurnMetrics(turn=1, turn_committed=0.0), None) is None
    assert tracing.child(session, "parley.tool") is INVALID_SPAN
