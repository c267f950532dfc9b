"""Errors of the plugin system. Each message says what was wrong and what to do about it."""

from __future__ import annotations


class PluginError(Exception):
    """Base class for plugin-system errors."""


class RegistrationError(PluginError, ValueError):
    """A plugin registered something invalid (bad kind, name, target, preset, ...)."""


class UnknownPartError(PluginError, LookupError):
    """No installed plugin provides the requested part (or a preset chain loops)."""


class PartImportError(PluginError, ImportError):
    """A part's import target could not be imported, usually because a dependency is missing."""


class PluginImportError(PluginError, ImportError):
    """``from parley.plugins import NAME`` failed: NAME is not installed or cannot be used."""


def package_for(name: str) -> str:
    """The distribution that conventionally provides the plugin ``name`` (``parley-NAME``)."""
    return f"parley-{name.replace('_', '-').lower()}"


def install_hint(name: str) -> str:
    """The pip command that installs the plugin conventionally named ``name``."""
    return f"pip install {package_for(name)}"


class PartOptionsError(PluginError, TypeError):
    """A spec's options (or the caller's overrides) do not fit the part's factory."""
