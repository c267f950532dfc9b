"""Errors of the plugin system. Each message says what was wrong and what to do about it."""

from __future__ import annotations

# The plugins this project publishes, by plugin name (their distribution is ``parley-NAME``).
# Only these names ever get a ``pip install`` hint for a part or plugin that is not installed:
# a hint built from whatever the user typed (``parley-echoo``) would invite typosquatting.
# The plugins this project publishes, and the kinds of part each provides: install hints are
# given for these only (never an invented package name), and only for a kind it provides.
PUBLISHED: dict[str, frozenset[str]] = {
    name: frozenset(kinds.split())
    for name, kinds in {
        "anthropic": "llm",
        "deepgram": "stt tts",
        "elevenlabs": "tts",
        "gemini": "llm realtime",
        "llamacpp": "llm",
        "openai": "stt llm tts realtime",
        "piper": "tts",
        "redis": "store",
        "server": "",
        "silero": "vad",
        "twilio": "edge",
        "webrtc": "edge",
        "whisper": "stt",
    }.items()
}


class PluginError(Exception):
    """Base class for plugin-system errors."""


class RegistrationError(PluginError, ValueError):
    """A plugin registered something invalid (bad kind, name, target, preset, ...)."""


class UnknownPartError(PluginError, LookupError):
    """No installed plugin provides the requested part (or a preset chain loops)."""


class PartConflictError(PluginError, LookupError):
    """Two installed plugins claim the same part name and the user has not chosen one (or
    chose one that does not provide it). Not an `UnknownPartError`: a caller that falls back
    when a part is missing must not fall back past a name clash."""


class PreferenceError(PluginError, ValueError):
    """``PARLEY_PLUGINS_PREFER`` is malformed."""


class PartImportError(PluginError, ImportError):
    """A part's import target could not be imported, usually because a dependency is missing."""


class PluginImportError(PluginError, ImportError):
    """``from parley.plugins import NAME`` failed: NAME is not installed or cannot be used."""


class PartOptionsError(PluginError, TypeError):
    """A spec's options (or the caller's overrides) do not fit the part's factory."""


def package_for(name: str) -> str:
    """The distribution conventionally behind the *installed* plugin ``name`` (``parley-NAME``),
    for when its real distribution is unknown (a plugin registered in-process). Never use it
    for a name the user typed: see `install_hint`."""
    return f"parley-{name.replace('_', '-').lower()}"


def published_package(name: str, kind: str | None = None) -> str | None:
    """The distribution this project publishes for plugin ``name`` (providing a ``kind`` part,
    if given), or None."""
    key = name.replace("_", "-").lower()
    kinds = PUBLISHED.get(key)
    if kinds is None or (kind is not None and kind not in kinds):
        return None
    return f"parley-{key}"


def install_hint(name: str, kind: str | None = None) -> str | None:
    """``pip install parley-NAME`` when this project publishes a plugin ``name`` (with a
    ``kind`` part, if given), else None."""
    package = published_package(name, kind)
    return f"pip install {package}" if package else None
