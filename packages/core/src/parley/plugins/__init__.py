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
        register("tts", "hello", "parley_hello.tts:HelloTTS", capabilities={"offline": True})

The engine builds parts from spec strings with `resolve` (``resolve("llm", "openai/gpt-4o")``)
and tells plugins about sessions with `call_hook`. ``parley.plugins.openai`` is the module
behind the entry point named ``openai``, imported when first named (`parley.plugins.aliases`)::

    from parley.plugins import openai
    from parley.plugins.openai import OpenAIRealtime
"""

from __future__ import annotations

import importlib
from typing import Any

from parley.plugins.aliases import install_aliases
from parley.plugins.errors import (
    PartConflictError,
    PartImportError,
    PartOptionsError,
    PluginError,
    PluginImportError,
    PreferenceError,
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
    "PartConflictError",
    "PartImportError",
    "PartInfo",
    "PartOptionsError",
    "PluginError",
    "PluginImportError",
    "PluginInfo",
    "PreferenceError",
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


install_aliases(load_plugin)


def __getattr__(name: str) -> Any:
    """``parley.plugins.NAME``: the submodule NAME, else the plugin behind entry point NAME.

    Submodules of this package (``spec``, ``registry``, ...) take precedence over plugins. A
    plugin that is not installed raises `PluginImportError` naming the package to install.
    """
    if name.startswith("_") or "." in name:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return importlib.import_module(f"{__name__}.{name}")
