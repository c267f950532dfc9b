"""Who owns a part name, "did you mean", install hints, and capabilities declared once."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from parley.cli import build_cli
from parley.edge import EdgeCapabilities
from parley.llm import LLMCapabilities
from parley.plugins import (
    KINDS,
    PartConflictError,
    PluginImportError,
    PreferenceError,
    Registrar,
    RegistrationError,
    UnknownPartError,
    discover,
    hookimpl,
    plugin_manager,
)
from parley.plugins.capabilities import CONTRACT_FIELDS, declared
from parley.plugins.installed import entry_points
from parley.plugins.ownership import Preferences
from parley.realtime import RealtimeCapabilities
from parley.stt import BatchSTT, STTCapabilities
from parley.tts import TTS, TTSCapabilities
from parley.vad import VADCapabilities

Declare = Callable[[Registrar], None]


class _EntryPoint:
    """An installed entry point of distribution ``dist`` whose module runs ``declare``."""

    def __init__(self, name: str, dist: str, declare: Declare, version: str = "1.0") -> None:
        self.name, self.value = name, f"{dist.replace('-', '_')}_entry"
        self.dist = SimpleNamespace(metadata={"Name": dist}, version=version)
        module = ModuleType(self.value)
        module.PARLEY_API = 1  # type: ignore[attr-defined]
        module.register_parts = hookimpl(declare)  # type: ignore[attr-defined]
        self.module = module

    def load(self) -> Any:
        return self.module


def _echo(target: str) -> Declare:
    return lambda register: register("tts", "echo", target)


ECHO = _EntryPoint("echo", "parley-echo", _echo("types:SimpleNamespace"))
CLASH = _EntryPoint("clash", "parley-clash", _echo("collections:OrderedDict"), "0.1")


def _prefer(text: str | None) -> Preferences:
    return Preferences.parse(text, KINDS)


# --- name ownership ----------------------------------------------------------------------------


def test_a_part_two_distributions_register_is_an_error_naming_both() -> None:
    manager = discover([ECHO, CLASH], _prefer(None))
    with pytest.raises(PartConflictError) as info:
        manager.resolve("tts", "echo")
    message = str(info.value)
    assert "tts 'echo' is provided by 2 plugins" in message
    assert "parley-clash 0.1 (plugin 'clash')" in message
    assert "parley-echo 1.0 (plugin 'echo')" in message
    assert "PARLEY_PLUGINS_PREFER=tts/echo=parley-clash" in message
    assert not isinstance(info.value, UnknownPartError)  # never mistaken for "not installed"
    infos = {info.name: info for info in manager.plugins()}
    assert infos["echo"].conflicts == infos["clash"].conflicts == (message,)
    assert infos["echo"].status == infos["clash"].status == "ok"  # their other parts still work


@pytest.mark.parametrize("choice", ["parley-echo", "Parley_Echo", "echo"])
def test_the_user_chooses_the_owner_by_distribution_or_plugin_name(choice: str) -> None:
    manager = discover([CLASH, ECHO], _prefer(f"tts/echo={choice}, llm/other=x"))
    assert manager.resolve("tts", "echo?x=1") == SimpleNamespace(x=1)
    assert all(info.conflicts == () for info in manager.plugins())


def test_the_choice_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_PLUGINS_PREFER", "tts/echo=parley-clash")
    with plugin_manager.isolated([ECHO, CLASH]) as manager:
        assert type(manager.resolve("tts", "echo")).__name__ == "OrderedDict"


def test_a_choice_pins_a_name_that_another_distribution_provides() -> None:
    manager = discover([CLASH], _prefer("tts/echo=parley-echo"))
    with pytest.raises(PartConflictError) as info:
        manager.resolve("tts", "echo")
    assert "chooses 'parley-echo' for tts/echo" in str(info.value)
    assert "provided by parley-clash 0.1 (plugin 'clash') only" in str(info.value)
    (clash,) = manager.plugins()
    assert clash.conflicts == (str(info.value),)


def test_a_preset_cannot_take_over_another_plugins_part() -> None:
    def hijack_echo(register: Registrar) -> None:
        register.preset("echo", "tts", "evil")

    hijack = _EntryPoint("aaa", "parley-aaa", hijack_echo)
    manager = discover([hijack, ECHO], _prefer(None))
    with pytest.raises(PartConflictError, match=r"parley-aaa 1\.0 .* and parley-echo 1\.0"):
        manager.resolve("tts", "echo")


def test_the_plugins_command_shows_the_clash_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PARLEY_PLUGINS_PREFER", raising=False)
    with plugin_manager.isolated([ECHO, CLASH]):
        output = CliRunner().invoke(build_cli(), ["plugins"], catch_exceptions=False).output
    problems = output.split("Problems:")[1]
    assert problems.count("tts 'echo' is provided by 2 plugins") == 1
    assert "parley-clash 0.1" in problems and "parley-echo 1.0" in problems


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("tts/echo", "is not KIND/NAME=OWNER"),
        ("speech/echo=parley-echo", "unknown kind 'speech'"),
        ("tts/echo=a,tts/echo=b", "chooses both 'a' and 'b' for tts/echo"),
    ],
)
def test_a_malformed_choice_says_what_is_wrong(
    text: str, problem: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PreferenceError, match=problem):
        _prefer(text)
    monkeypatch.setenv("PARLEY_PLUGINS_PREFER", text)
    plugin_manager.reset()
    try:
        result = CliRunner().invoke(build_cli(), ["plugins"])
    finally:
        monkeypatch.delenv("PARLEY_PLUGINS_PREFER")
        plugin_manager.reset()
    assert result.exit_code == 1
    assert "PARLEY_PLUGINS_PREFER" in result.output and problem in result.output


# --- did you mean, install hints ---------------------------------------------------------------


def test_a_misspelt_part_gets_did_you_mean_and_no_invented_package() -> None:
    manager = discover([ECHO], _prefer(None))
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("tts", "echoo")
    message = str(info.value)
    assert "no installed plugin provides the tts part 'echoo'. Did you mean 'echo'?" in message
    assert "pip install" not in message
    with pytest.raises(UnknownPartError, match="Did you mean 'echo'"):
        manager.resolve("tts", "ECHO")


def test_install_hints_only_for_plugins_this_project_publishes() -> None:
    manager = discover([ECHO], _prefer(None))
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("stt", "deepgram")
    assert "To add it, install its plugin: pip install parley-deepgram" in str(info.value)
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("stt", "acme")
    assert "pip install" not in str(info.value)
    assert "`parley plugins` lists what is installed" in str(info.value)
    # parley-piper is ours, but it provides no STT: installing it would not help.
    with pytest.raises(UnknownPartError) as info:
        manager.resolve("stt", "piper")
    assert "pip install" not in str(info.value)


def test_a_part_of_another_kind_is_named() -> None:
    manager = discover([ECHO], _prefer(None))
    with pytest.raises(UnknownPartError, match="'echo' is a tts part, not a stt part"):
        manager.resolve("stt", "echo")


def test_a_misspelt_plugin_import_gets_did_you_mean() -> None:
    manager = discover([ECHO], _prefer(None))
    with pytest.raises(PluginImportError, match="did you mean 'echo'") as info:
        manager.load_plugin("ecko")
    assert "pip install" not in str(info.value)
    with pytest.raises(PluginImportError, match="install it with: pip install parley-silero"):
        manager.load_plugin("silero")


# --- capabilities, declared once ---------------------------------------------------------------


def test_contract_fields_are_those_of_the_capabilities_classes() -> None:
    classes = {
        "stt": STTCapabilities,
        "llm": LLMCapabilities,
        "tts": TTSCapabilities,
        "realtime": RealtimeCapabilities,
        "vad": VADCapabilities,
        "edge": EdgeCapabilities,
    }
    for kind, cls in classes.items():
        fields = {f.name for f in dataclasses.fields(cls)}
        assert fields | ({"batch"} if kind == "stt" else set()) == CONTRACT_FIELDS[kind]
    assert set(CONTRACT_FIELDS) == set(KINDS)


def test_repeating_a_contract_capability_at_registration_is_refused() -> None:
    register = Registrar("demo")
    with pytest.raises(RegistrationError) as info:
        register("tts", "x", "m:F", capabilities={"sample_rate": 16000, "offline": True})
    assert "repeats contract capabilities in register(capabilities=...): sample_rate" in str(
        info.value
    )
    assert "parley.tts.TTSCapabilities" in str(info.value)
    register("store", "y", "m:F", capabilities={"shared": True})  # no contract: anything goes


class _LoudTTS(TTS):
    capabilities = TTSCapabilities(sample_rate=16000, languages=("en", "de"))

    def synthesize(self, text: str) -> Any:
        raise NotImplementedError


class _Batch(BatchSTT):
    sample_rate = 8000

    async def recognize(self, audio: Any, *, language: str | None = None) -> str:
        return ""


def test_listing_reads_what_the_class_declares() -> None:
    assert declared("tts", _LoudTTS) == {
        "streaming": True,
        "sample_rate": 16000,
        "channels": 1,
        "languages": ["en", "de"],
    }
    assert declared("stt", _Batch) == {
        "streaming": False,
        "batch": True,
        "sample_rate": 8000,
        "languages": ["en"],
    }
    assert declared("tts", lambda: None) is None  # a factory function: known once built


def test_listing_imports_parts_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "loud_tts_5c2.py").write_text(
        "from parley.tts import TTS, TTSCapabilities\n"
        "class LoudTTS(TTS):\n"
        "    capabilities = TTSCapabilities(sample_rate=16000, languages=('en', 'de'))\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))

    def loud(register: Registrar) -> None:
        register("tts", "loud", "loud_tts_5c2:LoudTTS", capabilities={"offline": 1})

    manager = discover([_EntryPoint("loud", "parley-loud", loud)], _prefer(None))
    (part,) = manager.plugins()[0].parts
    assert dict(part.capabilities) == {"offline": 1}
    assert "loud_tts_5c2" not in sys.modules
    (part,) = manager.plugins(capabilities=True)[0].parts
    assert dict(part.capabilities) == {
        "streaming": True,
        "sample_rate": 16000,
        "channels": 1,
        "languages": ["en", "de"],
        "offline": 1,
    }
    monkeypatch.delitem(sys.modules, "loud_tts_5c2")


def test_every_installed_plugin_registers_without_repeating_contract_capabilities() -> None:
    manager = discover(entry_points("parley"), _prefer(None))
    infos = manager.plugins()
    assert {"openai", "deepgram", "whisper", "webrtc"} <= {info.name for info in infos}
    for info in infos:
        assert info.status in ("ok", "missing-deps"), (info.name, info.error)
    for part in manager.registry.parts():  # as registered (a listing adds the class's)
        assert not set(part.capabilities) & CONTRACT_FIELDS[part.kind], part
