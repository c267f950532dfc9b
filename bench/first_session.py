"""What the first session in a process costs in memory beyond the ones after it.

Each run is a fresh process that imports what an application imports (`parley`, the testing
kit's fake parts and in-memory edge), then runs three sessions one after another, each one
spoken turn answered in full (fake STT, LLM and TTS; no plugin part is used). The RSS growth
of each session is measured after ``gc.collect()``; the first session's extra cost is its
growth minus the second's. That extra is one-time work done lazily on first use: engine
modules imported on demand and plugin discovery (entry points, pluggy, the plugins' entry
modules), which lifecycle hooks need even when every part is an object. The fakes' own tone
tables are built before the first measurement: they are the bench's apparatus, and building
one peaks at over 1 MB, which the allocator keeps.

Bar: the first session costs at most 1 MB more than the second (median of the runs), both
for sessions an `AgentLauncher` hosts (it discovers the plugins when it starts, as the first
configuration does before its first session) and for a bare `AgentSession` in a fresh process,
which pays discovery in its first session (the second configuration). Discovery reads entry
points without `importlib.metadata`, whose import alone cost ~1.6 MB. The modules the first
session imported are listed from the last run.

Run: ``python bench/first_session.py [--quick]`` (``--quick``: 3 runs instead of 7).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import subprocess
import sys
from typing import Any

BAR_MB = 1.0

CHILD = r"""
import asyncio, gc, json, sys

import psutil

from parley import Agent, AgentSession, CascadingPipeline
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge, silence_frames, tone_frames


def rss() -> int:
    gc.collect()
    return int(psutil.Process().memory_info().rss)


async def one_session(edge: InMemoryEdge, number: int) -> None:
    agent = Agent("You are a benchmark.", edge=edge)
    pipeline = CascadingPipeline(
        stt=FakeSTT(["what time is it"]), llm=FakeLLM(["It is noon."]), tts=FakeTTS()
    )
    session = AgentSession(agent, pipeline)
    call = await agent.create_call("default", f"first-session-{number}")
    connection = await edge.join(call, agent.agent_user)
    await session.start(connection)
    await connection.push_speech(0.6)
    await connection.push_silence(0.6)
    await connection.audio_output.wait_for_audio(timeout=60)
    await session.close()


async def warm_up_the_fakes() -> None:
    # The fake parts' cached tone tables: bench apparatus, not the engine's cost.
    async for _ in FakeTTS().synthesize("warm up"):
        pass
    next(tone_frames(0.02, 16000)), next(silence_frames(0.02, 16000))


async def main() -> None:
    edge = InMemoryEdge(realtime_playout=False)
    await warm_up_the_fakes()
    if PREDISCOVER:
        from parley.plugins import plugin_manager

        plugin_manager()
    marks = [rss()]
    before = set(sys.modules)
    imported: list[str] = []
    for number in range(3):
        await one_session(edge, number)
        marks.append(rss())
        if number == 0:
            imported = sorted(set(sys.modules) - before)
    print(json.dumps({"rss": marks, "imported": imported}))


asyncio.run(main())
"""


def run_once(prediscover: bool) -> dict[str, Any]:
    code = f"PREDISCOVER = {prediscover}\n{CHILD}"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs instead of 7")
    runs = 3 if parser.parse_args().quick else 7
    from _common import bar, header

    header("first session memory: RSS growth of session 1 beyond session 2")
    for prediscover in (True, False):
        what = (
            "plugins discovered before, as AgentLauncher.start does"
            if prediscover
            else "bare AgentSession, plugins discovered by the first session"
        )
        print(f"-- {what}")
        extras: list[float] = []
        result: dict[str, Any] = {}
        for _ in range(runs):
            result = run_once(prediscover)
            marks = result["rss"]
            growth = [(b - a) / 1e6 for a, b in itertools.pairwise(marks)]
            extras.append(growth[0] - growth[1])
            print(
                "   run: sessions grew RSS by "
                + ", ".join(f"{g:.2f}" for g in growth)
                + f" MB; first-session extra {extras[-1]:.2f} MB"
            )
        imported = result["imported"]
        roots = sorted({name.split(".")[0] for name in imported})
        print(f"   the first session imported {len(imported)} modules: {', '.join(roots)}")
        median = statistics.median(extras)
        label = "launcher-hosted" if prediscover else "bare AgentSession, with discovery"
        bar(f"first-session extra RSS, {label} (median)", median, BAR_MB, "MB")


if __name__ == "__main__":
    main()
