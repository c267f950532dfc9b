"""The zero-key demo as a user starts it, for browser tests and the browser bench.

``DemoProcess(call_id)`` runs ``examples/demo.py run --no-demo --port 0`` (offline models,
the WebRTC edge) and collects its output; ``wait_for_url`` returns the page URL it prints.
Importable from the cross-package tests (this folder is on ``sys.path``, see ``conftest.py``)
and from ``bench/`` scripts that put this folder on ``sys.path``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
URL_LINE = re.compile(r"Open (http://\S+) to talk")


class DemoProcess:
    """`examples/demo.py run` on a free port, its output collected line by line."""

    def __init__(self, call_id: str, *, extra_args: tuple[str, ...] = ()) -> None:
        env = {**os.environ, "PARLEY_LLM": "local", "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            [
                sys.executable,
                str(DEMO),
                "run",
                "--no-demo",
                "--no-splash",
                "--port",
                "0",
                "--call-id",
                call_id,
                *extra_args,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_url(self, timeout: float = 60.0) -> str:
        """The page URL the demo prints once it is ready (blocking: call it in a thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = URL_LINE.search(line)
                if found:
                    return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError("the demo never printed its URL:\n" + self.output())

    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
