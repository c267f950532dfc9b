"""Parley's plugin system: pluggy hooks, entry-point discovery and a registry of parts.

A plugin is a distribution with an entry point in the ``parley`` group, e.g.
``[project.entry-points.parley] openai = "parley_openai"``. The entry module sets
``PARLEY_API = 1`` and implements hooks from `parley.plugins.hookspecs`; its
``register_parts`` hook declares parts by import target, so nothing heavy is imported until a
part is built::

    from parley.plugins import hookimpl

    PARLEY_API = 1

    @hookimpl
    def register_parts(register):
        register("tts", "hello", "parley_hello.tts:HelloTTS", capabilities={"streaming": True})

The engine builds parts from spec strings with `resolve` (``resolve("llm", "openai/gpt-4o")``)
and tells plugins about sessions with `call_hook`. ``from parley.plugins import openai``
returns the module behind the entry point named ``openai``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from parley.plugins.errors import (
    PartImportError,
    PartOptionsError,
    PluginError,
    PluginImportError,
    RegistrationError,
    UnknownPartError,
)
from parley.plugins.hookspecs import hookimpl, hookspec
from parley.plugins.manager import (
    API_VERSION,
    ENTRY_POINT_GROUP,
    ParleyPluginManager,
    PluginInfo,
    call_hook,
    discover,
    list_parts,
    list_plugins,
    load_plugin,
    plugin_manager,
    resolve,
)
from parley.plugins.registry import KINDS, PartInfo, PresetInfo, Registrar
from parley.plugins.spec import Spec, SpecError, parse_spec

__all__ = [
    "API_VERSION",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "ParleyPluginManager",
    "PartImportError",
    "PartInfo",
    "PartOptionsError",
    "PluginError",
    "PluginImportError",
    "PluginInfo",
    "PresetInfo",
    "Registrar",
    "RegistrationError",
    "Spec",
    "SpecError",
    "UnknownPartError",
    "call_hook",
    "discover",
    "hookimpl",
    "hookspec",
    "list_parts",
    "list_plugins",
    "load_plugin",
    "parse_spec",
    "plugin_manager",
    "resolve",
]


def __getattr__(name: str) -> Any:
    """``from parley.plugins import NAME``: the plugin behind entry point NAME.

    Submodules of this package (``spec``, ``registry``, ...) take precedence over plugins.
    """
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    return load_plugin(name)
