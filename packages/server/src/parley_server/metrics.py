"""Prometheus metrics of one Runner, in its own `CollectorRegistry`.

Gauges about this node (sessions by state, readiness, capacity) are read from the launcher at
scrape time. Counters and latency histograms come from the sessions' typed events, which an
observer subscribes to through the ``session_started`` hook; the observer counts every
session started in this process (one Runner per process is the deployment model). Event-loop
lag is measured by a small periodic task: how late a short sleep wakes up.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from parley.events import (
    ErrorOccurred,
    Interrupted,
    SessionEvent,
    ToolCalled,
    TurnMetricsReady,
)
from parley.plugins import hookimpl, plugin_manager
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from parley.launcher import AgentLauncher
    from parley.metrics import TurnMetrics
    from parley.session import AgentSession

logger = logging.getLogger("parley.server.metrics")

STAGES = ("transcript", "endpointing", "llm_ttft", "tts_ttfa", "end_to_end")
_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0)
_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _stage_seconds(turn: TurnMetrics) -> Iterator[tuple[str, float]]:
    spans = (
        turn.transcript_delay,
        turn.endpointing_delay,
        turn.llm_ttft,
        turn.tts_ttfa,
        turn.end_to_end,
    )
    for stage, value in zip(STAGES, spans, strict=True):
        if value is not None:
            yield stage, value


class _LauncherCollector(Collector):
    """Reads the launcher's state when Prometheus scrapes."""

    def __init__(self, launcher: AgentLauncher) -> None:
        self.launcher = launcher

    def collect(self) -> Iterator[Metric]:
        launcher = self.launcher
        stats = launcher.stats()
        sessions = GaugeMetricFamily(
            "parley_sessions", "Sessions on this node by state", labels=["state"]
        )
        by_state = dict(stats.by_state)
        by_state["starting"] = by_state.get("starting", 0) + stats.starting
        for state, count in sorted(by_state.items()):
            sessions.add_metric([state], count)
        yield sessions
        yield GaugeMetricFamily("parley_ready", "1 if this node admits sessions", value=stats.ready)
        yield GaugeMetricFamily("parley_draining", "1 while this node drains", value=stats.draining)
        yield GaugeMetricFamily(
            "parley_store_healthy",
            "1 while the session store answers",
            value=launcher.registry.healthy,
        )
        if launcher.max_concurrent_sessions is not None:
            yield GaugeMetricFamily(
                "parley_sessions_capacity",
                "max_concurrent_sessions of this node",
                value=launcher.max_concurrent_sessions,
            )
        yield CounterMetricFamily(
            "parley_session_start_failures",
            "Sessions whose create_agent or join_call failed",
            value=stats.failed_starts,
        )


class ServerMetrics:
    """The metrics of one Runner; `render` gives the Prometheus text format."""

    def __init__(self, launcher: AgentLauncher, lag_interval: float = 0.25) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag_interval = lag_interval
        self.registry.register(_LauncherCollector(launcher))
        self.sessions_started = Counter(
            "parley_sessions_started", "Sessions started in this process", registry=self.registry
        )
        self.sessions_ended = Counter(
            "parley_sessions_ended",
            "Sessions ended in this process, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.turns = Counter(
            "parley_turns",
            "Conversation turns completed, by whether the agent was interrupted",
            ["interrupted"],
            registry=self.registry,
        )
        self.stage_latency = Histogram(
            "parley_turn_stage_seconds",
            "Per-turn latency by stage (end_to_end: end of user speech to first agent audio)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.interruptions = Counter(
            "parley_interruptions",
            "Barge-ins; false=true when the agent resumed because the user said nothing",
            ["false_interruption"],
            registry=self.registry,
        )
        self.errors = Counter(
            "parley_errors",
            "Errors reported by sessions, by source and recoverability",
            ["source", "recoverable"],
            registry=self.registry,
        )
        self.tool_calls = Counter(
            "parley_tool_calls",
            "Tool calls, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.loop_lag = Histogram(
            "parley_event_loop_lag_seconds",
            "How late the event loop ran a periodic timer",
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.loop_lag_last = Gauge(
            "parley_event_loop_lag_last_seconds",
            "The most recent event-loop lag measurement",
            registry=self.registry,
        )
        self._observer = _SessionObserver(self)
        self._lag_task: asyncio.Task[None] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        manager = plugin_manager()
        if not manager.is_registered(self._observer):
            manager.register(self._observer, name=f"parley-server-metrics-{id(self):x}")
        if self._lag_task is None:
            self._lag_task = asyncio.create_task(self._measure_lag(), name="parley-loop-lag")

    async def stop(self) -> None:
        manager = plugin_manager()
        if manager.is_registered(self._observer):
            manager.unregister(self._observer)
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.lag_interval)
            lag = max(0.0, loop.time() - before - self.lag_interval)
            self.loop_lag.observe(lag)
            self.loop_lag_last.set(lag)

    # --- recording ----------------------------------------------------------------------------

    def record_turn(self, turn: TurnMetrics) -> None:
        self.turns.labels(interrupted=str(turn.interrupted).lower()).inc()
        for stage, seconds in _stage_seconds(turn):
            self.stage_latency.labels(stage=stage).observe(seconds)

    def record_event(self, event: SessionEvent) -> None:
        if isinstance(event, TurnMetricsReady):
            self.record_turn(event.metrics)
        elif isinstance(event, Interrupted):
            self.interruptions.labels(
                false_interruption=str(event.false_interruption).lower()
            ).inc()
        elif isinstance(event, ErrorOccurred):
            self.errors.labels(
                source=event.source, recoverable=str(event.recoverable).lower()
            ).inc()
        elif isinstance(event, ToolCalled):
            self.tool_calls.labels(outcome="error" if event.error else "ok").inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _SessionObserver:
    """A plugin object: subscribes to each session's events when it starts."""

    def __init__(self, metrics: ServerMetrics) -> None:
        self.metrics = metrics

    @hookimpl
    def session_started(self, session: AgentSession) -> None:
        self.metrics.sessions_started.inc()
        session.events.subscribe(self._on_event, SessionEvent)

    @hookimpl
    def session_ended(self, session: AgentSession) -> None:
        outcome = "failed" if session.error is not None else "closed"
        self.metrics.sessions_ended.labels(outcome=outcome).inc()

    def _on_event(self, event: Any) -> None:
        self.metrics.record_event(event)
