"""The registrar's validation, presets (chains, cycles) and building parts with `resolve`."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from parley.plugins import (
    KINDS,
    ParleyPluginManager,
    PartConflictError,
    PartImportError,
    PartOptionsError,
    Registrar,
    RegistrationError,
    UnknownPartError,
    hookimpl,
)

Declare = Callable[[Registrar], None]


class _Plugin:
    """An in-process plugin whose register_parts hook runs ``declare``."""

    PARLEY_API = 1

    def __init__(self, declare: Declare) -> None:
        self._declare = declare

    @hookimpl
    def register_parts(self, register: Registrar) -> None:
        self._declare(register)


def _manager(**plugins: Declare) -> ParleyPluginManager:
    manager = ParleyPluginManager()
    for name, declare in plugins.items():
        manager.register(_Plugin(declare), name=name)
    return manager


# --- the registrar -----------------------------------------------------------------------------


def test_registered_part_is_listed_with_its_details() -> None:
    def declare(register: Registrar) -> None:
        register(
            "tts",
            "echo",
            "types:SimpleNamespace",
            capabilities={"offline": True, "voices": ["amy", "bob"]},
            description="Echoes",
            requires=["json"],
        )

    manager = _manager(demo=declare)
    (part,) = manager.registry.parts("tts")
    assert (part.kind, part.name, part.target, part.plugin) == (
        "tts",
        "echo",
        "types:SimpleNamespace",
        "demo",
    )
    assert dict(part.capabilities) == {"offline": True, "voices": ["amy", "bob"]}
    assert part.description == "Echoes"
    assert part.requires == ("json",)
    assert part.deps_ok
    (info,) = manager.plugins()
    assert (info.name, info.status, info.kinds, info.deps_ok) == ("demo", "ok", ("tts",), True)


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (lambda r: r("speech", "x", "m:F"), "unknown part kind 'speech'; the kinds are: stt, llm"),
        (lambda r: r("stt", "bad name", "m:F"), "invalid stt name 'bad name'"),
        (lambda r: r("stt", "", "m:F"), "invalid stt name ''"),
        (lambda r: r("stt", "x", "module.without.attr"), "must be an import path"),
        (lambda r: r("stt", "x", "m:F()"), "must be an import path"),
        (lambda r: r("stt", "x", object), "must be an import path"),
        (lambda r: r("stt", "x", "m:F", capabilities=["streaming"]), "must be a dict, got list"),
        (lambda r: r("stt", "x", "m:F", capabilities={"f": object()}), "JSON-serializable"),
        (lambda r: r("stt", "x", "m:F", description=3), "description of stt 'x' must be a string"),
        (lambda r: r("stt", "x", "m:F", requires="numpy"), "must be a list of module names"),
        (lambda r: r("stt", "x", "m:F", requires=["not a module"]), "not a module name"),
        (lambda r: (r("stt", "x", "m:F"), r("stt", "x", "m:G")), "stt 'x' is registered twice"),
        (
            lambda r: r.preset("local", "stt", "whisper?bad"),
            "preset stt 'local': invalid part spec",
        ),
        (lambda r: r.preset("local", "sst", "whisper"), "unknown part kind 'sst'"),
        (lambda r: r.preset("lo cal", "stt", "whisper"), "invalid stt name 'lo cal'"),
    ],
)
def test_registrar_rejects_bad_registrations(call: Declare, problem: str) -> None:
    with pytest.raises(RegistrationError) as info:
        call(Registrar("acme"))
    assert str(info.value).startswith("plugin 'acme': ")  # names the guilty plugin
    assert problem in str(info.value)


def test_every_kind_is_accepted() -> None:
    register = Registrar("acme")
    for kind in KINDS:
        register(kind, "x", "m:F")
    assert sorted(p.kind for p in register.parts) == sorted(KINDS)


def test_failing_registration_leaves_no_trace() -> None:
    def declare(register: Registrar) -> None:
        register("stt", "good", "types:SimpleNamespace")
        register("nope", "bad", "types:SimpleNamespace")

    manager = ParleyPluginManager()
    plugin = _Plugin(declare)
    with pytest.raises(RegistrationError, match="unknown part kind 'nope'"):
        manager.register(plugin, name="half")
    assert manager.registry.parts() == ()
    assert not manager.is_registered(plugin)
    assert manager.plugins() == ()


def test_a_name_two_plugins_register_is_listed_for_both_and_resolves_for_neither() -> None:
    def second(register: Registrar) -> None:
        register("stt", "dup", "collections:OrderedDict")
        register("stt", "own", "types:SimpleNamespace")

    manager = _manager(first=lambda r: r("stt", "dup", "types:SimpleNamespace"), second=second)
    assert [p.plugin for p in manager.registry.parts("stt") if p.name == "dup"] == [
        "first",
        "second",
    ]
    info = next(i for i in manager.plugins() if i.name == "second")
    assert [p.name for p in info.parts] == ["dup", "own"]
    (conflict,) = info.conflicts
    assert "stt 'dup' is provided by 2 plugins: plugin 'first' and plugin 'second'" in conflict
    assert next(i for i in manager.plugins() if i.name == "first").conflicts == (conflict,)
    with pytest.raises(PartConflictError, match="stt 'dup' is provided by 2 plugins"):
        manager.resolve("stt", "dup")
    assert manager.resolve("stt", "own") == SimpleNamespace()  # the rest is unaffected


def test_requires_are_checked_without_importing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "explodes_on_import.py").write_text("raise RuntimeError('imported!')\n")
    monkeypatch.syspath_prepend(str(tmp_path))

    manager = _manager(
        demo=lambda r: r(
            "vad", "v", "m:F", requires=["explodes_on_import", "surely_missing_mod_7f3a"]
        )
    )
    (part,) = manager.registry.parts("vad")
    assert part.missing == ("surely_missing_mod_7f3a",)
    assert "explodes_on_import" not in sys.modules
    (info,) = manager.plugins()
    assert info.status == "missing-deps"
    assert info.deps_ok is False
    assert info.error is not None
    assert "surely_missing_mod_7f3a" in info.error
    assert "pip install parley-demo" in info.error  # installed: its distribution is known


def test_unregister_removes_parts() -> None:
    manager = _manager(demo=lambda r: r("stt", "x", "types:SimpleNamespace"))
    manager.unregister(name="demo")
    assert manager.registry.parts() == ()
    assert manager.plugins() == ()


# --- resolve -----------------------------------------------------------------------------------


def _parts(register: Registrar) -> None:
    register("llm", "ns", "types:SimpleNamespace")
    register("llm", "wrap", "textwrap:TextWrapper")
    register("llm", "ghost", "surely_missing_pkg_41c.sub:LLM")
    register("llm", "typo", "textwrap:NoSuchThing")
    register("tts", "ns", "types:SimpleNamespace")


def test_resolve_builds_from_a_spec_string() -> None:
    manager = _manager(demo=_parts)
    built = manager.resolve("llm", "ns/gpt-x?temperature=0.5&stream=true")
    assert built == SimpleNamespace(model="gpt-x", temperature=0.5, stream=True)
    wrapper = manager.resolve("llm", "wrap?width=12")
    assert isinstance(wrapper, textwrap.TextWrapper)
    assert wrapper.width == 12


def test_resolve_overrides_win_over_spec_options() -> None:
    manager = _manager(demo=_parts)
    built = manager.resolve("llm", "ns/a?x=1&y=2", x=10, model="b")
    assert built == SimpleNamespace(model="b", x=10, y=2)


def test_resolve_returns_objects_unchanged() -> None:
    manager = _manager(demo=_parts)
    part = object()
    assert manager.resolve("llm", part) is part
    assert manager.resolve("stt", None) is None


def test_resolve_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown part kind 'speech'"):
        _manager(demo=_parts).resolve("speech", "ns")


def test_unknown_name_lists_what_is_available_and_what_to_install() -> None:
    manager = _manager(demo=_parts, presets=lambda r: r.preset("default", "llm", "ns/m"))
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("llm", "anthropic?model=claude")
    message = str(info.value)
    assert "'anthropic'" in message
    assert "Available llm parts: ghost, ns, typo, wrap; presets: default" in message
    assert "pip install parley-anthropic" in message
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("llm", "deepgram?model=nova-3")  # ours, but it has no LLM
    assert "pip install" not in str(info.value)


def test_unknown_name_for_a_kind_without_parts() -> None:
    with pytest.raises(UnknownPartError, match="Available edge parts: none"):
        _manager(demo=_parts).resolve("edge", "webrtc")


def test_bad_options_name_the_accepted_ones() -> None:
    with pytest.raises(PartOptionsError) as info:
        _manager(demo=_parts).resolve("llm", "wrap?bogus=1")
    assert "'bogus'" in str(info.value)
    assert "It accepts: width, initial_indent" in str(info.value)


def test_missing_module_of_a_target_is_named() -> None:
    with pytest.raises(PartImportError) as info:
        _manager(demo=_parts).resolve("llm", "ghost")
    message = str(info.value)
    assert "module 'surely_missing_pkg_41c' is not installed" in message
    assert "plugin 'demo'" in message
    assert "pip install parley-demo" in message
    assert info.value.name == "surely_missing_pkg_41c"
    assert isinstance(info.value, ImportError)


def test_wrong_target_attribute_is_reported() -> None:
    with pytest.raises(PartImportError, match="'textwrap:NoSuchThing' does not exist"):
        _manager(demo=_parts).resolve("llm", "typo")


# --- presets -----------------------------------------------------------------------------------


def test_presets_chain_and_merge_options() -> None:
    def presets(register: Registrar) -> None:
        register.preset("local", "tts", "small?speed=1.5")
        register.preset("small", "tts", "ns/tiny?speed=1.0&voice=amy")

    manager = _manager(demo=_parts, presets=presets)
    built = manager.resolve("tts", "local?voice=bob")
    assert built == SimpleNamespace(model="tiny", speed=1.5, voice="bob")
    # Presets are per kind: "local" means nothing for llm here.
    with pytest.raises(UnknownPartError):
        manager.resolve("llm", "local")


def test_preset_may_point_at_a_part_of_its_own_name() -> None:
    def declare(register: Registrar) -> None:
        _parts(register)
        register.preset("ns", "llm", "ns/default-model")

    manager = _manager(demo=declare)
    assert manager.resolve("llm", "ns") == SimpleNamespace(model="default-model")
    assert manager.resolve("llm", "ns/other") == SimpleNamespace(model="other")


def test_preset_cycles_are_detected() -> None:
    def presets(register: Registrar) -> None:
        register.preset("a", "stt", "b")
        register.preset("b", "stt", "c?x=1")
        register.preset("c", "stt", "a")

    manager = _manager(loopy=presets)
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("stt", "a")
    assert "the stt presets form a cycle: a -> b -> c -> a" in str(info.value)
    assert "loopy" in str(info.value)


def test_preset_to_a_missing_part_says_which_preset_led_there() -> None:
    manager = _manager(demo=lambda r: r.preset("local", "stt", "whisper"))
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("stt", "local")
    assert "'whisper' (reached through preset local)" in str(info.value)
    assert "pip install parley-whisper" in str(info.value)
