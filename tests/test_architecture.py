"""Architecture rules for every package's source: no import cycles, no reading others' privates.

Both rules read the source with ``ast`` (nothing is imported). Known violations are listed in
``tests/architecture_allow/<area>.txt``, one per line; a test fails on a violation missing from
its list and on a listed line that no longer matches one, so the lists only shrink.

Line formats (no line numbers, so edits elsewhere in a file do not move them):

``cycle: a.b -> a.c``
    The import edge ``a.b`` imports ``a.c`` lies on an import cycle. Edges rather than whole
    cycles are listed because removing an import can only take edges off cycles, never put an
    unlisted one on; the failure message shows each cycle as a chain.
``private: pkg/mod.py: expr``
    ``pkg/mod.py`` reads an underscore member of another module: ``from m import _x``, an import
    of another distribution's private module, or an attribute ``obj._x`` where ``obj`` is not
    ``self``/``cls``/``super()`` and ``_x`` is not defined in the same module.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
ALLOW = Path(__file__).resolve().parent / "architecture_allow"

# Names that start with an underscore but are public API of the standard library.
PUBLIC_UNDERSCORE_NAMES = frozenset({"_asdict", "_replace", "_fields", "_make", "_field_defaults"})


def area_of(distribution: str) -> str:
    if distribution == "core":
        return "core"
    if distribution in ("server", "plugins-webrtc"):
        return "server"
    return "plugins"


@dataclass(frozen=True)
class Module:
    name: str  # dotted import name, e.g. "parley.session"
    path: Path
    distribution: str  # folder under packages/, e.g. "core"
    is_package: bool  # an __init__.py

    @property
    def display(self) -> str:
        return self.path.relative_to(PACKAGES / self.distribution / "src").as_posix()

    def tree(self) -> ast.Module:
        return ast.parse(self.path.read_text(encoding="utf-8"), filename=str(self.path))


def discover() -> dict[str, Module]:
    modules: dict[str, Module] = {}
    for src in sorted(PACKAGES.glob("*/src")):
        distribution = src.parent.name
        for path in sorted(src.rglob("*.py")):
            parts = list(path.relative_to(src).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            if is_package:
                parts.pop()
            name = ".".join(parts)
            modules[name] = Module(name, path, distribution, is_package)
    return modules


MODULES = discover()


def resolve_from(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module name that ``from <...> import`` names."""
    if not node.level:
        return node.module or ""
    package = module.name.split(".") if module.is_package else module.name.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports_of(module: Module, tree: ast.Module) -> Iterator[tuple[ast.stmt, str]]:
    """Every module named by an import anywhere in the file (``TYPE_CHECKING`` and local ones too).

    ``from m import x`` names ``m.x`` when that is a module, otherwise ``m``.
    """
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(module, node)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                yield node, submodule if submodule in MODULES else base


# ----------------------------------------------------------------------------- import cycles


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for module in MODULES.values():
        for _, target in imports_of(module, module.tree()):
            # `import a.b.c` where a.b.c is an attribute, not a module: the nearest module.
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if (
                target
                and target != module.name
                and MODULES[target].distribution == module.distribution
            ):
                graph[module.name].add(target)
    return graph


def shortest_path(graph: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    previous: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path: list[str] = []
            step: str | None = node
            while step is not None:
                path.append(step)
                step = previous[step]
            return path[::-1]
        for following in sorted(graph[node]):
            if following not in previous:
                previous[following] = node
                queue.append(following)
    return None


def cycle_edges(graph: dict[str, set[str]]) -> dict[tuple[str, str], list[str]]:
    """Each edge that lies on a cycle, with the shortest cycle through it."""
    found: dict[tuple[str, str], list[str]] = {}
    for source in sorted(graph):
        for target in sorted(graph[source]):
            back = shortest_path(graph, target, source)
            if back is not None:
                found[(source, target)] = [source, *back]
    return found


# ----------------------------------------------------------------------------- private reads


def is_private(name: str) -> bool:
    return name.startswith("_") and not name.endswith("__") and name not in PUBLIC_UNDERSCORE_NAMES


def defined_names(tree: ast.Module) -> set[str]:
    """Underscore names this module defines: functions, classes, assigned names, ``self._x``."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif (
            isinstance(node, ast.Attribute)
            and isinstance(node.ctx, ast.Store)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("self", "cls")
        ):
            names.add(node.attr)
        elif isinstance(node, ast.alias) and node.asname:
            names.add(node.asname)
    return {name for name in names if is_private(name)}


def is_own_object(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in ("self", "cls")
    return (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"
    )


TYPING_NAMES = frozenset(
    {"Any", "Optional", "Union", "Callable", "Awaitable", "Iterator", "AsyncIterator", "Literal"}
)


def annotated_classes(annotation: ast.expr | None) -> set[str]:
    """The capitalised names an annotation mentions (``"Session | None"`` gives Session)."""
    if annotation is None:
        return set()
    if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str):
        try:
            annotation = ast.parse(annotation.value, mode="eval").body
        except SyntaxError:
            return set()
    names = set()
    for node in ast.walk(annotation):
        name = node.id if isinstance(node, ast.Name) else getattr(node, "attr", None)
        if isinstance(name, str) and name[:1].isupper() and name not in TYPING_NAMES:
            names.add(name)
    return names


def parameter_types(function: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, set[str]]:
    arguments = function.args
    every = [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]
    return {arg.arg: annotated_classes(arg.annotation) for arg in every if arg.annotation}


def self_attribute(node: ast.expr) -> str | None:
    """``x`` for ``self.x``, else None."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.attr if node.value.id == "self" else None
    return None


def attribute_types(cls: ast.ClassDef) -> dict[str, set[str]]:
    """``self.x``'s declared classes: class-body ``x: T``, ``self.x: T = ...``, or
    ``self.x = param`` where the method's ``param`` is annotated."""
    types: dict[str, set[str]] = {}
    for statement in cls.body:
        if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            types[statement.target.id] = annotated_classes(statement.annotation)
    for method in cls.body:
        if not isinstance(method, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        parameters = parameter_types(method)
        for node in ast.walk(method):
            if isinstance(node, ast.AnnAssign) and (name := self_attribute(node.target)):
                types[name] = annotated_classes(node.annotation)
            elif (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and (name := self_attribute(node.targets[0]))
                and isinstance(node.value, ast.Name)
                and node.value.id in parameters
            ):
                types[name] = parameters[node.value.id]
    return types


class AttributeReads(ast.NodeVisitor):
    """``obj._x`` reads of another module's members.

    ``_x`` defined in this module counts as this module's, unless ``obj`` is declared (a
    parameter's annotation, or ``self.attr``'s) as a class this module does not define:
    ``connection._spawn`` stays flagged in a module that has a ``_spawn`` of its own.
    """

    def __init__(self, tree: ast.Module) -> None:
        self.own = defined_names(tree)
        self.classes = {node.name for node in ast.walk(tree) if isinstance(node, ast.ClassDef)}
        self.parameters: list[dict[str, set[str]]] = [{}]
        self.attributes: list[dict[str, set[str]]] = [{}]
        self.found: list[str] = []
        self.visit(tree)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.attributes.append(attribute_types(node))
        self.generic_visit(node)
        self.attributes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.parameters.append({**self.parameters[-1], **parameter_types(node)})
        self.generic_visit(node)
        self.parameters.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if (
            is_private(node.attr)
            and not is_own_object(node.value)
            and (node.attr not in self.own or self.declared_foreign(node.value))
        ):
            self.found.append(ast.unparse(node))
        self.generic_visit(node)

    def declared_foreign(self, value: ast.expr) -> bool:
        if isinstance(value, ast.Name):
            declared = self.parameters[-1].get(value.id, set())
        elif name := self_attribute(value):
            declared = self.attributes[-1].get(name, set())
        else:
            return False
        return bool(declared) and not declared & self.classes


def private_reads(module: Module, tree: ast.Module) -> Iterator[str]:

    def foreign_private_module(name: str) -> bool:
        """``name`` has a private part and belongs to another distribution (or none of ours)."""
        if not any(is_private(part) for part in name.split(".")):
            return False
        owner = MODULES.get(name)
        while owner is None and "." in name:
            name = name.rpartition(".")[0]
            owner = MODULES.get(name)
        return owner is None or owner.distribution != module.distribution

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if foreign_private_module(alias.name):
                    yield f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            base = resolve_from(module, node)
            if foreign_private_module(base):
                yield f"from {base} import {', '.join(a.name for a in node.names)}"
                continue
            for alias in node.names:
                if not is_private(alias.name):
                    continue
                submodule = f"{base}.{alias.name}"
                if submodule in MODULES:
                    if MODULES[submodule].distribution != module.distribution:
                        yield f"from {base} import {alias.name}"
                else:
                    yield f"from {base} import {alias.name}"
    yield from AttributeReads(tree).found


# ----------------------------------------------------------------------------- the tests


@cache
def violations() -> dict[str, dict[str, str]]:
    """Per area, each violation line with the detail shown when it is not allowed."""
    found: dict[str, dict[str, str]] = {"core": {}, "plugins": {}, "server": {}}
    for (source, target), chain in cycle_edges(import_graph()).items():
        line = f"cycle: {source} -> {target}"
        found[area_of(MODULES[source].distribution)][line] = "cycle " + " -> ".join(chain)
    for module in MODULES.values():
        for expr in private_reads(module, module.tree()):
            line = f"private: {module.display}: {expr}"
            found[area_of(module.distribution)][line] = line
    return found


def allowed(area: str) -> set[str]:
    path = ALLOW / f"{area}.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


AREAS = ("core", "plugins", "server")


def check(area: str, kind: str) -> None:
    found = violations()[area]
    current = {line: detail for line, detail in found.items() if line.startswith(kind)}
    allow = {line for line in allowed(area) if line.startswith(kind)}
    new = sorted(detail for line, detail in current.items() if line not in allow)
    stale = sorted(allow - current.keys())
    message = []
    if new:
        message.append(f"new {kind} violations (fix them; do not add them to {area}.txt):")
        message += [f"  {detail}" for detail in new]
    if stale:
        message.append(f"fixed, so delete these lines from tests/architecture_allow/{area}.txt:")
        message += [f"  {line}" for line in stale]
    if message:
        pytest.fail("\n".join(message), pytrace=False)


@pytest.mark.parametrize("area", AREAS)
def test_no_import_cycles(area: str) -> None:
    check(area, "cycle:")


@pytest.mark.parametrize("area", AREAS)
def test_no_reads_of_other_modules_private_members(area: str) -> None:
    check(area, "private:")


@pytest.mark.parametrize("area", AREAS)
def test_allowlists_hold_only_violation_lines(area: str) -> None:
    odd = [line for line in allowed(area) if not line.startswith(("cycle: ", "private: "))]
    assert not odd, f"tests/architecture_allow/{area}.txt: lines of no known kind: {odd}"


def test_rules_catch_known_violations() -> None:
    """The rules themselves: a cycle, a private import and a private attribute read are found."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from parley.session import _Hidden\n"
        "class Mine:\n"
        "    def __init__(self): self._mine = 1\n"
        "    def f(self, session, other):\n"
        "        session._report_error(1)\n"
        "        other._mine\n"
        "        self._theirs\n"
        "        super()._x\n"
        "        session.__dict__\n"
        "        t._replace(a=1)\n"
        "def g(connection: 'Connection', mine: Mine | None):\n"
        "    connection._mine\n"
        "    mine._mine\n"
    )
    fake = Module("parley.fake", PACKAGES / "core/src/parley/fake.py", "core", False)
    assert set(private_reads(fake, ast.parse(source))) == {
        "from parley.session import _Hidden",
        "session._report_error",
        "connection._mine",  # _mine is this module's name, but not Connection's
    }
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle_edges(graph) == {
        ("a", "b"): ["a", "b", "c", "a"],
        ("b", "c"): ["b", "c", "a", "b"],
        ("c", "a"): ["c", "a", "b", "c"],
    }
