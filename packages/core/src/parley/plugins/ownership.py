"""Who owns a part name: one plugin per (kind, name), or the user's choice among several.

Any installed distribution can register any name, so a clash is never settled by load order:
a (kind, name) claimed by two plugins (as a part or a preset) cannot be resolved until the user
picks its owner with ``PARLEY_PLUGINS_PREFER``::

    PARLEY_PLUGINS_PREFER="tts/echo=parley-echo, llm/openai=parley-openai"

Each choice is ``KIND/NAME=OWNER``, where OWNER is a distribution name (compared as pip does:
case, ``-``, ``_`` and ``.`` do not matter) or a plugin's entry point name. A choice also pins
a name that only one plugin provides: resolving it fails unless that plugin is the owner named.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from parley.plugins.errors import PreferenceError
from parley.plugins.spec import NAME_PATTERN

PREFER_ENV = "PARLEY_PLUGINS_PREFER"

_CHOICE = re.compile(rf"(?P<kind>[a-z]+)/(?P<name>{NAME_PATTERN})=(?P<owner>{NAME_PATTERN})")


def normalize(name: str) -> str:
    """A distribution or plugin name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Owner:
    """A plugin that registers parts: its entry point name and, when installed, its
    distribution. ``label`` is how messages name it."""

    plugin: str
    distribution: str | None = None
    version: str | None = None

    @property
    def label(self) -> str:
        if self.distribution is None:
            return f"plugin {self.plugin!r}"
        version = f" {self.version}" if self.version else ""
        return f"{self.distribution}{version} (plugin {self.plugin!r})"

    @property
    def choice(self) -> str:
        """What to write after ``=`` in ``PARLEY_PLUGINS_PREFER`` to choose this owner."""
        return self.distribution or self.plugin

    def matches(self, chosen: str) -> bool:
        wanted = normalize(chosen)
        return wanted == normalize(self.plugin) or (
            self.distribution is not None and wanted == normalize(self.distribution)
        )


@dataclass(frozen=True)
class Preferences:
    """The user's choice of owner for some (kind, name) pairs."""

    choices: Mapping[tuple[str, str], str] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: str | None, kinds: Iterable[str]) -> Preferences:
        """Parse ``KIND/NAME=OWNER`` items separated by commas or whitespace; raise
        `PreferenceError` saying which item is wrong."""
        known = tuple(kinds)
        choices: dict[tuple[str, str], str] = {}
        for item in re.split(r"[,\s]+", text or ""):
            if not item:
                continue
            match = _CHOICE.fullmatch(item)
            if match is None:
                raise PreferenceError(
                    f"{PREFER_ENV}: {item!r} is not KIND/NAME=OWNER, e.g. "
                    "'tts/echo=parley-echo' (OWNER is a distribution or plugin name)"
                )
            kind, name, owner = match["kind"], match["name"], match["owner"]
            if kind not in known:
                raise PreferenceError(
                    f"{PREFER_ENV}: {item!r} names the unknown kind {kind!r}; "
                    f"the kinds are: {', '.join(known)}"
                )
            previous = choices.get((kind, name))
            if previous is not None and normalize(previous) != normalize(owner):
                raise PreferenceError(
                    f"{PREFER_ENV} chooses both {previous!r} and {owner!r} for {kind}/{name}; "
                    "keep one"
                )
            choices[kind, name] = owner
        return cls(MappingProxyType(choices))

    def chosen(self, kind: str, name: str) -> str | None:
        return self.choices.get((kind, name))


def pick(kind: str, name: str, claimants: list[Owner], preferences: Preferences) -> Owner | str:
    """The owner of ``kind/name`` among the plugins that claim it, or why there is none.

    Returns the `Owner`, or a message (for `PartConflictError`) when several plugins claim the
    name and the user chose none of them, or chose one that does not provide it.
    """
    chosen = preferences.chosen(kind, name)
    if chosen is not None:
        matching = [owner for owner in claimants if owner.matches(chosen)]
        if len(matching) == 1:
            return matching[0]
        if not matching:
            return (
                f"{PREFER_ENV} chooses {chosen!r} for {kind}/{name}, but that is provided by "
                f"{_list(claimants)} only; install {chosen}, or change or remove the choice"
            )
        return (
            f"{PREFER_ENV} chooses {chosen!r} for {kind}/{name}, which matches "
            f"{_list(matching)}; choose one of them by plugin name instead "
            f"(e.g. {kind}/{name}={matching[0].plugin})"
        )
    if len(claimants) == 1:
        return claimants[0]
    example = ",".join(f"{kind}/{name}={owner.choice}" for owner in claimants[:1])
    return (
        f"{kind} {name!r} is provided by {len(claimants)} plugins: {_list(claimants)}. "
        f"Parley will not guess which one to use: uninstall the one you do not want, or "
        f"choose with {PREFER_ENV}={example} (see docs/plugins.md)"
    )


def _list(owners: list[Owner]) -> str:
    labels = [owner.label for owner in owners]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]
