"""Refresh the locks that pin the development and CI environment.

``locks/dev.txt`` pins every package the workspace environment resolves to (direct and
transitive, every platform and Python >= 3.11). Hatch hands it to uv as ``UV_CONSTRAINT``
(hatch.toml), so ``hatch run test`` / ``hatch run demo`` install exactly these versions on a
fresh clone, while the packages' own metadata keeps its ranges for users.

``locks/build.txt`` pins what uv builds with: hatchling for the workspace's own packages and
scikit-build-core (with CMake and Ninja, if it asks for them) for llama-cpp-python, the one
dependency that comes as source (``UV_BUILD_CONSTRAINT``).

``locks/ci-tools.txt`` pins hatch and uv for ``.ci/run``.

Run on purpose, in a commit of its own, after ``hatch run latest:test`` has passed::

    hatch run lock:refresh            # re-resolve to the newest versions the ranges allow
    hatch run lock:refresh --check    # fail if the committed locks are stale for the inputs
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "locks"
DEV_LOCK = LOCKS / "dev.txt"
BUILD_LOCK = LOCKS / "build.txt"
TOOLS_LOCK = LOCKS / "ci-tools.txt"
EXCLUDES = ROOT / "packages" / "plugins-llamacpp" / "uv-exclude.txt"
PYTHON = "3.11"
# The build backends: the workspace's own (every packages/*/pyproject.toml) and
# llama-cpp-python's build-system.requires, with the tools scikit-build-core may ask for.
BUILD_REQUIRES = ["hatchling", "scikit-build-core[pyproject]>=0.9.2", "cmake", "ninja"]
# What .ci/run needs to run the README's test command.
CI_TOOLS = ["hatch", "uv"]


SET_BY_HATCH = {"UV_CONSTRAINT", "UV_BUILD_CONSTRAINT", "UV_EXCLUDE"}


def uv() -> str:
    found = shutil.which("uv")
    if found:
        return found
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        sys.exit("lock: uv is needed (pip install uv)")
    return str(find_uv_bin())


def workspace_inputs() -> tuple[list[str], list[str]]:
    """The default environment's requirements: its members (editable) and its dependencies."""
    config = tomllib.loads((ROOT / "hatch.toml").read_text())["envs"]["default"]
    members: list[str] = []
    names: list[str] = []
    for pattern in config["workspace"]["members"]:
        for member in sorted(ROOT.glob(pattern)):
            project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
            members.append(f"-e {member}")
            names.append(project["name"])
    return [*members, *config["dependencies"]], names


def compile_lock(
    requirements: list[str],
    output: Path,
    *,
    header: str,
    extra: list[str],
    constraints: dict[str, str] | None = None,
) -> str:
    """The lock of ``requirements``, starting from ``output``'s pins; ``constraints`` maps
    file names to pins the resolution must also keep."""
    with tempfile.TemporaryDirectory() as scratch:
        for name, pins in (constraints or {}).items():
            (Path(scratch) / name).write_text(pins)
            extra = [*extra, "--constraints", name]
        # Named after the lock, and given relative to the scratch folder: the "via" notes in
        # the output name it, and must not change from one run to the next.
        source = Path(scratch) / output.with_suffix(".in").name
        source.write_text("\n".join(requirements) + "\n")
        target = Path(scratch) / output.name
        if output.exists():
            # Start from the committed pins: only --upgrade moves them.
            shutil.copy(output, target)
        command = [
            uv(), "pip", "compile", source.name, "--output-file", target.name,
            "--universal", "--python-version", PYTHON, "--no-header", "--quiet", *extra,
        ]  # fmt: skip
        # The resolver must see PyPI as users do, not a constraint from the calling env.
        env = {k: v for k, v in os.environ.items() if k not in SET_BY_HATCH}
        subprocess.run(command, check=True, cwd=scratch, env=env)
        return header + target.read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if a lock is stale")
    parser.add_argument(
        "--keep", action="store_true", help="keep current pins; only add what is missing"
    )
    args = parser.parse_args()
    upgrade = [] if args.keep or args.check else ["--upgrade"]

    requirements, members = workspace_inputs()
    no_emit = [arg for name in members for arg in ("--no-emit-package", name)]
    regenerate = "# Regenerate with `hatch run lock:refresh` (see .ci/lock.py); do not edit.\n"
    dev = compile_lock(
        requirements,
        DEV_LOCK,
        header="# Development and CI environment: every version hatch installs.\n" + regenerate,
        extra=[*upgrade, "--excludes", str(EXCLUDES), *no_emit],
    )
    build = compile_lock(
        BUILD_REQUIRES,
        BUILD_LOCK,
        header="# Build backends uv builds the workspace and sdists with.\n" + regenerate,
        extra=upgrade,
        # Where a build backend is also a dev dependency (hatchling), the same version.
        constraints={"dev.txt": dev},
    )
    tools = compile_lock(
        CI_TOOLS,
        TOOLS_LOCK,
        header="# hatch and uv for .ci/run.\n" + regenerate,
        extra=upgrade,
    )
    locks = {DEV_LOCK: dev, BUILD_LOCK: build, TOOLS_LOCK: tools}
    stale = False
    for path, text in locks.items():
        old = path.read_text() if path.exists() else ""
        if text == old:
            print(f"lock: {path.relative_to(ROOT)} is up to date")
            continue
        if args.check:
            stale = True
            diff = difflib.unified_diff(old.splitlines(), text.splitlines(), lineterm="", n=0)
            print(f"lock: {path.relative_to(ROOT)} is stale:", *list(diff)[2:], sep="\n  ")
            continue
        LOCKS.mkdir(exist_ok=True)
        path.write_text(text)
        print(f"lock: wrote {path.relative_to(ROOT)}")
    if stale:
        sys.exit("lock: run `hatch run lock:refresh --keep` to add what the inputs now need")


if __name__ == "__main__":
    main()
