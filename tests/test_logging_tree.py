"""Every package logs under ``parley.``, so ``--log-level`` reaches all of Parley and only it."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

PACKAGES = Path(__file__).resolve().parents[1] / "packages"
# The modules that set levels (on computed names); they log nothing themselves.
CONFIGURING = {"core/src/parley/logs.py", "server/src/parley_server/console.py"}


def _logger_names(path: Path) -> list[tuple[int, str]]:
    """The names passed to ``logging.getLogger`` in ``path`` (``<root>`` for no name)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger"
        ):
            continue
        if not node.args:
            found.append((node.lineno, "<root>"))
        elif isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
            found.append((node.lineno, node.args[0].value))
        elif isinstance(node.args[0], ast.Name) and node.args[0].id == "__name__":
            found.append((node.lineno, "__name__"))
        else:
            found.append((node.lineno, ast.unparse(node.args[0])))
    return found


def test_every_package_logs_under_parley() -> None:
    sources = sorted(PACKAGES.glob("*/src/**/*.py"))
    assert len(sources) > 50
    wrong: list[str] = []
    for path in sources:
        in_core = path.is_relative_to(PACKAGES / "core" / "src" / "parley")
        if path.relative_to(PACKAGES).as_posix() in CONFIGURING:
            continue
        for line, name in _logger_names(path):
            ok = (
                name == "<root>"  # handlers are flushed or configured there, nothing logged
                or name == "parley"
                or name.startswith("parley.")
                or (name == "__name__" and in_core)  # parley.<module>
            )
            if not ok:
                wrong.append(f"{path.relative_to(PACKAGES)}:{line}: getLogger({name})")
    assert not wrong, "loggers outside the parley tree:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("parley_openai.llm", "parley.openai"),
        ("parley_openai.realtime", "parley.openai"),
        ("parley_anthropic._messages", "parley.anthropic"),
        ("parley_llamacpp.engine", "parley.llamacpp"),
    ],
)
def test_the_providers_named_in_issue_19_log_under_parley(module: str, name: str) -> None:
    imported = pytest.importorskip(module)
    logger = imported.logger
    assert isinstance(logger, logging.Logger) and logger.name == name
