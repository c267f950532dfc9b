"""The zero-key demo as a user starts it, for browser tests and the browser bench.

``DemoProcess(call_id)`` runs ``examples/demo.py run --no-demo --port 0`` (offline models,
the WebRTC edge) and collects its output; ``wait_for_url`` returns the page URL it prints.
`ScriptProcess` does the same for any script that prints a URL (the VideoSDK-style examples).
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


class ScriptProcess:
    """A Python script run as a user runs it, its output (stdout and stderr) collected line by
    line; `wait_for_url` returns the first URL ``url_line`` finds in it."""

    def __init__(
        self, argv: list[str], env: dict[str, str], url_line: re.Pattern[str], what: str
    ) -> None:
        self.process = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**env, "PYTHONUNBUFFERED": "1"},
        )
        self.url_line = url_line
        self.what = what
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for_url(self, timeout: float = 60.0) -> str:
        """The URL the script prints once it is ready (blocking: call it in a thread)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                found = self.url_line.search(line)
                if found:
                    return found.group(1)
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{self.what} never printed its URL:\n" + self.output())

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


class DemoProcess(ScriptProcess):
    """`examples/demo.py run` on a free port."""

    def __init__(self, call_id: str, *, extra_args: tuple[str, ...] = ()) -> None:
        args = ["run", "--no-demo", "--no-splash", "--port", "0", "--call-id", call_id]
        env = {**os.environ, "PARLEY_LLM": "local"}
        super().__init__([str(DEMO), *args, *extra_args], env, URL_LINE, "the demo")
