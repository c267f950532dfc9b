"""Run every benchmark in bench/ in turn, or only those named on the command line.

Usage: ``python bench/run_all.py [NAME ...]`` (names with or without ``.py``).

Benchmarks print their figures; this runner only reports which scripts exited non-zero.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def available() -> dict[str, Path]:
    return {
        path.stem: path
        for path in sorted(HERE.glob("*.py"))
        if path.name != Path(__file__).name and not path.name.startswith("_")
    }


def main(names: list[str]) -> int:
    scripts = available()
    wanted = [name.removesuffix(".py") for name in names] or list(scripts)
    unknown = [name for name in wanted if name not in scripts]
    if unknown:
        print(
            f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(scripts)}",
            file=sys.stderr,
        )
        return 2
    failed: list[str] = []
    for name in wanted:
        print(f"=== {name} ===", flush=True)
        start = time.perf_counter()
        code = subprocess.run([sys.executable, str(scripts[name])], check=False).returncode
        print(
            f"=== {name}: exit {code} after {time.perf_counter() - start:.1f} s ===\n", flush=True
        )
        if code != 0:
            failed.append(name)
    if failed:
        print(f"benchmarks that failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
