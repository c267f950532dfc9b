"""Installing one provider plugin pulls no other provider's SDK.

Three checks, from cheap to thorough:

1. every ``packages/plugins-*`` package's declared dependencies (and extras) name no SDK of
   another provider, nor another provider's plugin;
2. the dependency closure of each installed plugin, walked through installed metadata, holds
   no foreign SDK;
3. for each cloud provider plugin, a fresh ``uv venv`` with parley-core and that plugin alone
   (resolved offline, from uv's cache) lists no foreign SDK in ``uv pip list``.
"""

from __future__ import annotations

import importlib.metadata as metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "packages"

# Provider -> the SDK distributions that belong to it. Any plugin may use its own.
PROVIDER_SDKS: dict[str, frozenset[str]] = {
    "openai": frozenset({"openai"}),
    "anthropic": frozenset({"anthropic"}),
    "gemini": frozenset(
        {"google-genai", "google-generativeai", "google-ai-generativelanguage", "vertexai"}
    ),
    "deepgram": frozenset({"deepgram-sdk"}),
    "elevenlabs": frozenset({"elevenlabs"}),
    "cartesia": frozenset({"cartesia"}),
    "groq": frozenset({"groq"}),
    "mistral": frozenset({"mistralai"}),
    "cohere": frozenset({"cohere"}),
    "assemblyai": frozenset({"assemblyai"}),
    "azure": frozenset({"azure-cognitiveservices-speech", "azure-ai-inference"}),
    "aws": frozenset({"boto3", "aiobotocore"}),
    "google-cloud": frozenset(
        {"google-cloud-speech", "google-cloud-texttospeech", "google-cloud-aiplatform"}
    ),
}
CLOUD_PROVIDERS = ("openai", "anthropic", "gemini", "deepgram", "elevenlabs")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def plugin_dirs() -> list[Path]:
    return sorted(p for p in PACKAGES.glob("plugins-*") if (p / "pyproject.toml").is_file())


def project(directory: Path) -> dict[str, object]:
    with open(directory / "pyproject.toml", "rb") as file:
        return dict(tomllib.load(file)["project"])


def provider_of(directory: Path) -> str:
    return directory.name.removeprefix("plugins-")


def foreign(provider: str, names: set[str]) -> list[str]:
    """The SDKs and provider plugins in ``names`` that belong to other providers."""
    found = []
    for other, sdks in PROVIDER_SDKS.items():
        if other == provider:
            continue
        found += sorted(names & sdks)
        if f"parley-{other}" in names:
            found.append(f"parley-{other}")
    return found


def test_known_plugins_are_checked() -> None:
    names = {d.name for d in plugin_dirs()}
    assert {"plugins-gemini", "plugins-deepgram", "plugins-elevenlabs"} <= names


@pytest.mark.parametrize("directory", plugin_dirs(), ids=lambda d: d.name)
def test_declared_dependencies_name_no_foreign_sdk(directory: Path) -> None:
    info = project(directory)
    declared = list(info.get("dependencies", []))  # type: ignore[call-overload]
    for extra in dict(info.get("optional-dependencies", {})).values():  # type: ignore[call-overload]
        declared += extra
    names = {normalize(Requirement(text).name) for text in declared}
    assert "parley-core" in names, f"{directory.name} must declare parley-core"
    assert not foreign(provider_of(directory), names), (
        f"{info['name']} declares another provider's SDK: {foreign(provider_of(directory), names)}"
    )


def installed_closure(distribution: str) -> tuple[set[str], set[str]]:
    """Names of the installed distributions ``distribution`` pulls in (default extras only),
    and the required names that are not installed here."""
    seen: set[str] = set()
    missing: set[str] = set()
    todo = [normalize(distribution)]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        seen.add(name)
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(normalize(requirement.name))
    return seen, missing


@pytest.mark.parametrize("directory", plugin_dirs(), ids=lambda d: d.name)
def test_installed_dependency_closure_has_no_foreign_sdk(directory: Path) -> None:
    distribution = str(project(directory)["name"])
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed in this environment")
    closure, _ = installed_closure(distribution)
    assert normalize(distribution) in closure
    bad = foreign(provider_of(directory), closure)
    assert not bad, f"installing {distribution} pulls {bad}"


@pytest.mark.parametrize("provider", CLOUD_PROVIDERS)
def test_isolated_environment_per_cloud_provider(provider: str, tmp_path: Path) -> None:
    directory = PACKAGES / f"plugins-{provider}"
    if not (directory / "pyproject.toml").is_file():
        pytest.skip(f"packages/plugins-{provider} does not exist yet")
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed")
    venv = tmp_path / "venv"
    env = {**os.environ, "VIRTUAL_ENV": str(venv)}
    env.pop("UV_EXCLUDE", None)  # the workspace's exclusions must not hide anything here
    version = f"{sys.version_info.major}.{sys.version_info.minor}"

    def uv_run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [uv, *args], env=env, capture_output=True, text=True, timeout=120, check=False
        )

    made = uv_run("venv", "--quiet", "--python", version, str(venv))
    assert made.returncode == 0, made.stderr
    # Offline: resolved from uv's cache, which installing the workspace filled; tests never
    # reach the network.
    installed = uv_run(
        "pip", "install", "--offline", "--quiet", str(PACKAGES / "core"), str(directory)
    )
    if installed.returncode != 0:
        pytest.skip(f"cannot resolve parley-{provider} offline from uv's cache: {installed.stderr}")
    listed = uv_run("pip", "list", "--format", "freeze")
    assert listed.returncode == 0, listed.stderr
    names = {normalize(line.split("==")[0]) for line in listed.stdout.split() if "==" in line}
    assert {"parley-core", f"parley-{provider}"} <= names
    bad = foreign(provider, names)
    assert not bad, f"an environment with only parley-{provider} holds {bad}"
    own = PROVIDER_SDKS[provider]
    if provider in ("openai", "anthropic"):
        assert names & own, f"parley-{provider} should bring its SDK {sorted(own)}"
