"""Run a command with busy CPU loops beside it, as on a loaded machine.

    python .ci/under_load.py [--hogs N] COMMAND [ARGS...]

Starts N processes (default 2, one per core of the CI machine) that spin ``while True: pass``,
runs COMMAND, stops the loops and exits with COMMAND's status. ``hatch run test-under-load``
runs the whole suite this way: a test that passes only on an idle machine races the clock.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hogs", type=int, default=2, help="busy loops to run (default 2)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    if not args.command:
        parser.error("name the command to run")
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)]
    print(f"under_load: {len(hogs)} busy loops running beside: {' '.join(args.command)}")
    try:
        return subprocess.call(args.command)
    except KeyboardInterrupt:
        return 130
    finally:
        for hog in hogs:
            hog.kill()
        for hog in hogs:
            hog.wait()


if __name__ == "__main__":
    sys.exit(main())
