"""The registry of parts: what each plugin offers, by kind and name, with lazy import targets.

A plugin's ``register_parts`` hook receives a `Registrar` and calls it once per part. Nothing is
imported at registration: a part is a name, an import target (``"package.module:Factory"``),
its capabilities and the modules it needs. The target is imported when the part is built.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, NoReturn, TypeVar

from parley.plugins.capabilities import CONTRACT_CLASSES, contract_keys
from parley.plugins.errors import (
    PartConflictError,
    PartImportError,
    RegistrationError,
    UnknownPartError,
    install_hint,
    package_for,
)
from parley.plugins.ownership import Owner, Preferences, pick
from parley.plugins.spec import Spec, SpecError, is_valid_name, parse_spec

KINDS: tuple[str, ...] = ("stt", "llm", "tts", "realtime", "vad", "turn", "edge", "store")

_DOTTED = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_TARGET = re.compile(rf"({_DOTTED}):({_DOTTED})")


def check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown part kind {kind!r}; the kinds are: {', '.join(KINDS)}")


def module_available(name: str) -> bool:
    """Whether ``name`` can be imported, found without importing it (only parents of a dotted
    name are imported, as `importlib.util.find_spec` must)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@dataclass(frozen=True)
class PartInfo:
    """One part a plugin offers: ``kind`` and ``name`` (what a spec string names), the import
    ``target`` of its factory, its capabilities, and the modules it needs (``requires``)."""

    kind: str
    name: str
    target: str
    plugin: str
    capabilities: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    description: str = ""
    requires: tuple[str, ...] = ()

    @cached_property
    def missing(self) -> tuple[str, ...]:
        """The required modules that cannot be found (checked once, never imported)."""
        return tuple(name for name in self.requires if not module_available(name))

    @property
    def deps_ok(self) -> bool:
        return not self.missing

    def load(self, distribution: str | None = None) -> Callable[..., Any]:
        """Import and return the factory behind ``target``."""
        module_name, _, attr_path = self.target.partition(":")
        where = f"{self.kind} {self.name!r} (plugin {self.plugin!r}"
        where += f", distribution {distribution})" if distribution else ")"
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            missing = exc.name or module_name
            package = distribution or package_for(self.plugin)
            raise PartImportError(
                f"cannot build {where}: importing {module_name!r} failed because module "
                f"{missing!r} is not installed. Install the plugin with its dependencies "
                f"(`pip install {package}`) or the missing module itself",
                name=missing,
            ) from exc
        except Exception as exc:
            raise PartImportError(
                f"cannot build {where}: importing {module_name!r} raised "
                f"{type(exc).__name__}: {exc}",
                name=module_name,
            ) from exc
        for attr in attr_path.split("."):
            try:
                obj = getattr(obj, attr)
            except AttributeError as exc:
                raise PartImportError(
                    f"cannot build {where}: {self.target!r} does not exist "
                    f"({module_name!r} has no attribute {attr_path!r}); the plugin registered "
                    "a wrong target, report it to its authors",
                    name=module_name,
                ) from exc
        if not callable(obj):
            raise PartImportError(
                f"cannot build {where}: {self.target!r} is not callable", name=module_name
            )
        return obj  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "target": self.target,
            "description": self.description,
            "capabilities": dict(self.capabilities),
            "requires": list(self.requires),
            "missing": list(self.missing),
            "deps_ok": self.deps_ok,
        }


@dataclass(frozen=True)
class PresetInfo:
    """A name that stands for another spec of the same kind, e.g. stt ``"local"`` →
    ``"whisper"``."""

    kind: str
    name: str
    spec: Spec
    plugin: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "spec": str(self.spec)}


class Registrar:
    """The ``register`` argument of the ``register_parts`` hook, bound to one plugin.

    Registrations are staged here and reach the `Registry` only when the plugin's whole hook
    succeeded, so a plugin is never half-registered.
    """

    def __init__(self, plugin: str) -> None:
        self.plugin = plugin
        self.parts: list[PartInfo] = []
        self.presets: list[PresetInfo] = []

    def __call__(
        self,
        kind: str,
        name: str,
        target: str,
        *,
        capabilities: Mapping[str, Any] | None = None,
        description: str = "",
        requires: Sequence[str] = (),
    ) -> None:
        """Declare a part: ``kind`` (one of `KINDS`), the ``name`` spec strings use, and the
        ``target`` factory ``"package.module:Factory"`` called with the spec's options."""
        self._check_kind(kind)
        self._check_name(kind, name)
        if not isinstance(target, str) or not _TARGET.fullmatch(target):
            self._fail(
                f"the target of {kind} {name!r} must be an import path like "
                f"'package.module:Factory', got {target!r}"
            )
        caps = self._check_capabilities(kind, name, capabilities)
        self._check_description(kind, name, description)
        needed = self._check_requires(kind, name, requires)
        if any(p.kind == kind and p.name == name for p in self.parts):
            self._fail(f"{kind} {name!r} is registered twice")
        self.parts.append(
            PartInfo(kind, name, target, self.plugin, MappingProxyType(caps), description, needed)
        )

    def preset(self, name: str, kind: str, spec: str) -> None:
        """Make ``name`` stand for ``spec`` when resolving a part of ``kind``; presets may
        point at other presets (e.g. stt ``"local"`` → ``"whisper/small"``)."""
        self._check_kind(kind)
        self._check_name(kind, name)
        try:
            parsed = parse_spec(spec)
        except (SpecError, TypeError) as exc:
            self._fail(f"preset {kind} {name!r}: {exc}")
        if any(p.kind == kind and p.name == name for p in self.presets):
            self._fail(f"preset {kind} {name!r} is registered twice")
        self.presets.append(PresetInfo(kind, name, parsed, self.plugin))

    # --- validation ---------------------------------------------------------------------------

    def _fail(self, problem: str) -> NoReturn:
        raise RegistrationError(f"plugin {self.plugin!r}: {problem}")

    def _check_kind(self, kind: str) -> None:
        if kind not in KINDS:
            self._fail(f"unknown part kind {kind!r}; the kinds are: {', '.join(KINDS)}")

    def _check_name(self, kind: str, name: str) -> None:
        if not isinstance(name, str) or not is_valid_name(name):
            self._fail(
                f"invalid {kind} name {name!r}: use letters, digits, '_', '.', '-', "
                "starting with a letter or digit"
            )

    def _check_description(self, kind: str, name: str, description: object) -> None:
        if not isinstance(description, str):
            self._fail(f"the description of {kind} {name!r} must be a string")

    def _check_capabilities(self, kind: str, name: str, capabilities: object) -> dict[str, Any]:
        if capabilities is None:
            return {}
        if not isinstance(capabilities, Mapping):
            self._fail(
                f"the capabilities of {kind} {name!r} must be a dict, got "
                f"{type(capabilities).__name__}"
            )
        caps = dict(capabilities)
        repeated = contract_keys(kind, caps)
        if repeated:
            self._fail(
                f"{kind} {name!r} repeats contract capabilities in register(capabilities=...): "
                f"{', '.join(repeated)}. The engine reads them from the part's class "
                f"({CONTRACT_CLASSES[kind]}): declare them there only, and keep "
                "register(capabilities=...) for facts the contract has no field for"
            )
        try:
            json.dumps(caps)  # listed by `parley plugins --json`
        except (TypeError, ValueError) as exc:
            self._fail(f"the capabilities of {kind} {name!r} must be JSON-serializable: {exc}")
        return caps

    def _check_requires(self, kind: str, name: str, requires: Sequence[str]) -> tuple[str, ...]:
        if isinstance(requires, str) or not all(isinstance(r, str) for r in requires):
            self._fail(
                f"the requires of {kind} {name!r} must be a list of module names, e.g. "
                f"['numpy'], got {requires!r}"
            )
        for module in requires:
            if not re.fullmatch(_DOTTED, module):
                self._fail(f"{kind} {name!r} requires {module!r}, which is not a module name")
        return tuple(requires)


_C = TypeVar("_C", PartInfo, PresetInfo)  # a part or a preset, both claim a (kind, name)


class Registry:
    """Every registered part and preset, by (kind, name) and by the plugin that registered it.

    Several plugins may claim one (kind, name), as a part or a preset; a spec resolves only
    through its `owner`: the one plugin that claims it, or the one the user chose
    (`parley.plugins.ownership`). Load order never decides.
    """

    def __init__(self, preferences: Preferences | None = None) -> None:
        self.preferences = preferences if preferences is not None else Preferences()
        self._parts: dict[tuple[str, str], list[PartInfo]] = {}
        self._presets: dict[tuple[str, str], list[PresetInfo]] = {}
        self._owners: dict[str, Owner] = {}

    def add(self, registrar: Registrar, owner: Owner | None = None) -> None:
        """Commit a plugin's staged registrations; ``owner`` says which distribution it is."""
        self._owners[registrar.plugin] = owner if owner is not None else Owner(registrar.plugin)
        for part in registrar.parts:
            self._parts.setdefault((part.kind, part.name), []).append(part)
        for preset in registrar.presets:
            self._presets.setdefault((preset.kind, preset.name), []).append(preset)

    def remove_plugin(self, plugin: str) -> None:
        self._owners.pop(plugin, None)
        self._parts = _without(self._parts, plugin)
        self._presets = _without(self._presets, plugin)

    def parts(self, kind: str | None = None, plugin: str | None = None) -> tuple[PartInfo, ...]:
        """Every registered part (several per name when plugins clash), sorted by kind, name."""
        return _select(self._parts, kind, plugin)

    def presets(self, kind: str | None = None, plugin: str | None = None) -> tuple[PresetInfo, ...]:
        return _select(self._presets, kind, plugin)

    # --- ownership ----------------------------------------------------------------------------

    def claimants(self, kind: str, name: str) -> list[Owner]:
        """The plugins that register ``name`` for ``kind`` (part or preset), by plugin name."""
        key = (kind, name)
        plugins = [p.plugin for p in self._parts.get(key, ())]
        plugins += [p.plugin for p in self._presets.get(key, ())]
        return [self._owners.get(p) or Owner(p) for p in sorted(set(plugins))]

    def owner(self, kind: str, name: str) -> str | None:
        """The plugin a spec naming ``kind``/``name`` resolves through; None if no plugin claims
        it; `PartConflictError` if several do and the user chose none of them."""
        claimants = self.claimants(kind, name)
        if not claimants:
            return None
        found = pick(kind, name, claimants, self.preferences)
        if isinstance(found, str):
            raise PartConflictError(found)
        return found.plugin

    def conflicts(self, plugin: str | None = None) -> tuple[str, ...]:
        """Why each name that cannot be resolved because of a clash (or of a choice in
        ``PARLEY_PLUGINS_PREFER`` that does not fit) cannot, for names ``plugin`` claims."""
        messages: list[str] = []
        for kind, name in sorted(self._parts.keys() | self._presets.keys()):
            claimants = self.claimants(kind, name)
            if plugin is not None and all(c.plugin != plugin for c in claimants):
                continue
            found = pick(kind, name, claimants, self.preferences)
            if isinstance(found, str):
                messages.append(found)
        return tuple(messages)

    # --- resolving ----------------------------------------------------------------------------

    def find(self, kind: str, spec: Spec) -> tuple[PartInfo, Spec]:
        """Follow presets from ``spec`` to a part; return it with the fully merged spec.

        A preset may point at a part of its own name (``"openai"`` → ``"openai/gpt-4o-mini"``);
        a chain that comes back to a preset without reaching a part is a cycle.
        """
        check_kind(kind)
        current = spec
        followed: list[PresetInfo] = []
        while True:
            owner = self.owner(kind, current.name)
            preset = _owned(self._presets, kind, current.name, owner)
            if preset is not None and preset not in followed:
                followed.append(preset)
                current = current.merged_over(preset.spec)
                continue
            part = _owned(self._parts, kind, current.name, owner)
            if part is not None:
                return part, current
            if preset is not None:
                chain = " -> ".join([*(p.name for p in followed), current.name])
                raise UnknownPartError(
                    f"the {kind} presets form a cycle: {chain} "
                    f"(set by {', '.join(sorted({p.plugin for p in followed}))}); "
                    "fix or uninstall one of those plugins"
                )
            raise UnknownPartError(self._unknown_message(kind, current.name, followed))

    def _unknown_message(self, kind: str, name: str, followed: Iterable[PresetInfo]) -> str:
        parts = sorted({p.name for p in self.parts(kind)})
        presets = sorted({p.name for p in self.presets(kind)})
        via = [p.name for p in followed]
        message = f"no installed plugin provides the {kind} part {name!r}"
        if via:
            message += f" (reached through preset {' -> '.join(via)})"
        close = similar(name, [*parts, *presets])
        if close:
            message += f". Did you mean {' or '.join(repr(c) for c in close)}?"
        other_kinds = sorted(
            {p.kind for p in self.parts() if p.name == name}
            | {p.kind for p in self.presets() if p.name == name}
        )
        if other_kinds:
            message += f" ({name!r} is a {' and '.join(other_kinds)} part, not a {kind} part)"
        message += f"{'' if close else '.'} Available {kind} parts: {', '.join(parts) or 'none'}"
        if presets:
            message += f"; presets: {', '.join(presets)}"
        hint = None if other_kinds else install_hint(name, kind)  # installed: no hint
        if hint:
            return message + f". To add it, install its plugin: {hint}"
        return message + (
            ". If a third-party plugin provides it, install that plugin (`parley plugins` lists "
            "what is installed)"
        )


def similar(name: str, candidates: Iterable[str]) -> list[str]:
    """The candidates a user most likely meant by ``name`` (case and small typos ignored)."""
    by_lower = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.6)
    return [by_lower[c] for c in close if by_lower[c] != name]


def _owned(
    claims: dict[tuple[str, str], list[_C]], kind: str, name: str, owner: str | None
) -> _C | None:
    return next((c for c in claims.get((kind, name), ()) if c.plugin == owner), None)


def _without(
    claims: dict[tuple[str, str], list[_C]], plugin: str
) -> dict[tuple[str, str], list[_C]]:
    kept = {key: [c for c in found if c.plugin != plugin] for key, found in claims.items()}
    return {key: found for key, found in kept.items() if found}


def _select(
    claims: dict[tuple[str, str], list[_C]], kind: str | None, plugin: str | None
) -> tuple[_C, ...]:
    return tuple(
        claim
        for _, found in sorted(claims.items())
        for claim in found
        if (kind is None or claim.kind == kind) and (plugin is None or claim.plugin == plugin)
    )
