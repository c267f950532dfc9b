"""Helpers shared by the engine benchmarks: session setup, percentiles, bars and load notes.

Benchmarks print figures and whether a bar is met; they always exit 0 (see DESIGN.md).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
from parley.agent import Agent
from parley.pipeline import CascadingPipeline
from parley.session import AgentSession
from parley.testing import InMemoryConnection, InMemoryEdge

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"


def load_demo(path: Path = DEMO) -> ModuleType:
    """examples/demo.py (or another copy) as a module: it is a script, not a package."""
    spec = importlib.util.spec_from_file_location("parley_demo", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load the demo agent from {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def parse_args(description: str, quick_help: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    return parser.parse_args()


def load_note() -> str:
    """The machine's load average next to the figures: other processes skew timings."""
    one, five, fifteen = os.getloadavg()
    return f"load avg {one:.2f} / {five:.2f} / {fifteen:.2f} (1/5/15 min) on {os.cpu_count()} cores"


def cpu_name() -> str:
    """The CPU's model as /proc/cpuinfo gives it: figures differ 2-3x between VM kinds."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if not line.strip():
                    break  # the first processor is enough
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return platform.machine()
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def header(title: str) -> None:
    print(f"== {title}")
    print(f"   python {platform.python_version()} on {sys.platform}, {cpu_name()}; {load_note()}")


@dataclass(frozen=True, slots=True)
class Summary:
    """Percentiles of a sample, in the unit the sample was given in."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            return cls(0, float("nan"), float("nan"), float("nan"), float("nan"))
        p50, p95, p99 = np.percentile(np.asarray(values, dtype=np.float64), [50, 95, 99])
        return cls(len(values), float(p50), float(p95), float(p99), float(max(values)))

    def line(self, unit: str = "ms", digits: int = 3) -> str:
        f = f"{{:.{digits}f}}"
        return (
            f"n={self.count:<5d} p50 {f.format(self.p50)} {unit}  p95 {f.format(self.p95)} {unit}  "
            f"p99 {f.format(self.p99)} {unit}  max {f.format(self.max)} {unit}"
        )


def bar(label: str, value: float, limit: float, unit: str) -> bool:
    """Print one bar and whether it is met."""
    met = value <= limit
    print(f"   BAR {label} ≤ {limit:g} {unit}: {value:.3f} {unit} -> {'MET' if met else 'MISSED'}")
    return met


async def start_session(
    pipeline: CascadingPipeline, edge: InMemoryEdge, call_id: str
) -> tuple[AgentSession, InMemoryConnection]:
    """An agent session on ``edge`` the way a launcher starts one (no greeting)."""
    agent = Agent("You are a benchmark.", edge=edge)
    session = AgentSession(agent, pipeline)
    call = await agent.create_call("default", call_id)
    connection = await edge.join(call, agent.agent_user)
    await session.start(connection)
    return session, connection
