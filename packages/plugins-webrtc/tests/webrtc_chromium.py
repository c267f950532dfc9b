"""Real headless Chromium for WebRTC tests: launch, drive over CDP, serve the app, make speech.

Reusable by any test (the engine's end-to-end tests too): put this folder on ``sys.path``
(``packages/plugins-webrtc/tests/conftest.py`` does it for tests here) and

    chromium = require_chromium()                       # skip, or fail when CI=true
    async with serve(app) as base_url, launch_chromium(chromium, fake_audio=wav) as browser:
        page = await browser.open(f"{base_url}/webrtc/?call=demo")
        await page.evaluate("parley.join()")
        await page.wait_for("parley.connection === 'connected'")

Flags and pitfalls: ``/work/shared/research/rtc_e2e.md``. Notably: ``--no-sandbox`` as root,
``--allow-loopback-in-peer-connection`` (plus the edge's ``loopback=True``) so the call runs
over 127.0.0.1 on any runner, and WebAudio sees a remote stream only while an ``<audio>``
element plays it (the demo page does).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import numpy as np
import pytest
import uvicorn
from parley.frames import AudioFrame
from parley.wav import write_wav
from websockets.asyncio.client import ClientConnection, connect

T = TypeVar("T")

CHROMIUM_PACKAGE = "chromium"  # Debian's package name
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # required as root
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-dev-shm-usage",
    "--enable-logging=stderr",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--window-size=1280,900",
)


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def require_chromium() -> str:
    """Chromium's path; skips the test when it is missing (fails instead when CI=true)."""
    path = find_chromium()
    if path is None:
        message = (
            "headless Chromium is not installed: install the Debian package "
            f"`{CHROMIUM_PACKAGE}` (apt-get install -y {CHROMIUM_PACKAGE})"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def voiced_signal(seconds: float, sample_rate: int = 48000) -> np.ndarray:
    """Speech-like float samples: 150 Hz harmonics under a 4 Hz syllable envelope."""
    t = np.arange(round(seconds * sample_rate)) / sample_rate
    harmonics = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 9))
    syllables = 0.55 + 0.45 * np.sin(2 * np.pi * 4 * t - np.pi / 2)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.03)
    return 0.25 * harmonics / np.max(np.abs(harmonics)) * syllables * fade  # type: ignore[no-any-return]


def speech_like_wav(
    path: Path, *, voiced: float = 1.2, pause: float = 0.6, sample_rate: int = 48000
) -> AudioFrame:
    """Write a voiced signal (150 Hz harmonics, syllable envelope) then a pause; returns it.

    Chromium loops the file as the fake microphone, so the agent hears ``voiced`` seconds
    of "speech" every ``voiced + pause`` seconds.
    """
    return speech_schedule_wav(path, [0.0, voiced, pause], sample_rate=sample_rate)


def speech_schedule_wav(
    path: Path, schedule: list[float], *, sample_rate: int = 48000
) -> AudioFrame:
    """Write alternating silence and speech: ``[silence, voiced, silence, voiced, ...]`` seconds.

    The fake microphone starts the file when the page asks for the microphone, so a
    schedule scripts when the "user" talks; end it with a long silence to keep the loop away.
    """
    parts = [
        voiced_signal(seconds, sample_rate) if index % 2 else np.zeros(round(seconds * sample_rate))
        for index, seconds in enumerate(schedule)
    ]
    frame = AudioFrame(np.rint(np.concatenate(parts) * 32767).astype(np.int16), sample_rate)
    write_wav(path, frame)
    return frame


# --- serving an app in the test's event loop -------------------------------------------------


@contextlib.asynccontextmanager
async def serve(app: Any, *, lifespan: bool = False) -> AsyncIterator[str]:
    """Run an ASGI app under uvicorn on 127.0.0.1 (a free port); yields its base URL.

    ``lifespan=True`` runs the app's startup and shutdown (a `Runner`'s app starts and stops
    its launcher there).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on" if lifespan else "off")
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("uvicorn stopped before it started")
            await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, 10)
        sock.close()


# --- Chrome DevTools Protocol ----------------------------------------------------------------


class PageError(RuntimeError):
    """JavaScript threw, or a condition never became true."""


class Page:
    """A CDP session attached to one page target."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._next_id = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.console: list[str] = []
        self._reader = asyncio.ensure_future(self._read())

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next_id] = future
        await self._ws.send(
            json.dumps({"id": self._next_id, "method": method, "params": params or {}})
        )
        reply = await asyncio.wait_for(future, 30)
        if "error" in reply:
            raise PageError(f"{method} failed: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def evaluate(self, expression: str, await_promise: bool = True) -> Any:
        result = await self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": await_promise, "returnByValue": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise PageError(f"{expression!r} threw: {text}")
        return result.get("result", {}).get("value")

    async def wait_for(
        self,
        expression: str,
        timeout: float = 20.0,
        interval: float = 0.1,
    ) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        value: Any = None
        try:
            async with asyncio.timeout(timeout):
                while not (value := await self.evaluate(expression)):
                    await asyncio.sleep(interval)
        except TimeoutError:
            tail = "\n".join(self.console[-15:])
            raise PageError(
                f"waited {timeout:g} s for {expression!r}; last value {value!r}\n"
                f"page console:\n{tail}"
            ) from None
        return value

    async def navigate(self, url: str) -> None:
        await self.send("Page.navigate", {"url": url})
        await self.wait_for("document.readyState === 'complete'")

    async def click(self, selector: str) -> None:
        """Click an element with a real (trusted) mouse event at its centre."""
        box = await self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    async def screenshot(self, path: Path) -> Path:
        data = await self.send("Page.captureScreenshot", {"format": "png"})
        await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(path.write_bytes, base64.b64decode(data["data"]))
        return path

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        await self._ws.close()

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for raw in self._ws:
                message = json.loads(raw)
                if "id" in message:
                    future = self._pending.pop(message["id"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif message.get("method") == "Runtime.consoleAPICalled":
                    args = message["params"].get("args", [])
                    self.console.append(
                        " ".join(str(a.get("value", a.get("description"))) for a in args)
                    )
                elif message.get("method") == "Runtime.exceptionThrown":
                    details = message["params"]["exceptionDetails"]
                    self.console.append(
                        f"exception: {details.get('exception', {}).get('description')}"
                    )
        for future in self._pending.values():
            if not future.done():
                future.set_exception(PageError("the browser closed the DevTools connection"))


class Browser:
    """A headless Chromium process with a private profile."""

    def __init__(self, process: asyncio.subprocess.Process, profile: Path, log: Path) -> None:
        self.process = process
        self.profile = profile
        self.log = log
        self.port = 0
        self._pages: list[Page] = []

    async def start(self, timeout: float = 30.0) -> None:
        active = self.profile / "DevToolsActivePort"
        async with asyncio.timeout(timeout):
            while not active.exists() or not active.read_text().strip():
                if self.process.returncode is not None:
                    raise RuntimeError(
                        f"chromium exited early ({self.process.returncode}):\n{self.log_tail()}"
                    )
                await asyncio.sleep(0.05)
        self.port = int(active.read_text().split()[0])

    async def open(self, url: str) -> Page:
        """Attach to the first tab, navigate it to ``url``, and return it."""
        async with httpx.AsyncClient() as client:
            targets = (await client.get(f"http://127.0.0.1:{self.port}/json/list")).json()
        target = next(t for t in targets if t["type"] == "page")
        ws = await connect(target["webSocketDebuggerUrl"], max_size=None)
        page = Page(ws)
        self._pages.append(page)
        await page.send("Runtime.enable")
        await page.send("Page.enable")
        await page.navigate(url)
        return page

    def kill(self) -> None:
        """Kill the whole browser at once, as a crash or a closed laptop would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def close(self) -> None:
        for page in self._pages:
            await page.close()
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.kill()
                await self.process.wait()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


@contextlib.asynccontextmanager
async def launch_chromium(
    executable: str, *, fake_audio: Path | None = None, extra_flags: tuple[str, ...] = ()
) -> AsyncIterator[Browser]:
    """Start headless Chromium with fake media devices; ``fake_audio`` is the mic's WAV."""
    with tempfile.TemporaryDirectory(prefix="parley-chromium-") as tmp:
        profile = Path(tmp) / "profile"
        log = Path(tmp) / "chromium.log"
        flags = [
            *CHROMIUM_FLAGS,
            *extra_flags,
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
        ]
        if fake_audio is not None:
            flags.append(f"--use-file-for-fake-audio-capture={fake_audio}")
        with log.open("wb") as log_file:
            process = await asyncio.create_subprocess_exec(
                executable,
                *flags,
                "about:blank",
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,  # one process group: kill() takes every child
            )
        browser = Browser(process, profile, log)
        try:
            await browser.start()
            yield browser
        finally:
            await browser.close()
