"""Where a user's Runner is built, and running that code again in *capture mode*.

A target names where a Runner is built: a script path (``agent.py``), a module run with
``-m``, or an importable module, optionally with an attribute (``myapp.server:runner``).
Loading a target runs that code in *capture mode*: every `Runner` built meanwhile is recorded
and its ``cli()``/``run()``/``serve()`` return at once, so the usual style-A script

    if __name__ == "__main__":
        Runner(AgentLauncher(create_agent=..., join_call=...), ServeOptions(...)).cli()

yields the very Runner (with its ServeOptions) that the user wrote, without serving twice.
This module knows nothing of `Runner` (it records whatever is built); `parley_server.loading`
picks the Runner out of what a target built.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Literal

Kind = Literal["path", "main-module", "module"]

_capture = threading.local()


class TargetError(Exception):
    """A target could not be loaded, or holds no Runner."""


@dataclass(frozen=True)
class Target:
    kind: Kind
    value: str
    attr: str | None = None

    def __str__(self) -> str:
        where = f"-m {self.value}" if self.kind == "main-module" else self.value
        return f"{where}:{self.attr}" if self.attr else where

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Target:
        return cls(data["kind"], data["value"], data.get("attr"))


def parse_target(text: str) -> Target:
    """``agent.py``, ``agent.py:runner``, ``pkg.module`` or ``pkg.module:runner``."""
    value, attr = text, None
    head, sep, tail = text.rpartition(":")
    if sep and head and tail.isidentifier() and not (len(head) == 1 and head.isalpha()):
        value, attr = head, tail
    if value.endswith(".py") or os.sep in value or "/" in value or os.path.isfile(value):
        if not os.path.isfile(value):
            raise TargetError(f"no such file: {value}")
        return Target("path", os.path.abspath(value), attr)
    if not all(part.isidentifier() for part in value.split(".")):
        raise TargetError(
            f"{text!r} is neither a Python file nor a module name; "
            "use path/to/agent.py or package.module[:attribute]"
        )
    return Target("module", value, attr)


def caller_target(module_name: str) -> Target | None:
    """Where code in module ``module_name`` can be found again by a fresh process."""
    if module_name != "__main__":
        return Target("module", module_name)
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name and spec.name != "__main__":
        name = spec.name.removesuffix(".__main__")
        return Target("main-module", name)
    path = getattr(main, "__file__", None)
    if path and os.path.isfile(path):
        return Target("path", os.path.abspath(path))
    return None  # an interactive session or ``python -c``


def capturing_active() -> bool:
    return getattr(_capture, "built", None) is not None


def record(built: object) -> None:
    """Note ``built`` (a Runner, from its constructor) if a target is being loaded."""
    captured: list[object] | None = getattr(_capture, "built", None)
    if captured is not None:
        captured.append(built)


@contextmanager
def capturing() -> Iterator[list[object]]:
    previous = getattr(_capture, "built", None)
    built: list[object] = []
    _capture.built = built
    try:
        yield built
    finally:
        _capture.built = previous


def run_captured(target: Target) -> tuple[dict[str, Any], list[object]]:
    """Run ``target``'s code in capture mode: its namespace and what it recorded meanwhile."""
    with capturing() as built:
        try:
            return _execute(target), built
        except SystemExit as exc:  # e.g. ``sys.exit(runner.cli())``, cli() returning None
            if exc.code not in (None, 0):
                raise TargetError(f"{target} exited with {exc.code!r} while loading") from exc
            if not built:
                raise TargetError(
                    f"{target} exited while loading, before building a Runner"
                ) from exc
            return {}, built


def _execute(target: Target) -> dict[str, Any]:
    try:
        if target.kind == "path":
            folder = os.path.dirname(target.value)
            if folder not in sys.path:
                sys.path.insert(0, folder)
            return runpy.run_path(target.value, run_name="__main__")
        if target.kind == "main-module":
            return runpy.run_module(target.value, run_name="__main__", alter_sys=False)
        return vars(importlib.import_module(target.value))
    except ImportError as exc:
        raise TargetError(f"cannot load {target}: {exc}") from exc
