"""A third-party plugin, built and installed for real, is found, listed, resolved and removed.

The plugin lives in tests/fixtures/parley-hello (its own pyproject and entry point). It is
installed into this interpreter's environment with uv (or pip), checked from fresh processes,
and always uninstalled again.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "parley-hello"
DISTRIBUTION = "parley-hello"


class Installer:
    """Runs uv (as hatch provides it, or from PATH) or else pip against ``sys.executable``."""

    def __init__(self) -> None:
        uv = os.environ.get("HATCH_UV") or shutil.which("uv")
        if uv:
            self.base = [uv, "pip"]
            self.target = ["--python", sys.executable]
            self.yes: list[str] = []
        elif importlib.util.find_spec("pip"):
            self.base = [sys.executable, "-m", "pip"]
            self.target = []
            self.yes = ["-y"]
        else:
            pytest.fail("neither uv nor pip is available to install the fixture plugin")

    def install(self, path: Path) -> None:
        # parley-core is already here; build with the environment's hatchling when it has one,
        # so no index is needed.
        offline = ["--no-build-isolation"] if importlib.util.find_spec("hatchling") else []
        _run([*self.base, "install", *self.target, "--no-deps", *offline, str(path)])

    def uninstall(self) -> None:
        _run([*self.base, "uninstall", *self.target, *self.yes, DISTRIBUTION])


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=90, check=False)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _parley(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("parley")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "parley.cli"]
    return _run([*command, *args])


def _listed_plugins(*options: str) -> dict[str, dict[str, Any]]:
    listed = json.loads(_parley("plugins", "--json", *options).stdout)
    return {entry["name"]: entry for entry in listed}


def _python(code: str) -> dict[str, Any]:
    result = _run([sys.executable, "-c", code])
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _installed() -> bool:
    code = f"import importlib.metadata as m, json\ntry:\n    m.distribution({DISTRIBUTION!r})\n"
    code += "    print('true')\nexcept m.PackageNotFoundError:\n    print('false')"
    return bool(_python(code))


USE_IT = """
import asyncio, json, sys
import parley.plugins as plugins

listed = [i.name for i in plugins.list_plugins()]
light = "parley_hello.tts" not in sys.modules  # listing imports only the entry module
tts = plugins.resolve("tts", "hello?x=1")
beep = plugins.resolve("tts", "beep")
from parley.plugins import hello

async def count_frames():
    return len([frame async for frame in tts.synthesize("hello big world")])

print(json.dumps({
    "listed": "hello" in listed,
    "light": light,
    "type": f"{type(tts).__module__}.{type(tts).__qualname__}",
    "options": tts.options,
    "pitch": tts.pitch,
    "beep_pitch": beep.pitch,
    "lazy_class": hello.HelloTTS is type(tts),
    "frames": asyncio.run(count_frames()),
}))
"""

GONE = """
import json
import parley.plugins as plugins
try:
    plugins.resolve("tts", "hello")
    resolve_error = None
except plugins.UnknownPartError as exc:
    resolve_error = str(exc)
try:
    from parley.plugins import hello
    import_error = None
except ImportError as exc:
    import_error = str(exc)
print(json.dumps({"resolve_error": resolve_error, "import_error": import_error}))
"""


@pytest.fixture
def installer(tmp_path: Path) -> Iterator[tuple[Installer, Path]]:
    installer = Installer()
    if _installed():  # a leftover from an interrupted run
        installer.uninstall()
    # Build from a copy so the source tree stays free of build artifacts.
    source = tmp_path / "parley-hello"
    shutil.copytree(FIXTURE, source, ignore=shutil.ignore_patterns("build", "dist", "__pycache__"))
    try:
        yield installer, source
    finally:
        if _installed():
            installer.uninstall()


def test_third_party_plugin_is_found_listed_resolved_and_removed(
    installer: tuple[Installer, Path],
) -> None:
    tool, source = installer
    assert "hello" not in _listed_plugins()

    tool.install(source)

    hello = _listed_plugins()["hello"]
    assert (hello["distribution"], hello["version"], hello["module"]) == (
        DISTRIBUTION,
        "0.0.1",
        "parley_hello",
    )
    assert (hello["status"], hello["deps_ok"], hello["kinds"]) == ("ok", True, ["tts"])
    (part,) = hello["parts"]
    assert (part["kind"], part["name"], part["target"]) == (
        "tts",
        "hello",
        "parley_hello.tts:HelloTTS",
    )
    assert part["capabilities"] == {"offline": True}  # listing imports no part module
    (part,) = _listed_plugins("--capabilities")["hello"]["parts"]
    assert part["capabilities"] == {  # read from HelloTTS.capabilities, declared once
        "streaming": True,
        "sample_rate": 16000,
        "channels": 1,
        "languages": ["en"],
        "offline": True,
    }
    assert "hello" in _parley("plugins").stdout

    used = _python(USE_IT)
    assert used == {
        "listed": True,
        "light": True,
        "type": "parley_hello.tts.HelloTTS",
        "options": {"x": 1},
        "pitch": 440.0,
        "beep_pitch": 880.0,
        "lazy_class": True,
        "frames": 3,
    }

    tool.uninstall()

    assert not _installed()
    assert "hello" not in _listed_plugins()
    gone = _python(GONE)
    assert "no installed plugin provides the tts part 'hello'" in gone["resolve_error"]
    # Not a name this project publishes: no invented `pip install parley-hello`.
    assert "pip install" not in gone["resolve_error"]
    assert gone["import_error"] == (
        "No Parley plugin named 'hello' is installed; `parley plugins` lists the installed plugins"
    )
