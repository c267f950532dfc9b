"""Finding a user's Runner again in another process (uvicorn workers, ``parley serve``).

A target names where a Runner is built: a script path (``agent.py``), a module run with
``-m``, or an importable module, optionally with an attribute (``myapp.server:runner``).
Loading a target runs that code in *capture mode*: every `Runner` built meanwhile is recorded
and its ``cli()``/``run()``/``serve()`` return at once, so the usual style-A script

    if __name__ == "__main__":
        Runner(AgentLauncher(create_agent=..., join_call=...), ServeOptions(...)).cli()

yields the very Runner (with its ServeOptions) that the user wrote, without serving twice.
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
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from parley_server.runner import Runner

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
    return getattr(_capture, "runners", None) is not None


def record(runner: Runner) -> None:
    runners: list[Runner] | None = getattr(_capture, "runners", None)
    if runners is not None:
        runners.append(runner)


@contextmanager
def capturing() -> Iterator[list[Runner]]:
    previous = getattr(_capture, "runners", None)
    runners: list[Runner] = []
    _capture.runners = runners
    try:
        yield runners
    finally:
        _capture.runners = previous


def load_runner(target: Target) -> Runner:
    """Run ``target``'s code in capture mode and return its Runner."""
    from parley_server.runner import Runner

    with capturing() as built:
        try:
            namespace = _execute(target)
        except SystemExit as exc:  # e.g. ``sys.exit(runner.cli())``, cli() returning None
            if exc.code not in (None, 0):
                raise TargetError(f"{target} exited with {exc.code!r} while loading") from exc
            if not built:
                raise TargetError(
                    f"{target} exited while loading, before building a Runner"
                ) from exc
            namespace = {}
    if target.attr is not None:
        if target.attr not in namespace:
            raise TargetError(f"{target}: {target.value} has no attribute {target.attr!r}")
        found = _as_runner(namespace[target.attr])
        if found is None:
            raise TargetError(
                f"{target}: {target.attr!r} is a {type(namespace[target.attr]).__name__}, "
                "not a Runner or an AgentLauncher"
            )
        return found
    if built:
        return built[-1]
    for value in list(namespace.values()):
        if isinstance(value, Runner):
            return value
    for value in list(namespace.values()):
        found = _as_runner(value)
        if found is not None:
            return found
    create_agent, join_call = namespace.get("create_agent"), namespace.get("join_call")
    if callable(create_agent) and callable(join_call):
        from parley.launcher import AgentLauncher

        return Runner(AgentLauncher(create_agent, join_call))
    raise TargetError(
        f"{target} builds no Runner: build one (Runner(launcher).cli() under "
        "if __name__ == '__main__'), or define a module-level Runner or AgentLauncher, or "
        "async functions create_agent and join_call"
    )


def _as_runner(value: Any) -> Runner | None:
    from parley.launcher import AgentLauncher

    from parley_server.runner import Runner

    if isinstance(value, Runner):
        return value
    if isinstance(value, AgentLauncher):
        return Runner(value)
    return None


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
