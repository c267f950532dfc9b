"""Many concurrent sessions fed real-time audio: CPU, input lateness and memory per session.

N = 1, 10, 50, 200 sessions, each on its own in-memory call, each fed 20 ms frames of 16 kHz
mono audio in real time for 20 s (``--quick``: 5 s) after 1 s of warm-up. The pipelines are
VAD-less cascades of fakes: a scripted `FakeSTT` (it measures every frame's level, so it does
per-frame work like a real streaming STT), `FakeLLM`, `FakeTTS` at 24 kHz, and an
`InMemoryEdge` with real-time playout and ``measure_input=True``.

One producer task feeds every connection one frame per 20 ms tick (cheaper than a task per
session, and what a transport's receive loop looks like). Configurations, each run in a fresh
process so memory figures do not leak between them:

- ``bare``: the baseline. The same producer and pacing, one `asyncio.Queue` and one reader task
  per "session", no edge and no engine.
- ``edge``: the producer into in-memory edge connections with a bare reader per connection;
  separates the testing edge's own cost from the engine's.
- ``engine/silence``: full sessions fed silence (listening, no turns).
- ``engine/speech``: full sessions fed 0.8 s of speech every 4 s (staggered across sessions); the
  scripted STT detects each utterance, the agent answers with ~0.9 s of audio played in real
  time. Roughly a quarter of the time someone speaks.
- ``engine/heap``: no timing; the Python heap per session (tracemalloc) after start and 1 s of
  audio, a cross-check of the RSS figure, which is page-grained and absorbs memory the process
  had already freed (at N = 50 it often reads 0).

Figures: process CPU % of one core over the measured window; frame lateness (when the engine,
or the baseline's reader, took the frame from its input queue minus when the frame was due;
the in-memory edge's ``input_lateness`` for the engine), p50/p99/max over every frame of every
session; RSS per session (RSS growth from before the sessions were created to the end of the run,
after ``gc.collect()``, divided by N; one throwaway session runs first so one-time imports and
caches are not counted).

Run: ``python bench/sessions.py [--quick] [--n 50 200] [--audio speech]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from array import array
from collections.abc import Awaitable, Callable
from typing import Any

import psutil  # type: ignore[import-untyped]
from _common import Summary, bar, header, start_session
from parley.chat import ChatContext
from parley.frames import AudioFrame
from parley.pipeline import CascadingPipeline
from parley.session import AgentSession
from parley.testing import (
    FakeLLM,
    FakeSTT,
    FakeTTS,
    InMemoryConnection,
    InMemoryEdge,
    silence_frames,
    tone_frames,
)

FRAME = 0.02
RATE = 16000
WARMUP = 1.0
SPEECH_PERIOD_TICKS = 200  # 4 s
SPEECH_TICKS = 40  # 0.8 s
CONFIGS = ("bare", "edge", "engine/silence", "engine/speech", "engine/heap")

SILENCE = next(silence_frames(FRAME, RATE))
SPEECH = next(tone_frames(FRAME, RATE))

Push = Callable[[AudioFrame, float], Awaitable[None]]


def _rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


def _answer(_: ChatContext) -> str:
    return "Sure, here you go."


def _pipeline() -> CascadingPipeline:
    return CascadingPipeline(
        stt=FakeSTT(["what time is it"]),
        llm=FakeLLM(respond=_answer),
        tts=FakeTTS(sample_rate=24000),
    )


def _edge() -> InMemoryEdge:
    return InMemoryEdge(measure_input=True, record_frames=False, realtime_playout=True)


class _Fleet:
    """N receivers of one configuration: how to push a frame to each, lateness, teardown."""

    def __init__(self) -> None:
        self.pushes: list[Push] = []
        self.lateness: list[array[float]] = []
        self.sessions: list[AgentSession] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.connections: list[InMemoryConnection] = []

    def marks(self) -> list[int]:
        return [len(values) for values in self.lateness]

    def lateness_since(self, marks: list[int]) -> list[float]:
        out: list[float] = []
        for values, mark in zip(self.lateness, marks, strict=True):
            out.extend(values[mark:])
        return out

    async def aclose(self) -> None:
        for session in self.sessions:
            await session.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _bare_fleet(n: int) -> _Fleet:
    fleet = _Fleet()
    for _ in range(n):
        queue: asyncio.Queue[tuple[AudioFrame, float]] = asyncio.Queue(500)
        lateness: array[float] = array("d")

        async def reader(
            queue: asyncio.Queue[tuple[AudioFrame, float]] = queue,
            lateness: array[float] = lateness,
        ) -> None:
            while True:
                _, due = await queue.get()
                lateness.append(time.perf_counter() - due)

        async def push(
            frame: AudioFrame,
            due: float,
            queue: asyncio.Queue[tuple[AudioFrame, float]] = queue,
        ) -> None:
            await queue.put((frame, due))

        fleet.tasks.append(asyncio.create_task(reader()))
        fleet.pushes.append(push)
        fleet.lateness.append(lateness)
    return fleet


def _push_to(connection: InMemoryConnection) -> Push:
    async def push(frame: AudioFrame, due: float) -> None:
        await connection.push_audio(frame, due=due)

    return push


async def _edge_fleet(n: int) -> _Fleet:
    fleet = _Fleet()
    edge = _edge()
    for index in range(n):
        call = await edge.create_call("default", f"edge-{index}")
        connection = await edge.join(call, edge.users[0])

        async def reader(connection: InMemoryConnection = connection) -> None:
            async for _ in connection.audio_input():
                pass

        fleet.tasks.append(asyncio.create_task(reader()))
        fleet.pushes.append(_push_to(connection))
        assert connection.input_lateness is not None
        fleet.lateness.append(connection.input_lateness)
        fleet.connections.append(connection)
    return fleet


async def _engine_fleet(n: int) -> _Fleet:
    fleet = _Fleet()
    edge = _edge()
    for index in range(n):
        session, connection = await start_session(_pipeline(), edge, f"sessions-{index}")
        fleet.sessions.append(session)
        fleet.pushes.append(_push_to(connection))
        assert connection.input_lateness is not None
        fleet.lateness.append(connection.input_lateness)
        fleet.connections.append(connection)
    return fleet


async def _warm_engine() -> None:
    """Start, feed and close one session so imports and caches are loaded before measuring."""
    fleet = await _engine_fleet(1)
    push = fleet.pushes[0]
    for frame in [SPEECH] * 20 + [SILENCE] * 40:
        await push(frame, time.perf_counter())
    await asyncio.sleep(0.1)
    await fleet.aclose()


async def heap_worker(n: int) -> dict[str, Any]:
    """Python heap per session (tracemalloc), as a cross-check of the RSS figure: RSS growth
    is page-grained and absorbs memory the process had already freed."""
    await _warm_engine()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fleet = await _engine_fleet(n)
    start = time.perf_counter()
    for tick in range(50):  # 1 s of silence, as fast as the sessions take it
        for push in fleet.pushes:
            await push(SILENCE, start + tick * FRAME)
    await asyncio.sleep(0.1)
    gc.collect()
    heap = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    await fleet.aclose()
    return {"config": "engine/heap", "n": n, "heap_per_session_mb": heap / n / 2**20}


async def worker(config: str, n: int, seconds: float) -> dict[str, Any]:
    if config == "engine/heap":
        return await heap_worker(n)
    if config.startswith("engine"):
        await _warm_engine()
    Summary.of([1.0, 2.0])  # numpy's first percentile allocates for good: not per session
    rss_before = _rss()
    builders = {"bare": _bare_fleet, "edge": _edge_fleet}
    fleet = await builders.get(config, _engine_fleet)(n)
    rss_started = _rss()
    speech = config == "engine/speech"
    # Stagger the speakers so they do not all talk in the same tick.
    offsets = [(index * 37) % SPEECH_PERIOD_TICKS for index in range(n)]
    warmup_ticks = round(WARMUP / FRAME)
    ticks = warmup_ticks + round(seconds / FRAME)
    start = time.perf_counter() + FRAME
    marks: list[int] = []
    cpu0 = wall0 = 0.0
    for tick in range(ticks):
        due = start + tick * FRAME
        if tick == warmup_ticks:
            marks = fleet.marks()
            cpu0, wall0 = time.process_time(), time.perf_counter()
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        for index, push in enumerate(fleet.pushes):
            talking = speech and (tick + offsets[index]) % SPEECH_PERIOD_TICKS < SPEECH_TICKS
            await push(SPEECH if talking else SILENCE, due)
    await asyncio.sleep(FRAME)  # let the readers take the last tick
    cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0) * 100
    rss_end = _rss()  # includes the lateness samples (8 bytes per frame per session)
    lateness = Summary.of([value * 1000 for value in fleet.lateness_since(marks)])
    turns = sum(session.metrics.turns for session in fleet.sessions)
    errors = sum(session.metrics.errors for session in fleet.sessions)
    played = sum(c.audio_output.seconds_played for c in fleet.connections)
    await fleet.aclose()
    return {
        "config": config,
        "n": n,
        "seconds": seconds,
        "cpu_percent": cpu,
        "lateness_ms": [lateness.count, lateness.p50, lateness.p99, lateness.max],
        "rss_per_session_mb": (rss_end - rss_before) / n / 2**20,
        "rss_per_session_started_mb": (rss_started - rss_before) / n / 2**20,
        "turns": turns,
        "errors": errors,
        "agent_seconds_played": played,
    }


def _run_worker(config: str, n: int, seconds: float) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--worker",
        config,
        "--n",
        str(n),
        "--seconds",
        str(seconds),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker {config} N={n} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _row(result: dict[str, Any]) -> str:
    if result["config"] == "engine/heap":
        return (
            f"   N={result['n']:<4d} {'engine/heap':<15s} Python heap per session (tracemalloc) "
            f"{result['heap_per_session_mb']:.3f} MB"
        )
    _, p50, p99, worst = result["lateness_ms"]
    extra = ""
    if result["config"] == "engine/speech":
        extra = f"  turns {result['turns']}, agent audio {result['agent_seconds_played']:.0f} s"
    if result["errors"]:
        extra += f"  ERRORS {result['errors']}"
    return (
        f"   N={result['n']:<4d} {result['config']:<15s} CPU {result['cpu_percent']:6.1f} %   "
        f"lateness p50 {p50:6.3f} p99 {p99:7.3f} max {worst:7.2f} ms   "
        f"RSS/session {result['rss_per_session_mb']:6.3f} MB "
        f"(after start {result['rss_per_session_started_mb']:.3f}){extra}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 s per run instead of 20 s")
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 50, 200])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=CONFIGS)
    parser.add_argument("--worker", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = asyncio.run(worker(args.worker, args.n[0], args.seconds))
        print(json.dumps(result))
        return
    seconds = 5.0 if args.quick else 20.0
    header(
        f"sessions: N concurrent sessions, 20 ms frames of 16 kHz in real time for {seconds:g} s"
    )
    print(
        "   one producer task feeds every connection per tick; "
        "each configuration runs in a fresh process"
    )
    results: dict[tuple[str, int], dict[str, Any]] = {}
    for n in args.n:
        for config in args.configs:
            results[(config, n)] = result = _run_worker(config, n, seconds)
            print(_row(result) + f"   [{_load()}]", flush=True)
    for config in ("engine/silence", "engine/speech"):
        at50, at200 = results.get((config, 50)), results.get((config, 200))
        if at50 is None and at200 is None:
            continue
        print(f"   -- {config}")
        if at50 is not None:
            bar("N=50 CPU % of one core", at50["cpu_percent"], 10.0, "%")
            bar("N=50 RSS per session", at50["rss_per_session_mb"], 0.15, "MB")
            base = results.get(("bare", 50))
            if base is not None:
                print(f"   (bare asyncio baseline at N=50: CPU {base['cpu_percent']:.1f} %)")
            heap = results.get(("engine/heap", 50))
            if heap is not None:
                print(f"   (Python heap per session at N=50: {heap['heap_per_session_mb']:.3f} MB)")
        if at200 is not None:
            bar("N=200 p99 frame lateness", at200["lateness_ms"][2], 5.0, "ms")
            base = results.get(("bare", 200))
            if base is not None:
                print(f"   (bare asyncio baseline at N=200: p99 {base['lateness_ms'][2]:.3f} ms)")


def _load() -> str:
    return "load " + " ".join(f"{value:.2f}" for value in os.getloadavg())


if __name__ == "__main__":
    main()
