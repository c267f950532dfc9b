"""HTTP session API latency under concurrent load, for 1 and 2 uvicorn workers.

    python bench/http_api.py [--quick]

For each worker count this starts a real server (this file's Runner: fake parts over the
in-memory edge) and, in a second process, an httpx async client that runs simulated users on
loopback: each user starts a session (POST), reads it (GET), closes it (DELETE), and later
hits /health. A bare FastAPI app's /health is measured the same way as the baseline. Figures
are p50/p99 in milliseconds; the script always exits 0 (see DESIGN.md: benchmarks inform).

Each user keeps one keep-alive connection, so with 2 workers its GET reaches the worker that
started its session: workers share no session store here (production uses parley-redis).

Internal modes: ``serve ...`` (the Runner's CLI) and ``load ...`` (the client process).
"""

# This file is named http.py: drop its folder from sys.path before anything imports the
# standard library's http package.
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import textwrap  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

BASELINE_APP = textwrap.dedent(
    """
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}
    """
)


# --- the server under test (run as `python bench/http_api.py serve ...`) -------------------------


def build_runner() -> Any:
    from parley import Agent, AgentLauncher, Runner
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge

    async def create_agent(**params: Any) -> Agent:
        return Agent(
            "bench",
            edge=InMemoryEdge(realtime_playout=False, record_frames=False),
            llm=FakeLLM([]),
            tts=FakeTTS(),
            stt=FakeSTT(None),
        )

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()

    launcher = AgentLauncher(
        create_agent, join_call, warm_up=False, agent_idle_timeout=None, drain_timeout=1.0
    )
    return Runner(launcher)


# --- the load generator (run as `python bench/http_api.py load ...`) ------------------------------


async def _user(base: str, index: int, iterations: int, health: int) -> dict[str, list[float]]:
    import httpx

    timings: dict[str, list[float]] = {"start": [], "get": [], "close": [], "health": []}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        for i in range(iterations):
            call = f"/calls/bench-{index}-{i}/sessions"
            began = time.perf_counter()
            started = await client.post(call, json={})
            timings["start"].append(time.perf_counter() - began)
            if started.status_code != 201:
                raise RuntimeError(f"POST {call}: {started.status_code} {started.text}")
            session = f"{call}/{started.json()['session_id']}"
            began = time.perf_counter()
            got = await client.get(session)
            timings["get"].append(time.perf_counter() - began)
            if got.status_code != 200:
                raise RuntimeError(f"GET {session}: {got.status_code} {got.text}")
            began = time.perf_counter()
            closed = await client.delete(session)
            timings["close"].append(time.perf_counter() - began)
            if closed.status_code != 202:
                raise RuntimeError(f"DELETE {session}: {closed.status_code} {closed.text}")
        for _ in range(health):
            began = time.perf_counter()
            response = await client.get("/health")
            timings["health"].append(time.perf_counter() - began)
            if response.status_code != 200:
                raise RuntimeError(f"GET /health: {response.status_code}")
    return timings


async def _load(base: str, users: int, iterations: int, health: int) -> dict[str, Any]:
    began = time.perf_counter()
    results = await asyncio.gather(
        *(_user(base, index, iterations, health) for index in range(users))
    )
    merged: dict[str, list[float]] = {}
    for timings in results:
        for name, values in timings.items():
            merged.setdefault(name, []).extend(values)
    return {"timings": merged, "seconds": time.perf_counter() - began}


def load_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench/http_api.py load")
    parser.add_argument("--url", required=True)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--health", type=int, default=60)
    args = parser.parse_args(argv)
    result = asyncio.run(_load(args.url, args.users, args.iterations, args.health))
    print(json.dumps(result))


# --- the orchestrator -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server never answered /health")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _measure(server: list[str], users: int, iterations: int, health: int) -> dict[str, Any]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [*server, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_healthy(url, process)
        load = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "load",
                f"--url={url}",
                f"--users={users}",
                f"--iterations={iterations}",
                f"--health={health}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if load.returncode != 0:
            raise RuntimeError(f"load client failed:\n{load.stderr[-2000:]}")
        result: dict[str, Any] = json.loads(load.stdout.strip().splitlines()[-1])
        return result
    finally:
        _stop(process)


def _percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        only = values[0] * 1000 if values else float("nan")
        return only, only
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[98] * 1000


def _row(workers: int, label: str, values: list[float]) -> str:
    p50, p99 = _percentiles(values)
    return f"  {workers:>7}  {label:<38} {len(values):>6}  {p50:>8.2f}  {p99:>8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests (a smoke run)")
    parser.add_argument("--users", type=int, default=16, help="concurrent simulated users")
    args = parser.parse_args()
    iterations, health = (3, 20) if args.quick else (10, 60)
    one, five, fifteen = os.getloadavg()
    print("== HTTP session API: latency under concurrent load (loopback, second process)")
    print(
        f"   python {platform.python_version()}; {os.cpu_count()} cores; load avg "
        f"{one:.2f} / {five:.2f} / {fifteen:.2f}; {args.users} users x {iterations} sessions "
        f"+ {health} /health each"
    )
    print(f"  {'workers':>7}  {'request':<38} {'n':>6}  {'p50 ms':>8}  {'p99 ms':>8}")
    baseline_dir = tempfile.mkdtemp(prefix="parley-bench-")
    Path(baseline_dir, "parley_bench_baseline.py").write_text(BASELINE_APP)
    summary: list[str] = []
    for workers in (1, 2):
        runner_server = [
            sys.executable,
            os.path.abspath(__file__),
            "serve",
            f"--workers={workers}",
            "--no-splash",
            "--log-level=WARNING",
            "--http-log-level=WARNING",
        ]
        baseline_server = [
            sys.executable,
            "-m",
            "uvicorn",
            "parley_bench_baseline:app",
            f"--app-dir={baseline_dir}",
            f"--workers={workers}",
            "--no-access-log",
            "--log-level=warning",
        ]
        try:
            ours = _measure(runner_server, args.users, iterations, health)
            bare = _measure(baseline_server, args.users, 0, health)
        except RuntimeError as exc:
            print(f"  {workers:>7}  failed: {exc}")
            continue
        timings, base = ours["timings"], bare["timings"]
        print(_row(workers, "POST /calls/{id}/sessions (start)", timings["start"]))
        print(_row(workers, "GET  /calls/{id}/sessions/{sid}", timings["get"]))
        print(_row(workers, "DELETE /calls/{id}/sessions/{sid}", timings["close"]))
        print(_row(workers, "GET  /health (Runner app)", timings["health"]))
        print(_row(workers, "GET  /health (bare FastAPI baseline)", base["health"]))
        ours_p50, _ = _percentiles(timings["health"])
        bare_p50, _ = _percentiles(base["health"])
        summary.append(
            f"   {workers} worker(s): Runner /health p50 is {ours_p50 / bare_p50:.2f}x the bare "
            "FastAPI baseline (middleware: body limit, JSON errors)"
        )
    print("\n".join(summary))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "load":
        load_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] in ("serve", "run"):
        build_runner().cli()
    else:
        main()
