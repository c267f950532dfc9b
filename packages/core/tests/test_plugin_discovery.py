"""Entry-point discovery and its failure modes, `from parley.plugins import NAME`, lifecycle hooks.

Each test installs throwaway plugins: a module in ``tmp_path`` plus a ``.dist-info`` directory
whose entry points are injected into discovery (never into the real environment).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from importlib.metadata import Distribution, EntryPoint
from pathlib import Path
from types import SimpleNamespace

import parley.plugins
import pytest
from parley.plugins import (
    PartImportError,
    PluginImportError,
    UnknownPartError,
    call_hook,
    list_parts,
    list_plugins,
    plugin_manager,
    resolve,
)

Install = Callable[..., EntryPoint]

GOOD = """
    from parley.plugins import hookimpl

    PARLEY_API = 1
    calls = []

    @hookimpl
    def register_parts(register):
        register("tts", "{name}", "types:SimpleNamespace", capabilities={{"offline": True}},
                 requires={requires!r})

    @hookimpl
    def session_started(session):
        calls.append(("started", session))
"""


@pytest.fixture
def install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Install]:
    """Write a plugin module and a distribution declaring it; return its entry point."""
    modules_dir, dists_dir = tmp_path / "modules", tmp_path / "dists"
    modules_dir.mkdir()
    dists_dir.mkdir()
    monkeypatch.syspath_prepend(str(modules_dir))
    created: list[str] = []

    def install(
        source: str = GOOD,
        *,
        name: str = "demo",
        requires: tuple[str, ...] = (),
        value: str | None = None,
        version: str = "1.0",
    ) -> EntryPoint:
        module = f"plugin_{uuid.uuid4().hex}"
        code = textwrap.dedent(source).format(name=name, requires=list(requires))
        (modules_dir / f"{module}.py").write_text(code)
        dist_info = dists_dir / f"{module}-{version}.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: parley-{name}\nVersion: {version}\n"
        )
        (dist_info / "entry_points.txt").write_text(f"[parley]\n{name} = {value or module}\n")
        importlib.invalidate_caches()
        created.append(module)
        (entry_point,) = Distribution.at(dist_info).entry_points.select(group="parley")
        return entry_point

    yield install
    for module in created:
        sys.modules.pop(module, None)


@pytest.fixture(autouse=True)
def _restore_plugin_manager() -> Iterator[None]:
    with plugin_manager.isolated():
        yield


def _info(name: str) -> parley.plugins.PluginInfo:
    return next(info for info in list_plugins() if info.name == name)


# --- the happy path ----------------------------------------------------------------------------


def test_installed_plugin_is_discovered_listed_and_resolvable(install: Install) -> None:
    entry_point = install()
    plugin_manager.reload([entry_point])

    info = _info("demo")
    assert info.status == "ok"
    assert info.deps_ok is True
    assert (info.distribution, info.version, info.module) == (
        "parley-demo",
        "1.0",
        entry_point.value,
    )
    assert info.kinds == ("tts",)
    assert [(p.kind, p.name, dict(p.capabilities)) for p in info.parts] == [
        ("tts", "demo", {"offline": True})
    ]
    assert [p.name for p in list_parts("tts")] == ["demo"]
    assert list_parts("stt") == ()
    assert resolve("tts", "demo?speed=2") == SimpleNamespace(speed=2)


def test_from_parley_plugins_import_loads_the_entry_module(install: Install) -> None:
    entry_point = install()
    plugin_manager.reload([entry_point])
    from parley.plugins import demo

    assert demo is sys.modules[entry_point.value]
    assert demo.PARLEY_API == 1


def test_from_parley_plugins_import_missing_names_the_package() -> None:
    plugin_manager.reload([])
    with pytest.raises(ImportError) as info:
        from parley.plugins import missing  # noqa: F401
    assert str(info.value) == (
        "No Parley plugin named 'missing' is installed; "
        "`parley plugins` lists the installed plugins"
    )


def test_submodules_take_precedence_over_plugins() -> None:
    plugin_manager.reload([])
    from parley.plugins import spec

    assert spec is sys.modules["parley.plugins.spec"]
    with pytest.raises(AttributeError):
        parley.plugins._private  # noqa: B018


# --- failure modes -----------------------------------------------------------------------------


def test_entry_module_that_raises_is_broken_and_skipped(install: Install) -> None:
    healthy = install(name="healthy")
    broken = install("PARLEY_API = 1\nraise RuntimeError('boom at import')\n", name="demo")
    plugin_manager.reload([broken, healthy])

    info = _info("demo")
    assert info.status == "broken"
    assert info.error is not None
    assert "RuntimeError: boom at import" in info.error
    assert info.deps_ok is None
    assert info.parts == ()
    assert _info("healthy").status == "ok"  # one bad plugin does not take the others down
    with pytest.raises(PluginImportError, match="installed but was skipped because it is broken"):
        from parley.plugins import demo  # noqa: F401


def test_entry_module_with_a_missing_import_names_it(install: Install) -> None:
    entry_point = install("import surely_missing_sdk_93b\nPARLEY_API = 1\n")
    plugin_manager.reload([entry_point])
    info = _info("demo")
    assert info.status == "broken"
    assert info.error is not None
    assert "module 'surely_missing_sdk_93b' is not installed" in info.error
    assert "pip install parley-demo" in info.error


def test_entry_point_to_a_module_that_does_not_exist(install: Install) -> None:
    entry_point = install(value="no_such_entry_module_5d1")
    plugin_manager.reload([entry_point])
    info = _info("demo")
    assert info.status == "broken"
    assert info.error == (
        "its entry module 'no_such_entry_module_5d1' does not exist; reinstall parley-demo"
    )


def test_part_with_a_missing_dependency(install: Install) -> None:
    source = GOOD.replace("types:SimpleNamespace", "surely_missing_sdk_c2e.tts:TTS")
    entry_point = install(source, requires=("surely_missing_sdk_c2e", "json"))
    plugin_manager.reload([entry_point])

    info = _info("demo")
    assert info.status == "missing-deps"
    assert info.deps_ok is False
    assert info.parts[0].missing == ("surely_missing_sdk_c2e",)
    assert info.error is not None
    assert "surely_missing_sdk_c2e" in info.error
    with pytest.raises(PartImportError) as error:
        resolve("tts", "demo")
    assert "module 'surely_missing_sdk_c2e' is not installed" in str(error.value)
    assert "distribution parley-demo" in str(error.value)


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ("", "does not declare PARLEY_API; this parley-core speaks plugin API 1"),
        ("PARLEY_API = 2", "built for plugin API 2 but this parley-core speaks API 1"),
        ("PARLEY_API = '1'", "built for plugin API '1'"),
        ("PARLEY_API = True", "built for plugin API True"),
    ],
)
def test_wrong_or_missing_api_version_is_incompatible_and_never_half_loaded(
    install: Install, declaration: str, problem: str
) -> None:
    source = GOOD.replace("PARLEY_API = 1", declaration)
    entry_point = install(source)
    plugin_manager.reload([entry_point])

    info = _info("demo")
    assert info.status == "incompatible"
    assert info.error is not None
    assert problem in info.error
    assert info.parts == ()
    assert list_parts() == ()
    manager = plugin_manager()
    assert manager.get_plugin("demo") is None  # never registered with pluggy
    call_hook("session_started", session="s1")
    assert sys.modules[entry_point.value].calls == []  # so its hooks never run
    with pytest.raises(UnknownPartError):
        resolve("tts", "demo")


def test_registration_failure_midway_leaves_nothing_behind(install: Install) -> None:
    source = GOOD.replace(
        'register("tts"',
        'register("stt", "early", "types:SimpleNamespace")\n        register("ttz"',
    )
    entry_point = install(source)
    plugin_manager.reload([entry_point])

    info = _info("demo")
    assert info.status == "broken"
    assert info.error is not None
    assert "registering it failed: plugin 'demo': unknown part kind 'ttz'" in info.error
    assert list_parts() == ()  # not even the part registered before the error
    call_hook("session_started", session="s1")
    assert sys.modules[entry_point.value].calls == []


@pytest.mark.parametrize(
    ("bad_hook", "problem"),
    [
        ("def register_part(register):\n    pass", "implements 'register_part', which is not"),
        ("def register_parts(registrar):\n    pass", "registrar"),
    ],
)
def test_hooks_that_do_not_match_the_specs_are_rejected(
    install: Install, bad_hook: str, problem: str
) -> None:
    source = f"from parley.plugins import hookimpl\nPARLEY_API = 1\n@hookimpl\n{bad_hook}\n"
    plugin_manager.reload([install(source)])
    info = _info("demo")
    assert info.status == "broken"
    assert info.error is not None
    assert problem in info.error


def test_two_distributions_with_one_plugin_name(install: Install) -> None:
    first, second = install(version="1.0"), install(version="2.0")
    plugin_manager.reload([first, second])
    statuses = sorted((info.version, info.status) for info in list_plugins())
    assert statuses == [("1.0", "ok"), ("2.0", "broken")]
    clash = next(info for info in list_plugins() if info.status == "broken")
    assert clash.error == "the plugin name is already used by parley-demo 1.0"


def test_entry_module_may_not_use_the_manager_while_loading(install: Install) -> None:
    source = "from parley.plugins import other\nPARLEY_API = 1\n"
    plugin_manager.reload([install(source)])
    info = _info("demo")
    assert info.status == "broken"
    assert info.error is not None
    assert "entry modules must not resolve parts or import other plugins at import time" in (
        info.error
    )


# --- the cache ---------------------------------------------------------------------------------


def test_plugin_manager_is_cached_until_reset() -> None:
    first = plugin_manager()
    assert plugin_manager() is first
    plugin_manager.reset()
    assert plugin_manager() is not first


def test_isolated_restores_the_previous_manager(install: Install) -> None:
    outer = plugin_manager.reload([])
    with plugin_manager.isolated([install()]) as inner:
        assert plugin_manager() is inner
        assert [p.name for p in list_parts()] == ["demo"]
    assert plugin_manager() is outer


# --- lifecycle hooks ---------------------------------------------------------------------------

RECORDER = """
    from parley.plugins import hookimpl
    PARLEY_API = 1
    calls = []

    @hookimpl
    def session_started(session):
        calls.append(("started", session))

    @hookimpl
    def turn_completed(session, metrics):
        calls.append(("turn", session, metrics))
        return "seen"
"""

FAILING = """
    from parley.plugins import hookimpl
    PARLEY_API = 1

    @hookimpl
    def session_started(session):
        raise RuntimeError("observer crashed")

    @hookimpl
    def turn_completed(session):
        raise KeyError("no metrics")
"""


def test_a_failing_hook_is_logged_and_does_not_stop_the_others(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    # Registered in name order, the failing plugin sits between two recorders, so whatever
    # the call order, one recorder runs after the failure.
    alpha, omega = install(RECORDER, name="alpha"), install(RECORDER, name="omega")
    plugin_manager.reload([alpha, install(FAILING, name="middle"), omega])

    with caplog.at_level(logging.ERROR, logger="parley.plugins"):
        assert call_hook("session_started", session="s1") == []
        assert call_hook("turn_completed", session="s1", metrics={"ttfa": 0.3}) == [
            "seen",
            "seen",
        ]

    for recorder in (alpha, omega):
        assert sys.modules[recorder.value].calls == [
            ("started", "s1"),
            ("turn", "s1", {"ttfa": 0.3}),
        ]
    failures = [r for r in caplog.records if "'middle' failed in hook" in r.getMessage()]
    assert [r.getMessage().rsplit(" ", 1)[-1] for r in failures] == [
        "session_started",
        "turn_completed",
    ]
    assert all(r.exc_info is not None for r in failures)


def test_call_hook_rejects_unknown_hooks_and_wrong_arguments() -> None:
    plugin_manager.reload([])
    with pytest.raises(ValueError, match="unknown Parley hook 'session_begun'"):
        call_hook("session_begun", session=1)
    with pytest.raises(TypeError, match=r"takes \['metrics', 'session'\]"):
        call_hook("turn_completed", session=1)


ASYNC = """
    from parley.plugins import hookimpl
    PARLEY_API = 1
    calls = []

    @hookimpl
    async def session_ended(session):
        if session == "bad":
            raise RuntimeError("async observer crashed")
        calls.append(session)
"""


async def test_async_hook_runs_on_the_loop_and_its_failure_is_logged(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    entry_point = install(ASYNC)
    plugin_manager.reload([entry_point])
    with caplog.at_level(logging.ERROR, logger="parley.plugins"):
        call_hook("session_ended", session="good")
        call_hook("session_ended", session="bad")
        for _ in range(3):
            await asyncio.sleep(0)
    assert sys.modules[entry_point.value].calls == ["good"]
    assert any("'demo' failed in hook session_ended" in r.getMessage() for r in caplog.records)


def test_async_hook_outside_a_loop_is_reported_not_leaked(
    install: Install, caplog: pytest.LogCaptureFixture
) -> None:
    entry_point = install(ASYNC)
    plugin_manager.reload([entry_point])
    with caplog.at_level(logging.ERROR, logger="parley.plugins"):
        call_hook("session_ended", session="good")
    assert sys.modules[entry_point.value].calls == []
    assert any("called outside an event loop" in r.getMessage() for r in caplog.records)
