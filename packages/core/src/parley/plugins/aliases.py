"""``parley.plugins.NAME`` as a module: an import alias of the entry module behind plugin NAME.

``from parley.plugins.openai import OpenAIRealtime``, ``import parley.plugins.openai as o`` and
``from parley.plugins import openai`` all give the module (or object) the entry point named
``openai`` points at, the very object in ``sys.modules["parley_openai"]``, never a copy. A
finder on ``sys.meta_path`` maps the name when it is imported; nothing is looked up or imported
before that. Real submodules of `parley.plugins` (``spec``, ``registry``, ...) win over plugins
of the same name. A deeper name (``parley.plugins.openai.realtime``) is an alias of the real
submodule (``parley_openai.realtime``), so no module is ever imported twice under two names
(two copies would mean two distinct classes). A plugin that is not installed, or was skipped,
raises `parley.plugins.PluginImportError` (an ImportError) whose message names what to install.

The aliases follow the current plugin manager: `forget_aliases` drops them when the manager is
rediscovered, reset or swapped, so the next import asks the new one.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from importlib.abc import Loader

__all__ = ["PACKAGE", "PluginAliasFinder", "forget_aliases", "install_aliases"]

PACKAGE = "parley.plugins"
_PREFIX = PACKAGE + "."
_STAMPED = ("__spec__", "__name__", "__loader__", "__package__")
_MISSING = object()


# The finder and loaders follow the `importlib.abc` protocols without subclassing them: importing
# `importlib.abc` pulls in `importlib.resources` and `tempfile` (~0.8 MB) on the first session.


class PluginAliasFinder:
    """Finds ``parley.plugins.NAME`` (and names under it) for the plugin NAME.

    It sits first on ``sys.meta_path``: a deeper name must be caught before the path finder
    loads the plugin's files a second time under the alias. For ``parley.plugins.NAME`` it
    first asks the path finder whether `parley.plugins` has a real submodule NAME.
    """

    def __init__(self, load_plugin: Callable[[str], object]) -> None:
        self.load_plugin = load_plugin

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        parent_name, _, name = fullname.rpartition(".")
        if not name or name.startswith("_"):
            return None
        if parent_name == PACKAGE:
            if importlib.machinery.PathFinder.find_spec(fullname, path) is not None:
                return None  # a real submodule of parley.plugins
            return importlib.machinery.ModuleSpec(
                fullname, _loader(_PluginLoader(self.load_plugin, name))
            )
        parent = sys.modules.get(parent_name)
        real_parent = _real_name(parent_name, parent)
        if real_parent is None:
            return None
        real = f"{real_parent}.{name}"
        if importlib.util.find_spec(real) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, _loader(_SubmoduleLoader(real)))


class _AliasLoader:
    """Hands an existing object to the import system instead of executing a module.

    The import system stamps what it loads with the alias's ``__spec__`` (and, where missing,
    ``__name__``, ``__loader__``, ``__package__``); `exec_module` puts back what the object had,
    so the real module keeps its identity (relative imports, reloads) and an alias can be told
    from a real submodule later.
    """

    def __init__(self) -> None:
        self.saved: dict[str, object] = {}

    def adopt(self, obj: object) -> ModuleType:
        self.saved = {attr: getattr(obj, attr, _MISSING) for attr in _STAMPED}
        return obj  # type: ignore[return-value]  # an entry point may name any object

    def exec_module(self, module: ModuleType) -> None:
        for attr, value in self.saved.items():
            if getattr(module, attr, _MISSING) is value:
                continue
            try:
                if value is _MISSING:
                    delattr(module, attr)
                else:
                    setattr(module, attr, value)
            except (AttributeError, TypeError):
                pass  # an object that takes no attributes was not stamped either


class _PluginLoader(_AliasLoader):
    def __init__(self, load_plugin: Callable[[str], object], name: str) -> None:
        super().__init__()
        self.load_plugin = load_plugin
        self.name = name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.adopt(self.load_plugin(self.name))


class _SubmoduleLoader(_AliasLoader):
    def __init__(self, real: str) -> None:
        super().__init__()
        self.real = real

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return self.adopt(importlib.import_module(self.real))


def _loader(loader: _AliasLoader) -> Loader:
    return cast("Loader", loader)  # the protocol, not the class (see above)


def _real_name(alias: str, obj: object) -> str | None:
    """The name ``obj`` was really imported under, if ``sys.modules[alias]`` is an alias."""
    if not isinstance(obj, ModuleType):
        return None
    spec = getattr(obj, "__spec__", None)
    real = getattr(spec, "name", None) or getattr(obj, "__name__", None)
    return real if isinstance(real, str) and real != alias else None


def install_aliases(load_plugin: Callable[[str], object]) -> None:
    """Put the alias finder first on ``sys.meta_path`` (once); ``load_plugin(NAME)`` returns
    the plugin object or raises an ImportError that says what to install."""
    if not any(isinstance(finder, PluginAliasFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, PluginAliasFinder(load_plugin))


def forget_aliases() -> None:
    """Drop every alias from ``sys.modules`` and from the `parley.plugins` namespace."""
    package = sys.modules.get(PACKAGE)
    for key, value in list(sys.modules.items()):
        if not key.startswith(_PREFIX) or not _is_alias(key, value):
            continue
        del sys.modules[key]
        parent_name, _, name = key.rpartition(".")
        if parent_name == PACKAGE and package is not None and vars(package).get(name) is value:
            delattr(package, name)


def _is_alias(key: str, value: object) -> bool:
    if isinstance(value, ModuleType):
        return _real_name(key, value) is not None
    return True  # only an alias puts a non-module object under parley.plugins.*
