"""Process and GC collectors, and one /metrics for many workers (prometheus-client's
multiprocess mode): in one process, across real processes sharing a directory, and through
``serve --workers 2``."""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from parley_server.metrics import MULTIPROC_DIR_ENV, ServerMetrics, multiprocess_dir
from parley_server_testkit import ServerProcess, fake_launcher
from prometheus_client.parser import text_string_to_metric_families

HERE = Path(__file__).resolve().parent
Start = Callable[..., ServerProcess]
Samples = dict[str, list[tuple[dict[str, str], float]]]


def samples(text: str) -> Samples:
    """Sample name → [(labels, value)], from the Prometheus text format."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return found


def total(found: Samples, name: str, **labels: str) -> float:
    return sum(value for got, value in found.get(name, []) if labels.items() <= got.items())


async def test_one_process_has_process_platform_and_gc_collectors() -> None:
    metrics = ServerMetrics(fake_launcher(max_concurrent_sessions=4))
    assert not metrics.multiprocess  # the test process never set PROMETHEUS_MULTIPROC_DIR
    found = samples(metrics.render().decode())
    if sys.platform == "linux":  # ProcessCollector reads /proc
        assert total(found, "process_resident_memory_bytes") > 0
        assert total(found, "process_cpu_seconds_total") >= 0
        assert "process_open_fds" in found
    assert "python_info" in found
    assert {labels["generation"] for labels, _ in found["python_gc_objects_collected_total"]} == {
        "0",
        "1",
        "2",
    }
    assert total(found, "parley_sessions_capacity") == 4
    # A second Runner in the process has its own registry: no "duplicated timeseries".
    again = ServerMetrics(fake_launcher())
    assert "process_resident_memory_bytes" in again.render().decode() or sys.platform != "linux"


# A worker: its own launcher (capacity 3), one session started and one turn, written to the
# shared directory; ``stop`` ends it as a worker that shuts down; ``render`` prints /metrics.
_WORKER = textwrap.dedent(
    """
    import asyncio, sys
    sys.path.insert(0, {here!r})
    from parley.metrics import TurnMetrics
    from parley_server.metrics import ServerMetrics
    from parley_server_testkit import fake_launcher

    async def main(action):
        metrics = ServerMetrics(fake_launcher(max_concurrent_sessions=3))
        assert metrics.multiprocess
        if action != "render":
            metrics.sessions_started.inc()
            metrics.record_turn(TurnMetrics(turn=1, end_of_speech=1.0, first_audio_sent=1.4))
            metrics.refresh()
        if action == "stop":
            await metrics.stop()
        if action == "render":
            sys.stdout.write(metrics.render().decode())

    asyncio.run(main(sys.argv[1]))
    """
).format(here=str(HERE))


def _worker(directory: Path, action: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", _WORKER, action],
        env={**os.environ, MULTIPROC_DIR_ENV: str(directory)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_workers_sharing_a_directory_are_summed_on_any_of_them(tmp_path: Path) -> None:
    _worker(tmp_path, "run")
    _worker(tmp_path, "stop")  # shut down: its live gauges leave, its counts stay
    found = samples(_worker(tmp_path, "render"))
    assert total(found, "parley_sessions_started_total") == 2
    assert total(found, "parley_turns_total", interrupted="false") == 2
    assert total(found, "parley_turn_stage_seconds_count", stage="end_to_end") == 2
    # live gauges: the running worker and the renderer, not the one that stopped
    assert total(found, "parley_sessions_capacity") == 6
    assert found["parley_ready"] == [({}, 0.0)]  # one value (the minimum): never started
    pids = {labels["pid"] for labels, _ in found.get("python_info", [])}
    assert len(pids) == 2
    if sys.platform == "linux":
        memory = found["process_resident_memory_bytes"]
        assert len({labels["pid"] for labels, _ in memory}) == 2
        assert all(value > 0 for _, value in memory)


def test_multiprocess_dir_is_made_for_the_workers_and_removed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(MULTIPROC_DIR_ENV, raising=False)
    with multiprocess_dir() as made:
        assert os.environ[MULTIPROC_DIR_ENV] == made and os.path.isdir(made)
        Path(made, "counter_1.db").write_bytes(b"")
    assert MULTIPROC_DIR_ENV not in os.environ and not os.path.exists(made)

    # An operator's own directory is kept, emptied of the last run's files only.
    monkeypatch.setenv(MULTIPROC_DIR_ENV, str(tmp_path))
    (tmp_path / "gauge_livesum_99.db").write_bytes(b"stale")
    (tmp_path / "notes.txt").write_text("mine")
    with multiprocess_dir() as given:
        assert given == str(tmp_path)
        assert not list(tmp_path.glob("*.db")) and (tmp_path / "notes.txt").exists()
    assert tmp_path.exists() and os.environ[MULTIPROC_DIR_ENV] == str(tmp_path)


def _scrape(url: str) -> Samples:
    # A new connection per scrape: any worker may answer.
    return samples(httpx.get(url + "/metrics", timeout=10).text)


def test_serve_with_two_workers_answers_metrics_for_both(server_process: Start) -> None:
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "parley-metrics-*")))
    server = server_process("serve", "--workers", "2", env={"PARLEY_TEST_DRAIN_TIMEOUT": "0.5"})
    server.wait_healthy()
    server.wait_for_line("Application startup complete", count=2)
    with httpx.Client(base_url=server.url) as http:
        for _ in range(3):
            assert http.post("/calls/demo/sessions", json={}).status_code == 201
    deadline = time.monotonic() + 30
    while True:  # each worker writes its live figures every lag interval (0.25 s)
        scrapes = [_scrape(server.url) for _ in range(6)]
        agreed = all(
            total(found, "parley_sessions_started_total") == 3
            and len({labels["pid"] for labels, _ in found.get("python_info", [])}) == 2
            for found in scrapes
        )
        if agreed or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for found in scrapes:
        assert total(found, "parley_sessions_started_total") == 3, found.get(
            "parley_sessions_started_total"
        )
        assert len({labels["pid"] for labels, _ in found["python_info"]}) == 2
        assert total(found, "parley_ready") == 1
    server.signal(signal.SIGTERM)
    assert server.wait() == 0
    after = set(glob.glob(os.path.join(tempfile.gettempdir(), "parley-metrics-*")))
    assert not after - before, "the workers' metrics directory was left behind"
