"""The installed entry points of one group, read without importing `importlib.metadata`.

Discovery runs when the first session starts, and importing `importlib.metadata` costs ~1.6 MB
of RSS (``importlib.abc`` pulls in ``importlib.resources``, ``tempfile``, ``shutil``, ``pathlib``,
``zipfile``, ``email``, ``csv``), most of what a first session would cost beyond later ones.
For the usual layout, plain directories on ``sys.path`` holding ``*.dist-info`` and
``*.egg-info`` folders, `entry_points` reads ``entry_points.txt`` itself, the way
`importlib.metadata.entry_points` does: ``sys.path`` in order, the first distribution of a
normalized name wins, and the distribution's name and version are read from its metadata
headers only when asked. Anything else (a zip or egg on ``sys.path``, a meta path finder with
its own ``find_distributions``) is left to `importlib.metadata`, so nothing is ever missed.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import re
import sys
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

__all__ = ["EntryPointLike", "InstalledEntryPoint", "distribution_of", "entry_points"]

_INFO_SUFFIXES = (".dist-info", ".egg-info")
# What `importlib.metadata.EntryPoint.pattern` accepts: "module", "module:attr", "[extras]".
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class EntryPointLike(Protocol):
    """What discovery needs of an entry point: `importlib.metadata.EntryPoint` or ours."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> Any: ...


@dataclass(frozen=True, eq=False)
class InstalledEntryPoint:
    """One ``name = value`` line of a ``[group]`` in a distribution's ``entry_points.txt``."""

    name: str
    value: str
    group: str
    info_dir: str  # the distribution's .dist-info or .egg-info folder

    def load(self) -> Any:
        """Import the module and return the object the value names, as `EntryPoint.load`."""
        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r} has an invalid value {self.value!r}")
        obj: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj

    @cached_property
    def distribution(self) -> tuple[str | None, str | None]:
        """(Name, Version) from the metadata headers, without parsing the whole file."""
        for filename in ("METADATA", "PKG-INFO"):
            headers = _read_headers(os.path.join(self.info_dir, filename))
            if headers is not None:
                return headers.get("name"), headers.get("version")
        return None, None


def distribution_of(entry_point: EntryPointLike) -> tuple[str | None, str | None]:
    """The name and version of the distribution that declares ``entry_point``, if known."""
    if isinstance(entry_point, InstalledEntryPoint):
        return entry_point.distribution
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


def entry_points(group: str) -> list[EntryPointLike]:
    """Every installed entry point in ``group``, as `importlib.metadata.entry_points` finds
    them (one distribution per normalized name, the first on ``sys.path``)."""
    if not _plain_layout():
        from importlib.metadata import entry_points as installed

        return list(installed(group=group))
    found: list[EntryPointLike] = []
    seen: set[str] = set()
    for root in sys.path:
        for child in _children(root or "."):
            low = child.lower()
            if not low.endswith(_INFO_SUFFIXES):
                continue
            name = _normalize(low.rpartition(".")[0].partition("-")[0])
            if name in seen:
                continue
            seen.add(name)
            info_dir = os.path.join(root, child)
            found.extend(_read_group(info_dir, group))
    return found


def _plain_layout() -> bool:
    """Whether every distribution lives in a plain ``sys.path`` directory that this module reads
    as `importlib.metadata` would; otherwise the caller asks `importlib.metadata` itself."""
    for finder in sys.meta_path:
        if finder is importlib.machinery.PathFinder:
            continue
        if getattr(finder, "find_distributions", None) is not None:
            return False
    for root in sys.path:
        if not isinstance(root, str) or os.path.basename(root).lower().endswith(".egg"):
            return False
        if os.path.exists(root) and not os.path.isdir(root):
            return False  # a zip file: importlib.metadata reads inside it
    return True


def _children(root: str) -> list[str]:
    try:
        return os.listdir(root)
    except OSError:
        return []


def _normalize(name: str) -> str:
    # `importlib.metadata.Prepared.normalize`: PEP 503, with dashes as underscores.
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _read_group(info_dir: str, group: str) -> list[InstalledEntryPoint]:
    try:
        with open(os.path.join(info_dir, "entry_points.txt"), encoding="utf-8") as file:
            text = file.read()
    except (OSError, UnicodeDecodeError):
        return []
    found: list[InstalledEntryPoint] = []
    section: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line.strip("[]")
            continue
        name, sep, value = line.partition("=")
        if section == group and sep:
            found.append(InstalledEntryPoint(name.strip(), value.strip(), group, info_dir))
    return found


def _read_headers(path: str) -> dict[str, str] | None:
    """The first value of each header (lower-cased name) before the first blank line."""
    try:
        with open(path, encoding="utf-8") as file:
            headers: dict[str, str] = {}
            for line in file:
                if not line.strip():
                    break
                if line[0] in " \t":
                    continue  # a folded continuation; Name and Version are never folded
                key, sep, value = line.partition(":")
                if sep:
                    headers.setdefault(key.strip().lower(), value.strip())
            return headers
    except (OSError, UnicodeDecodeError):
        return None
