"""The plugin template in docs/plugin-template builds, installs, loads and lists.

This is the third-party plugin an author writes from docs/plugins.md: the test builds it into a
wheel with hatchling (from a copy, so the docs stay clean), installs the wheel offline into a
temporary target directory, and uses it from fresh processes that have only that directory
added to their path: by spec string, by ``from parley.plugins import acme``, with its own tests,
and in ``parley plugins``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TEMPLATE = Path(__file__).parents[1] / "docs" / "plugin-template"


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, **kwargs
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _install_command(wheel: Path, target: Path) -> list[str]:
    """Offline and without dependencies (parley-core and numpy are already importable)."""
    uv = os.environ.get("HATCH_UV") or shutil.which("uv")
    if uv:
        base = [uv, "pip", "install", "--python", sys.executable]
    elif importlib.util.find_spec("pip"):
        base = [sys.executable, "-m", "pip", "install"]
    else:
        pytest.fail("neither uv nor pip is available to install the template's wheel")
    return [*base, "--no-deps", "--no-index", "--target", str(target), str(wheel)]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The template built and installed: the environment of a process that sees it."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.fail("hatchling is needed to build the plugin template")
    root = tmp_path_factory.mktemp("template")
    source = root / "parley-acme"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("dist", "__pycache__"))
    _run([sys.executable, "-m", "hatchling", "build", "-t", "wheel"], cwd=source)
    (wheel,) = (source / "dist").glob("parley_acme-0.1.0-*.whl")
    target = root / "site"
    _run(_install_command(wheel, target))
    assert (target / "parley_acme" / "tts.py").exists()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(target), _pythonpath()]))}
    env.pop("PARLEY_PLUGINS_PREFER", None)
    return {**env, "ACME_SOURCE": str(source)}


def _pythonpath() -> str:
    return os.environ.get("PYTHONPATH", "")


USE_IT = """
import asyncio, json, sys
from parley.plugins import list_plugins, resolve

listed = {info.name: info for info in list_plugins()}
light = "parley_acme.tts" not in sys.modules  # listing imported the entry module only
tts = resolve("tts", "acme?pitch=330")
low = resolve("tts", "acme-low")
from parley.plugins import acme

async def frames():
    return [(f.sample_rate, f.channels, f.format) async for f in tts.synthesize("hi there")]

got = asyncio.run(frames())
print(json.dumps({
    "status": listed["acme"].status,
    "distribution": listed["acme"].distribution,
    "light": light,
    "type": type(tts).__qualname__,
    "pitch": tts.pitch,
    "low": low.pitch,
    "lazy_class": acme.TTS is type(tts),
    "frames": len(got),
    "formats": sorted(set(map(tuple, got))),
}))
"""


def test_the_template_loads_by_spec_string(installed: dict[str, str]) -> None:
    output = _run([sys.executable, "-c", USE_IT], env=installed).stdout
    used = json.loads(output.strip().splitlines()[-1])
    assert used == {
        "status": "ok",
        "distribution": "parley-acme",
        "light": True,
        "type": "AcmeTTS",
        "pitch": 330.0,
        "low": 220.0,
        "lazy_class": True,
        "frames": 10,  # two words of 0.1 s in 20 ms frames
        "formats": [[16000, 1, "int16"]],
    }


def test_parley_plugins_lists_the_template(installed: dict[str, str]) -> None:
    command = [sys.executable, "-m", "parley.cli", "plugins"]
    table = _run(command, env=installed).stdout
    row = next(line for line in table.splitlines() if line.startswith("acme "))
    assert "parley-acme" in row and "0.1.0" in row and "ok (deps ok)" in row
    assert "tts/acme: offline" in row

    listed = json.loads(_run([*command, "--json", "--capabilities"], env=installed).stdout)
    (acme,) = [entry for entry in listed if entry["name"] == "acme"]
    (part,) = acme["parts"]
    assert part["capabilities"] == {  # one declaration: AcmeTTS.capabilities, plus "offline"
        "streaming": True,
        "sample_rate": 16000,
        "channels": 1,
        "languages": ["en"],
        "offline": True,
    }
    assert acme["presets"] == [{"kind": "tts", "name": "acme-low", "spec": "acme?pitch=220"}]


def test_the_templates_own_tests_pass(installed: dict[str, str]) -> None:
    source = installed["ACME_SOURCE"]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"]
    result = _run([*command, "--rootdir", source], cwd=source, env=installed)
    assert "3 passed" in result.stdout
