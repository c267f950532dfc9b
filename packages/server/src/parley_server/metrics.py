"""Prometheus metrics of one Runner, in its own `CollectorRegistry`.

Gauges about this node (sessions by state, readiness, capacity) are read from the launcher at
scrape time. Counters and latency histograms come from the sessions' typed events, which an
observer subscribes to through the ``session_started`` hook; the observer counts every
session started in this process (one Runner per process is the deployment model). Event-loop
lag is measured by a small periodic task: how late a short sleep wakes up. The process, platform
(``python_info``) and garbage-collector collectors of prometheus-client are on the same registry.

With ``serve --workers N`` each worker is its own process. The server then gives its workers
one ``PROMETHEUS_MULTIPROC_DIR`` (`multiprocess_dir`) and every worker runs in
prometheus-client's multiprocess mode: counters and histograms are summed over the workers, the
launcher's gauges become gauges with a multiprocess mode (sessions and capacity summed, ``ready``
the minimum, ``draining`` the maximum, over live workers) refreshed by the same periodic task,
and ``/metrics`` on any worker answers for all of them (`MultiProcessCollector`). Process and GC
figures cannot be summed: they are reported per live worker, as gauges with a ``pid`` label.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import logging
import os
import shutil
import tempfile
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
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
    multiprocess,
    values,
)
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
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_mode() -> bool:
    """Whether this process's metrics live in ``PROMETHEUS_MULTIPROC_DIR``: prometheus-client
    decides once, at its import, from that variable."""
    return values.ValueClass is not values.MutexValue


@contextlib.contextmanager
def multiprocess_dir() -> Iterator[str]:
    """A ``PROMETHEUS_MULTIPROC_DIR`` for the workers this process is about to start (they
    inherit the environment). Without one set, a fresh temporary directory, removed at the
    end; with one set (to keep the files elsewhere), that directory, emptied of the previous
    run's ``*.db`` files first, as prometheus-client requires."""
    given = os.environ.get(MULTIPROC_DIR_ENV)
    if given:
        os.makedirs(given, exist_ok=True)
        for stale in glob.glob(os.path.join(given, "*.db")):
            os.remove(stale)
        yield given
        return
    path = tempfile.mkdtemp(prefix="parley-metrics-")
    os.environ[MULTIPROC_DIR_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_DIR_ENV, None)
        shutil.rmtree(path, ignore_errors=True)


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


class _LauncherGauges:
    """Multiprocess mode: the launcher's state as gauges that the workers' files combine.

    A scrape reaches one worker, which cannot read the others' launchers: each worker writes
    its own state every `ServerMetrics.lag_interval` and before it answers a scrape.
    """

    def __init__(self, launcher: AgentLauncher) -> None:
        self.launcher = launcher
        self.sessions = Gauge(
            "parley_sessions",
            "Sessions on this node by state (summed over live workers)",
            ["state"],
            registry=None,
            multiprocess_mode="livesum",
        )
        self.ready = Gauge(
            "parley_ready",
            "1 if every live worker of this node admits sessions",
            registry=None,
            multiprocess_mode="livemin",
        )
        self.draining = Gauge(
            "parley_draining",
            "1 while a worker of this node drains",
            registry=None,
            multiprocess_mode="livemax",
        )
        self.store_healthy = Gauge(
            "parley_store_healthy",
            "1 while the session store answers every live worker",
            registry=None,
            multiprocess_mode="livemin",
        )
        self.capacity = Gauge(
            "parley_sessions_capacity",
            "max_concurrent_sessions of this node (summed over live workers)",
            registry=None,
            multiprocess_mode="livesum",
        )
        self.start_failures = Counter(
            "parley_session_start_failures",
            "Sessions whose create_agent or join_call failed",
            registry=None,
        )
        self._states: set[str] = set()
        self._failures_seen = 0

    def refresh(self) -> None:
        launcher = self.launcher
        stats = launcher.stats()
        by_state = dict(stats.by_state)
        by_state["starting"] = by_state.get("starting", 0) + stats.starting
        for state in self._states - by_state.keys():
            self.sessions.labels(state=state).set(0)  # gone from this worker, not stale
        for state, count in by_state.items():
            self.sessions.labels(state=state).set(count)
        self._states |= by_state.keys()
        self.ready.set(stats.ready)
        self.draining.set(stats.draining)
        self.store_healthy.set(launcher.registry.healthy)
        if launcher.max_concurrent_sessions is not None:
            self.capacity.set(launcher.max_concurrent_sessions)
        if stats.failed_starts > self._failures_seen:
            self.start_failures.inc(stats.failed_starts - self._failures_seen)
            self._failures_seen = stats.failed_starts


class _ProcessGauges:
    """Multiprocess mode: this worker's process, platform and GC figures as ``liveall`` gauges
    (a ``pid`` label each). prometheus-client's own collectors read the process answering the
    scrape only, and these figures (memory, CPU, collections) have no meaningful sum."""

    def __init__(self) -> None:
        self._source = CollectorRegistry()  # private: read here, never served as is
        ProcessCollector(registry=self._source)
        PlatformCollector(registry=self._source)
        GCCollector(registry=self._source)
        self._gauges: dict[str, Gauge] = {}

    def refresh(self) -> None:
        for family in self._source.collect():
            for sample in family.samples:
                gauge = self._gauges.get(sample.name)
                if gauge is None:
                    gauge = self._gauges[sample.name] = Gauge(
                        sample.name,
                        f"{family.documentation} (per worker)",
                        sorted(sample.labels),
                        registry=None,
                        multiprocess_mode="liveall",
                    )
                (gauge.labels(**sample.labels) if sample.labels else gauge).set(sample.value)


class ServerMetrics:
    """The metrics of one Runner; `render` gives the Prometheus text format.

    In multiprocess mode (see the module docstring) ``registry`` holds a
    `MultiProcessCollector`, which reads every worker's files at each scrape.
    """

    def __init__(self, launcher: AgentLauncher, lag_interval: float = 0.25) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.lag_interval = lag_interval
        self.multiprocess = multiprocess_mode()
        self._launcher_gauges: _LauncherGauges | None = None
        self._process_gauges: _ProcessGauges | None = None
        registry: CollectorRegistry | None = self.registry
        if self.multiprocess:
            # Our metrics write to the shared files; the registry reads them all back.
            multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            registry = None
            self._launcher_gauges = _LauncherGauges(launcher)
            self._process_gauges = _ProcessGauges()
        else:
            self.registry.register(_LauncherCollector(launcher))
            ProcessCollector(registry=self.registry)
            PlatformCollector(registry=self.registry)
            GCCollector(registry=self.registry)
        self.sessions_started = Counter(
            "parley_sessions_started", "Sessions started in this process", registry=registry
        )
        self.sessions_ended = Counter(
            "parley_sessions_ended",
            "Sessions ended in this process, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.turns = Counter(
            "parley_turns",
            "Conversation turns completed, by whether the agent was interrupted",
            ["interrupted"],
            registry=registry,
        )
        self.stage_latency = Histogram(
            "parley_turn_stage_seconds",
            "Per-turn latency by stage (end_to_end: end of user speech to first agent audio)",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.interruptions = Counter(
            "parley_interruptions",
            "Barge-ins; false=true when the agent resumed because the user said nothing",
            ["false_interruption"],
            registry=registry,
        )
        self.errors = Counter(
            "parley_errors",
            "Errors reported by sessions, by source and recoverability",
            ["source", "recoverable"],
            registry=registry,
        )
        self.tool_calls = Counter(
            "parley_tool_calls",
            "Tool calls, by outcome",
            ["outcome"],
            registry=registry,
        )
        self.loop_lag = Histogram(
            "parley_event_loop_lag_seconds",
            "How late the event loop ran a periodic timer",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.loop_lag_last = Gauge(
            "parley_event_loop_lag_last_seconds",
            "The most recent event-loop lag measurement (the worst live worker's)",
            registry=registry,
            multiprocess_mode="livemax",
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
        if self.multiprocess:
            # This worker's live gauges leave the sums; its counters stay in them.
            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    async def _measure_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.lag_interval)
            lag = max(0.0, loop.time() - before - self.lag_interval)
            self.loop_lag.observe(lag)
            self.loop_lag_last.set(lag)
            self.refresh()

    def refresh(self) -> None:
        """Multiprocess mode: write this worker's launcher and process figures to its files
        (read-at-scrape collectors cannot see the other workers)."""
        if self._launcher_gauges is not None:
            try:
                self._launcher_gauges.refresh()
            except Exception:
                logger.exception("could not read the launcher's state for /metrics")
        if self._process_gauges is not None:
            self._process_gauges.refresh()

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
        self.refresh()  # the answering worker's figures are current, the others' ≤ lag_interval old
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
