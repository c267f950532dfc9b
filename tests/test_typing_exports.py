"""Type checkers see parley's real export list, not the lazy loader's "any name goes".

`parley/__init__.py` loads its public names on first use through a module `__getattr__`; if
mypy saw that function it would type every name, misspelt or not, as Any. These tests run the
environment's mypy on small user files, as a user's CI would.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import parley

INIT = Path(parley.__file__)

BAD = """\
from parley import Agnet
"""

BAD_SERVER = """\
from parley_server import Runnr
"""

GOOD = """\
from parley import (
    Agent,
    AgentLauncher,
    AgentSession,
    CascadingPipeline,
    Runner,
    ServeOptions,
    SessionRegistry,
    __version__,
)


def serve(launcher: AgentLauncher) -> Runner:
    return Runner(launcher, ServeOptions())


agent: Agent = Agent(instructions="Be brief.")
version: str = __version__
reveal_type(Runner)
reveal_type(AgentSession)
reveal_type(CascadingPipeline)
reveal_type(SessionRegistry)
"""


def mypy(tmp_path: Path, **files: str) -> tuple[int, str]:
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(text, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-incremental",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            *(f"{name}.py" for name in files),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    return done.returncode, done.stdout + done.stderr


def test_a_misspelt_import_fails_and_correct_imports_are_typed(tmp_path: Path) -> None:
    code, out = mypy(tmp_path, bad=BAD, bad_server=BAD_SERVER, good=GOOD)
    print(out)
    assert code == 1, out
    errors = sorted(line for line in out.splitlines() if ": error:" in line)
    # The misspelt names are the only errors, and mypy names them (and suggests the right one).
    assert len(errors) == 2, out
    assert errors[0].startswith("bad.py:1:"), out
    assert '"Agnet"' in errors[0] and '"Agent"' in errors[0], out
    assert errors[1].startswith("bad_server.py:1:"), out
    assert '"Runnr"' in errors[1] and '"Runner"' in errors[1], out
    # Names from parley-server are their real classes, not Any.
    assert 'Revealed type is "def (launcher: parley.launcher.AgentLauncher' in out, out
    assert "-> parley_server.runner.Runner" in out, out
    assert "-> parley.session.AgentSession" in out, out
    assert "-> parley.pipeline.CascadingPipeline" in out, out
    assert "-> parley.registry.SessionRegistry" in out, out
    assert 'Revealed type is "Any"' not in out, out


def type_checking_names(tree: ast.Module) -> set[str]:
    """Names bound by the imports under ``if TYPE_CHECKING:`` at module level."""
    names: set[str] = set()
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and node.test.id == "TYPE_CHECKING"
        ):
            for statement in node.body:
                if isinstance(statement, ast.ImportFrom):
                    for alias in statement.names:
                        assert alias.asname == alias.name, "re-export as `X as X`"
                        names.add(alias.asname)
    return names


def test_every_lazy_export_has_a_type_checking_import() -> None:
    names = type_checking_names(ast.parse(INIT.read_text(encoding="utf-8")))
    # parley's __dir__ lists every lazily exported name, parley-server's included.
    lazy = set(dir(parley)) - {"__version__"}
    assert names == lazy, (
        f"missing for type checkers: {sorted(lazy - names)}; not lazily exported: "
        f"{sorted(names - lazy)}"
    )


def test_every_lazy_export_loads() -> None:
    for name in dir(parley):
        assert getattr(parley, name) is not None
    # One source of the version: pyproject.toml, read back from the installed metadata.
    assert parley.__version__ == version("parley-core")
