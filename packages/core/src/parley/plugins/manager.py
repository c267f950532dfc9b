"""Discovery and the plugin manager: entry points in, registered plugins and parts out.

Each entry point in the ``parley`` group names a light module (or object) that declares
``PARLEY_API`` and implements hooks from `parley.plugins.hookspecs`. Discovery imports it,
checks the API version, registers it with pluggy and commits the parts its ``register_parts``
hook declares. A plugin that fails any step is recorded with its error and left out entirely.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import pluggy

from parley.plugins import capabilities, hookspecs, installed
from parley.plugins.aliases import forget_aliases
from parley.plugins.errors import (
    PartImportError,
    PartOptionsError,
    PluginError,
    PluginImportError,
    RegistrationError,
    UnknownPartError,
    install_hint,
    package_for,
)
from parley.plugins.installed import EntryPointLike, distribution_of
from parley.plugins.ownership import PREFER_ENV, Owner, Preferences
from parley.plugins.registry import (
    KINDS,
    PartInfo,
    PresetInfo,
    Registrar,
    Registry,
    check_kind,
    similar,
)
from parley.plugins.spec import Spec, is_valid_name, parse_spec

API_VERSION = 1
"""The plugin API major version this core speaks; an entry module must set ``PARLEY_API`` to it."""

ENTRY_POINT_GROUP = "parley"

Status = Literal["ok", "broken", "incompatible", "missing-deps"]

logger = logging.getLogger("parley.plugins")


@dataclass(frozen=True)
class PluginInfo:
    """What `parley plugins` shows for one plugin.

    ``status`` is ``ok``; ``missing-deps`` (loaded, but some part's required modules are not
    installed); ``incompatible`` (wrong or missing ``PARLEY_API``; skipped); or ``broken``
    (its entry module or hooks failed; skipped). ``deps_ok`` is None when it was skipped.
    ``conflicts`` says which of its part names another plugin claims too (those names cannot
    be resolved until the user chooses an owner, see `parley.plugins.ownership`).
    """

    name: str
    module: str
    distribution: str | None
    version: str | None
    status: Status
    error: str | None = None
    deps_ok: bool | None = None
    kinds: tuple[str, ...] = ()
    parts: tuple[PartInfo, ...] = ()
    presets: tuple[PresetInfo, ...] = ()
    warnings: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "status": self.status,
            "error": self.error,
            "deps_ok": self.deps_ok,
            "kinds": list(self.kinds),
            "parts": [part.to_dict() for part in self.parts],
            "presets": [preset.to_dict() for preset in self.presets],
            "warnings": list(self.warnings),
            "conflicts": list(self.conflicts),
        }


@dataclass
class _Record:
    """Discovery's bookkeeping for one plugin (one entry point or one in-process object)."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    plugin: object | None = None  # set only while the plugin is registered
    status: Literal["ok", "broken", "incompatible"] = "ok"
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


class ParleyPluginManager(pluggy.PluginManager):
    """A pluggy manager for project ``parley`` that also keeps the registry of parts.

    Registering a plugin (through discovery or `register`) runs its ``register_parts`` hook
    into a staging `Registrar`; if anything fails, the plugin is unregistered again, so no
    plugin is ever half-loaded.
    """

    def __init__(self, preferences: Preferences | None = None) -> None:
        super().__init__("parley")
        self.add_hookspecs(hookspecs)
        self.registry = Registry(preferences)
        self._records: list[_Record] = []
        self._hook_names = tuple(
            name for name in dir(hookspecs) if self.parse_hookspec_opts(hookspecs, name)
        )
        self._pending: set[Any] = set()  # tasks of async lifecycle hooks, kept alive

    # --- registration -------------------------------------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str | None:
        plugin_name = super().register(plugin, name)
        if plugin_name is None:
            return None
        try:
            self._reject_unknown_hooks(plugin, plugin_name)
            registrar = Registrar(plugin_name)
            for impl in self.hook.register_parts.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    _call_impl(impl, {"register": registrar})
        except BaseException:
            super().unregister(plugin=plugin, name=plugin_name)
            raise
        record = self._record(plugin_name)
        if record is not None and record.status != "ok":  # supersedes a skipped plugin
            self._records.remove(record)
            record = None
        if record is None:  # registered in-process rather than through an entry point
            module = getattr(plugin, "__name__", type(plugin).__qualname__)
            record = _Record(plugin_name, str(module))
            self._records.append(record)
        record.plugin = plugin
        self.registry.add(registrar, Owner(plugin_name, record.distribution, record.version))
        return plugin_name

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        if name is None and plugin is not None:
            name = self.get_name(plugin)
        plugin_name = name
        removed = super().unregister(plugin=plugin, name=name)
        if plugin_name is not None:
            self.registry.remove_plugin(plugin_name)
            self._records = [r for r in self._records if r.name != plugin_name]
        return removed

    def load_entry_point(self, entry_point: EntryPointLike) -> None:
        """Import, check and register the plugin behind one entry point; record any failure."""
        distribution, version = distribution_of(entry_point)
        record = _Record(entry_point.name, entry_point.value, distribution, version)
        self._records.append(record)
        taken = next((r for r in self._records if r.name == record.name and r is not record), None)
        if taken is not None:
            self._reject(record, "broken", f"the plugin name is already used by {_origin(taken)}")
            return
        if not is_valid_name(record.name):
            self._reject(record, "broken", "its entry point name is not a valid part name")
            return
        try:
            plugin = entry_point.load()
        except Exception as exc:
            self._reject(record, "broken", _import_failure(record, exc), exc)
            return
        problem = _api_problem(record, getattr(plugin, "PARLEY_API", None))
        if problem:
            self._reject(record, "incompatible", problem)
            return
        try:
            self.register(plugin, name=record.name)
        except Exception as exc:
            message = str(exc) if isinstance(exc, PluginError) else f"{type(exc).__name__}: {exc}"
            self._reject(record, "broken", f"registering it failed: {message}", exc)

    def _reject(
        self,
        record: _Record,
        status: Literal["broken", "incompatible"],
        error: str,
        exc: BaseException | None = None,
    ) -> None:
        record.status, record.error, record.plugin = status, error, None
        logger.warning(
            "Parley plugin %r (%s) is %s and was skipped: %s",
            record.name,
            _origin(record),
            status,
            error,
            exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
        )

    def _reject_unknown_hooks(self, plugin: object, name: str) -> None:
        for caller in self.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if any(i.plugin is plugin and not i.optionalhook for i in caller.get_hookimpls()):
                raise RegistrationError(
                    f"plugin {name!r} implements {caller.name!r}, which is not a Parley hook; "
                    f"the hooks are: {', '.join(self._hook_names)}"
                )

    def _record(self, name: str) -> _Record | None:
        return next((r for r in self._records if r.name == name), None)

    # --- queries ------------------------------------------------------------------------------

    def plugins(self, *, capabilities: bool = False) -> tuple[PluginInfo, ...]:
        """Every plugin found, including skipped ones, sorted by name.

        A part's listed capabilities are what it registered plus, when its module is already
        imported, the contract capabilities its class declares; with ``capabilities=True``
        each part whose dependencies are installed is imported to read them.
        """
        return tuple(
            self._info(r, capabilities) for r in sorted(self._records, key=lambda r: r.name)
        )

    def _info(self, record: _Record, read_classes: bool = False) -> PluginInfo:
        if record.status != "ok":
            return PluginInfo(
                name=record.name,
                module=record.module,
                distribution=record.distribution,
                version=record.version,
                status=record.status,
                error=record.error,
                warnings=tuple(record.warnings),
            )
        warnings = list(record.warnings)
        parts = tuple(
            _with_class_capabilities(part, record.distribution, read_classes, warnings)
            for part in self.registry.parts(plugin=record.name)
        )
        presets = self.registry.presets(plugin=record.name)
        missing = sorted({module for part in parts for module in part.missing})
        error = None
        if missing:
            package = record.distribution or package_for(record.name)
            error = (
                f"modules not installed: {', '.join(missing)}; "
                f"install the plugin's dependencies (pip install {package})"
            )
        used_kinds = {p.kind for p in parts} | {p.kind for p in presets}
        return PluginInfo(
            name=record.name,
            module=record.module,
            distribution=record.distribution,
            version=record.version,
            status="missing-deps" if missing else "ok",
            error=error,
            deps_ok=not missing,
            kinds=tuple(k for k in KINDS if k in used_kinds),
            parts=parts,
            presets=presets,
            warnings=tuple(warnings),
            conflicts=self.registry.conflicts(plugin=record.name),
        )

    def load_plugin(self, name: str) -> object:
        """The object behind entry point ``name`` (what ``from parley.plugins import NAME``
        returns), if it passed discovery."""
        record = self._record(name)
        if record is None:
            message = f"No Parley plugin named {name!r} is installed"
            close = similar(name, [r.name for r in self._records])
            hint = install_hint(name)
            if close:
                message += f"; did you mean {' or '.join(repr(c) for c in close)}?"
            elif hint:
                message += f"; install it with: {hint}"
            else:
                message += "; `parley plugins` lists the installed plugins"
            raise PluginImportError(message, name=f"parley.plugins.{name}")
        if record.plugin is None:
            raise PluginImportError(
                f"The Parley plugin {name!r} ({_origin(record)}) is installed but was skipped "
                f"because it is {record.status}: {record.error}",
                name=f"parley.plugins.{name}",
            )
        return record.plugin

    # --- building parts -----------------------------------------------------------------------

    def resolve(self, kind: str, spec_or_object: Any, /, **overrides: Any) -> Any:
        """Build the part a spec string (or `Spec`) names; return anything else unchanged.

        Presets are followed; the factory is called with the spec's options, ``model=`` when
        the spec has a model, and ``overrides`` on top.
        """
        check_kind(kind)
        if isinstance(spec_or_object, str):
            spec = parse_spec(spec_or_object)
        elif isinstance(spec_or_object, Spec):
            spec = spec_or_object
        else:
            return spec_or_object
        try:
            part, merged = self.registry.find(kind, spec)
        except UnknownPartError as exc:
            skipped = [f"{r.name} ({r.status}: {r.error})" for r in self._records if not r.plugin]
            if skipped:
                raise UnknownPartError(f"{exc}. Skipped plugins: {'; '.join(skipped)}") from None
            raise
        record = self._record(part.plugin)
        factory = part.load(record.distribution if record else None)
        kwargs: dict[str, Any] = dict(merged.options)
        if merged.model is not None:
            kwargs["model"] = merged.model
        kwargs.update(overrides)
        _check_arguments(part, factory, kwargs)
        return factory(**kwargs)

    # --- lifecycle hooks ----------------------------------------------------------------------

    def call_hook(self, name: str, /, **kwargs: Any) -> list[Any]:
        """Call hook ``name`` on every plugin and return the non-None results.

        A plugin whose implementation raises is logged and skipped; the others still run.
        An ``async def`` implementation is scheduled on the running loop.
        """
        caller = getattr(self.hook, name, None)
        if name not in self._hook_names or caller is None:
            raise ValueError(f"unknown Parley hook {name!r}; the hooks are: {self._hook_names}")
        expected = set(caller.spec.argnames) if caller.spec else set(kwargs)
        if set(kwargs) != expected:
            raise TypeError(f"hook {name!r} takes {sorted(expected)}, got {sorted(kwargs)}")
        results: list[Any] = []
        for impl in reversed(caller.get_hookimpls()):  # pluggy's call order
            if impl.wrapper or impl.hookwrapper:
                continue
            try:
                result = _call_impl(impl, kwargs)
            except Exception:
                logger.exception("Parley plugin %r failed in hook %s", impl.plugin_name, name)
                continue
            if inspect.isawaitable(result):
                self._schedule(result, impl.plugin_name, name)
            elif result is not None:
                results.append(result)
        return results

    def _schedule(self, awaitable: Any, plugin: str, hook: str) -> None:
        import asyncio

        try:
            task = asyncio.ensure_future(awaitable, loop=asyncio.get_running_loop())
        except RuntimeError:
            if inspect.iscoroutine(awaitable):
                awaitable.close()
            logger.error(
                "Parley plugin %r: its async %s hook was called outside an event loop; skipped",
                plugin,
                hook,
            )
            return

        def done(task: asyncio.Future[Any]) -> None:
            self._pending.discard(task)
            if not task.cancelled() and task.exception() is not None:
                logger.error(
                    "Parley plugin %r failed in hook %s",
                    plugin,
                    hook,
                    exc_info=task.exception(),
                )

        self._pending.add(task)
        task.add_done_callback(done)


def discover(
    entry_points: Iterable[EntryPointLike] | None = None,
    preferences: Preferences | None = None,
) -> ParleyPluginManager:
    """Build a manager from the installed ``parley`` entry points, or from ``entry_points``.

    ``preferences`` choose the owner of clashing part names; by default they are read from
    ``PARLEY_PLUGINS_PREFER`` (a malformed value raises `PreferenceError`).
    """
    if preferences is None:
        preferences = Preferences.parse(os.environ.get(PREFER_ENV), KINDS)
    found = installed.entry_points(ENTRY_POINT_GROUP) if entry_points is None else entry_points
    manager = ParleyPluginManager(preferences)
    for entry_point in sorted(found, key=lambda ep: ep.name):
        manager.load_entry_point(entry_point)
    for conflict in manager.registry.conflicts():
        logger.warning("Parley plugins: %s", conflict)
    return manager


class PluginManagerCache:
    """`plugin_manager()`: the process-wide manager, discovered on first use.

    ``plugin_manager.reload()`` discovers again (optionally from injected entry points);
    ``plugin_manager.reset()`` forgets it; ``with plugin_manager.isolated(entry_points)``
    swaps in a manager for a test and restores the previous one. Whenever the manager changes,
    the ``parley.plugins.NAME`` module aliases are dropped, so they always name its plugins.
    """

    def __init__(self) -> None:
        self._manager: ParleyPluginManager | None = None
        self._lock = threading.RLock()
        self._discovering = False

    def __call__(self) -> ParleyPluginManager:
        manager = self._manager
        if manager is not None and not self._discovering:
            return manager
        with self._lock:  # other threads wait here until discovery is done
            self._refuse_reentry()
            if self._manager is None:
                self._manager = self._discover(None)
            return self._manager

    def reload(self, entry_points: Iterable[EntryPointLike] | None = None) -> ParleyPluginManager:
        with self._lock:
            manager = self._discover(entry_points)
            self._swap(manager)
            return manager

    def reset(self) -> None:
        with self._lock:
            self._swap(None)

    @contextmanager
    def isolated(
        self, entry_points: Iterable[EntryPointLike] = ()
    ) -> Iterator[ParleyPluginManager]:
        with self._lock:
            previous = self._manager
            manager = self.reload(entry_points)
        try:
            yield manager
        finally:
            with self._lock:
                self._swap(previous)

    def _swap(self, manager: ParleyPluginManager | None) -> None:
        self._manager = manager
        forget_aliases()

    def _refuse_reentry(self) -> None:
        # Only the discovering thread itself can get here while discovery runs.
        if self._discovering:
            raise PluginError(
                "a plugin used the plugin manager while plugins were being loaded; entry "
                "modules must not resolve parts or import other plugins at import time"
            )

    def _discover(self, entry_points: Iterable[EntryPointLike] | None) -> ParleyPluginManager:
        self._refuse_reentry()
        self._discovering = True
        try:
            return discover(entry_points)
        finally:
            self._discovering = False


plugin_manager = PluginManagerCache()


def resolve(kind: str, spec_or_object: Any, /, **overrides: Any) -> Any:
    """Build the ``kind`` part a spec string names (``"openai/gpt-4o-mini"``); return a
    non-string unchanged. See `ParleyPluginManager.resolve`."""
    return plugin_manager().resolve(kind, spec_or_object, **overrides)


def call_hook(name: str, /, **kwargs: Any) -> list[Any]:
    """Call a hook on every plugin; a failing plugin is logged, never raised."""
    return plugin_manager().call_hook(name, **kwargs)


def list_plugins(*, capabilities: bool = False) -> tuple[PluginInfo, ...]:
    """What `parley plugins` shows; ``capabilities=True`` imports each part to read the
    contract capabilities its class declares."""
    return plugin_manager().plugins(capabilities=capabilities)


def list_parts(kind: str | None = None) -> tuple[PartInfo, ...]:
    if kind is not None:
        check_kind(kind)
    return plugin_manager().registry.parts(kind)


def load_plugin(name: str) -> object:
    return plugin_manager().load_plugin(name)


# --- helpers ----------------------------------------------------------------------------------


def _call_impl(impl: pluggy.HookImpl, kwargs: dict[str, Any]) -> Any:
    return impl.function(*(kwargs[arg] for arg in impl.argnames))


def _origin(record: _Record) -> str:
    if record.distribution:
        return f"{record.distribution} {record.version or ''}".strip()
    return record.module


def _import_failure(record: _Record, exc: Exception) -> str:
    module = record.module.partition(":")[0]
    if isinstance(exc, ModuleNotFoundError) and exc.name:
        if module == exc.name or module.startswith(exc.name + "."):
            return (
                f"its entry module {module!r} does not exist; reinstall "
                f"{record.distribution or 'the distribution that declares it'}"
            )
        return (
            f"importing {module!r} failed because module {exc.name!r} is not installed; "
            f"install the plugin's dependencies (pip install "
            f"{record.distribution or package_for(record.name)})"
        )
    return f"importing {record.module!r} raised {type(exc).__name__}: {exc}"


def _api_problem(record: _Record, api: object) -> str | None:
    if type(api) is int and api == API_VERSION:
        return None
    package = record.distribution or package_for(record.name)
    if api is None:
        return (
            f"{record.module!r} does not declare PARLEY_API; this parley-core speaks plugin "
            f"API {API_VERSION}, so a plugin must set PARLEY_API = {API_VERSION}"
        )
    return (
        f"it was built for plugin API {api!r} but this parley-core speaks API {API_VERSION}; "
        f"install a release of {package} made for this parley-core"
    )


def _with_class_capabilities(
    part: PartInfo, distribution: str | None, import_module: bool, warnings: list[str]
) -> PartInfo:
    """``part`` with the contract capabilities of its class put before the registered ones,
    when its module is imported (or ``import_module`` and its dependencies are installed)."""
    module = part.target.partition(":")[0]
    if module not in sys.modules and not (import_module and part.deps_ok):
        return part
    try:
        declared = capabilities.declared(part.kind, part.load(distribution))
    except PartImportError as exc:
        warnings.append(f"cannot read the capabilities of {part.kind}/{part.name}: {exc}")
        return part
    if declared is None:
        return part
    merged = MappingProxyType({**declared, **part.capabilities})
    return dataclasses.replace(part, capabilities=merged)


def _check_arguments(part: PartInfo, factory: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins and some C types have no signature
        return
    try:
        signature.bind(**kwargs)
    except TypeError as exc:
        accepted = [
            name
            for name, param in signature.parameters.items()
            if param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY)
        ]
        raise PartOptionsError(
            f"{part.kind} {part.name!r} ({part.target}) cannot be built with options "
            f"{sorted(kwargs)}: {exc}. It accepts: {', '.join(accepted) or 'no options'}"
        ) from None
