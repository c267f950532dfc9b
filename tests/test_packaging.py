"""Every package builds a wheel that PyPI and pip users can rely on.

Each wheel is built with hatchling (the packages' build backend) from its folder, as a release
would, and its metadata is read back: the license text and expression, classifiers, project
URLs, author, keywords, and a ``parley-core`` bound matching the plugin API the core speaks.
"""

from __future__ import annotations

import ast
import email
import importlib
import re
import subprocess
import sys
import tomllib
import zipfile
from email.message import Message
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from parley.plugins import API_VERSION

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = sorted(path.parent for path in ROOT.glob("packages/*/pyproject.toml"))
REPOSITORY = "https://github.com/parley-ai/parley"
# parley-core's minor series for each plugin API version: a core release that changes
# `API_VERSION` starts a new series, and every plugin's bound moves with it.
CORE_SERIES_OF_API = {1: "0.1"}
# Packages licensed otherwise than Apache-2.0, because a dependency forces it (DESIGN.md).
NOT_APACHE = {"parley-piper": "GPL-3.0-or-later"}
REQUIRED_URLS = {"Homepage", "Documentation", "Source", "Issues"}


def project(package: Path) -> dict[str, object]:
    table = tomllib.loads((package / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert isinstance(table, dict)
    return table


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Build every package's wheel once; name -> wheel path."""
    out = tmp_path_factory.mktemp("wheels")
    built: dict[str, Path] = {}
    for package in PACKAGES:
        target = out / package.name
        done = subprocess.run(
            [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(target)],
            cwd=package,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"{package.name}: {done.stdout}{done.stderr}"
        (wheel,) = target.glob("*.whl")
        built[str(project(package)["name"])] = wheel
    return built


def read_wheel(wheel: Path) -> tuple[Message, dict[str, bytes]]:
    with zipfile.ZipFile(wheel) as archive:
        dist_info = {
            name.split("/", 1)[1]: archive.read(name)
            for name in archive.namelist()
            if name.split("/", 1)[0].endswith(".dist-info")
        }
    return email.message_from_bytes(dist_info["METADATA"]), dist_info


def expected_core_bound() -> SpecifierSet:
    series = Version(CORE_SERIES_OF_API[API_VERSION])
    core_version = Version(str(project(ROOT / "packages" / "core")["version"]))
    assert core_version.release[:2] == series.release[:2], (
        f"parley-core {core_version} is not in the {series} series that plugin API "
        f"{API_VERSION} belongs to: update CORE_SERIES_OF_API and every plugin's bound"
    )
    upper = f"{series.major}.{series.minor + 1}"
    return SpecifierSet(f">={series},<{upper}")


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_wheel_holds_its_license_and_complete_metadata(
    package: Path, wheels: dict[str, Path]
) -> None:
    name = str(project(package)["name"])
    metadata, dist_info = read_wheel(wheels[name])
    where = f"{name} ({wheels[name].name})"

    # License: an SPDX expression, and the text itself in the wheel.
    license_expression = NOT_APACHE.get(name, "Apache-2.0")
    assert Version(metadata["Metadata-Version"]) >= Version("2.4"), where
    assert metadata["License-Expression"] == license_expression, where
    assert metadata.get_all("License-File") == ["LICENSE"], where
    shipped = dist_info["licenses/LICENSE"]
    assert shipped == (package / "LICENSE").read_bytes(), where
    if license_expression == "Apache-2.0":
        assert shipped == (ROOT / "LICENSE").read_bytes(), f"{where}: not the root LICENSE"
    else:
        assert shipped.lstrip().startswith(b"GNU GENERAL PUBLIC LICENSE\n"), where
        assert b"Version 3, 29 June 2007" in shipped[:200], where

    # Classifiers: present, and no license classifier beside the expression (PEP 639).
    classifiers = metadata.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3 :: Only" in classifiers, where
    assert "Typing :: Typed" in classifiers, where
    assert any(c.startswith("Development Status :: ") for c in classifiers), where
    assert not [c for c in classifiers if c.startswith("License ::")], where
    assert metadata["Requires-Python"] == ">=3.11", where

    # Project URLs, author, keywords.
    urls = dict(
        (label.strip(), url.strip())
        for label, url in (entry.split(",", 1) for entry in metadata.get_all("Project-URL") or [])
    )
    assert set(urls) >= REQUIRED_URLS, f"{where}: {sorted(urls)}"
    assert all(url.startswith(REPOSITORY) for url in urls.values()), f"{where}: {urls}"
    assert urls["Source"] == f"{REPOSITORY}/tree/main/packages/{package.name}", where
    assert metadata["Author"] or metadata["Author-email"], where
    assert len((metadata["Keywords"] or "").split(",")) >= 3, where

    # The long description is read on PyPI: its links must not be relative to the repository.
    description = metadata.get_payload()
    assert isinstance(description, str) and description.strip(), where
    relative = re.findall(r"\]\((?!https?://|#|mailto:)([^)]*)\)", description)
    assert not relative, f"{where}: relative links in README.md: {relative}"

    # parley-core: the series that speaks the plugin API this package was built for.
    requirements = [Requirement(line) for line in metadata.get_all("Requires-Dist") or []]
    assert not [r for r in requirements if r.name == "parley-piper"], (
        f"{where} depends on the GPL parley-piper; no other package may"
    )
    core = [r for r in requirements if r.name == "parley-core" and r.marker is None]
    if name == "parley-core":
        assert not core, where
    else:
        assert len(core) == 1, f"{where}: {requirements}"
        assert core[0].specifier == expected_core_bound(), f"{where}: {core[0]}"

    # The wheel holds the typed package ("Typing :: Typed" above).
    with zipfile.ZipFile(wheels[name]) as archive:
        assert [n for n in archive.namelist() if n.endswith("/py.typed")], where


def test_every_package_directory_has_a_license_file() -> None:
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    for package in PACKAGES:
        assert project(package).get("license-files") == ["LICENSE"], package.name
        assert (package / "LICENSE").is_file(), package.name


def test_the_version_is_written_once() -> None:
    """pyproject.toml holds the version; nothing in the source repeats it."""
    for package in PACKAGES:
        version = str(project(package)["version"])
        for source in (package / "src").rglob("*.py"):
            text = source.read_text(encoding="utf-8")
            assert not re.search(rf"__version__\s*=\s*[\"']{re.escape(version)}", text), source


# Parts the README's examples name by spec string rather than import, and what provides them.
SPEC_PARTS = {
    "Agent.local(": [
        "parley-silero",
        "parley-whisper",
        "parley-piper",
        '"parley-llamacpp[default-model]"',  # the default model is an extra
    ],
    'edge="webrtc"': ["parley-webrtc"],
}


def distribution_of(module_name: str) -> str:
    """The workspace distribution whose src/ holds `module_name`."""
    module = importlib.import_module(module_name)
    path = Path(str(module.__file__)).resolve()
    for package in PACKAGES:
        if path.is_relative_to(package / "src"):
            return str(project(package)["name"])
    raise AssertionError(f"{module_name} ({path}) is not in a workspace package")


def test_the_readme_install_line_runs_the_readme_example() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = re.search(r"```bash\n([^`]*?pip install parley-core[^`]*)```", readme)
    assert install, "README.md has no `pip install parley-core ...` block"
    line = install.group(1)
    needed: set[str] = set()
    for block in re.findall(r"```python\n(.*?)```", readme, re.DOTALL):
        for node in ast.walk(ast.parse(block)):
            if isinstance(node, ast.ImportFrom) and node.module:
                for alias in node.names:
                    # `from parley import Runner` is parley-server's Runner: ask the object.
                    value = getattr(importlib.import_module(node.module), alias.name)
                    needed.add(distribution_of(getattr(value, "__module__", node.module)))
            elif isinstance(node, ast.Import):
                needed.update(distribution_of(alias.name) for alias in node.names)
        for marker, packages in SPEC_PARTS.items():
            if marker in block:
                needed.update(packages)
    assert "parley-server" in needed  # Runner: the case the old install line missed
    missing = [
        name for name in sorted(needed) if not re.search(rf"(?<![\w-]){re.escape(name)}", line)
    ]
    assert not missing, f"README.md's install line lacks {missing}: {line}"
