"""Says in the test report's header which environment ran: the lock's, or newer versions.

Hatch pins the workspace environment through ``UV_CONSTRAINT=locks/dev.txt``, but it does not
notice when the lock changes under an environment it made before: then this header names
what differs, and under ``CI=true`` the run stops, since its figures would not be the lock's.
"""

from __future__ import annotations

import hashlib
import os
import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.utils import canonicalize_name

LOCK = Path(__file__).resolve().parent / "locks" / "dev.txt"
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)\s*(?:;\s*(.+))?$")


def lock_differences(lock: Path) -> list[str]:
    """Packages pinned by ``lock`` for this interpreter whose installed version differs."""
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version for dist in metadata.distributions()
    }
    differences = []
    for line in lock.read_text().splitlines():
        match = PIN.match(line.strip())
        if not match:
            continue
        name, version, marker = match.groups()
        if marker and not Marker(marker).evaluate():
            continue
        have = installed.get(canonicalize_name(name))
        if have != version:
            differences.append(f"{name} {have or 'missing'} (lock: {version})")
    return differences


def pytest_report_header(config: pytest.Config) -> str:
    constraint = os.environ.get("UV_CONSTRAINT")
    if constraint is None or Path(constraint).resolve() != LOCK:
        return f"lock: not in use (UV_CONSTRAINT={constraint!r}): newest versions the ranges allow"
    digest = hashlib.sha256(LOCK.read_bytes()).hexdigest()[:12]
    differences = lock_differences(LOCK)
    if not differences:
        return f"lock: locks/dev.txt sha256:{digest}, the environment matches it"
    message = (
        f"lock: the environment differs from locks/dev.txt sha256:{digest} in "
        f"{len(differences)} packages: {', '.join(differences[:8])}"
        f"{' …' if len(differences) > 8 else ''}; `hatch env prune` makes it anew"
    )
    if os.environ.get("CI") == "true":
        raise pytest.UsageError(message)
    return message
