"""Tool execution for every runner: parallel calls, timeouts, counting, error text, history.

Calls of one round run in parallel, each bounded by the tool's own timeout or
`ToolOptions.timeout`. A failure becomes the call's result text (``"error: ..."``) so the
model can react; it is counted in `SessionMetrics.tool_errors` and reported as a recoverable
``tool`` error. Every call is counted once in `SessionMetrics.tool_calls` (and in the turn's
metrics when there is a turn) and announced with a `ToolCalled` event.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Protocol

from opentelemetry.trace import Span

from parley.chat import ChatContext, ToolCall
from parley.events import SessionEvent, ToolCalled
from parley.host import RunnerHost
from parley.metrics import TurnMetrics
from parley.policy import ToolOptions
from parley.tools import ToolError
from parley.tracing import active, child, session_span
from parley.tracing import end as end_span

CANCELLED_RESULT = "cancelled: the user interrupted before this finished"
ERROR_PREFIX = "error: "
"""How the result of a call that failed begins (the model reads the reason after it)."""


class Reports(Protocol):
    """Where a round's `ToolCalled` events and tool error reports go (a `RunnerHost`)."""

    def emit(self, event: SessionEvent) -> None: ...
    def report_error(self, source: str, error: BaseException, recoverable: bool) -> None: ...


async def run_tool_calls(
    host: RunnerHost,
    calls: Sequence[ToolCall],
    options: ToolOptions,
    *,
    turn: TurnMetrics | None = None,
    history: ChatContext | None = None,
    span: Span | None = None,
    reports: Reports | None = None,
) -> list[str]:
    """Run ``calls`` in parallel and return their result texts, in order.

    With ``history`` every call gets a ``tool`` message there, also when the round is
    cancelled mid-flight: providers reject a history with an unanswered call. Each call is
    a ``parley.tool`` span under ``span`` (the turn's; default: the session's). ``reports``
    takes the `ToolCalled` events and the error reports (default: the session; a reply
    answered ahead holds them until its turn is committed).
    """
    said: Reports = reports if reports is not None else host
    registry = {tool.name: tool for tool in host.tools()}
    results: dict[str, str] = {}
    parent = span if span is not None else session_span(host)

    async def run(call: ToolCall) -> None:
        started = time.perf_counter()
        tool = registry.get(call.name)
        error = True
        call_span = child(parent, "parley.tool", {"parley.tool.name": call.name})
        failure: BaseException | None = None
        try:
            if tool is None:
                raise ToolError(
                    f"unknown tool {call.name!r}; available: {', '.join(registry) or 'none'}"
                )
            timeout = tool.timeout or options.timeout
            try:
                with active(call_span):  # what the tool calls (an HTTP request) nests under it
                    value = await asyncio.wait_for(tool.invoke(call.arguments), timeout)
            except TimeoutError as exc:
                raise ToolError(f"tool {call.name} timed out after {timeout} s") from exc
            result = value if isinstance(value, str) else json.dumps(value, default=str)
            error = False
        except asyncio.CancelledError:
            results[call.id] = CANCELLED_RESULT
            call_span.set_attribute("parley.tool.cancelled", True)
            call_span.end()
            raise
        except Exception as exc:
            result = f"{ERROR_PREFIX}{exc}"
            failure = exc
            host.metrics.tool_errors += 1
            said.report_error("tool", exc, True)
        results[call.id] = result
        call_span.set_attribute("parley.tool.error", error)
        end_span(call_span, failure)
        host.metrics.tool_calls += 1
        if turn is not None:
            turn.tool_calls += 1
        said.emit(
            ToolCalled(call.name, call.arguments, result, error, time.perf_counter() - started)
        )

    try:
        await asyncio.gather(*(run(call) for call in calls))
    finally:
        if history is not None:
            for call in calls:
                history.add(
                    "tool",
                    results.get(call.id, CANCELLED_RESULT),
                    tool_call_id=call.id,
                    name=call.name,
                )
    return [results[call.id] for call in calls]
