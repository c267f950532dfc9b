"""The ``parley`` console script: ``parley plugins`` and commands added by plugins."""

from __future__ import annotations

import json
from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner
from parley.cli import build_cli
from parley.plugins import Registrar, hookimpl, plugin_manager


class _Speaker:
    PARLEY_API = 1

    @hookimpl
    def register_parts(self, register: Registrar) -> None:
        register(
            "tts",
            "speaker",
            "types:SimpleNamespace",
            capabilities={"streaming": True, "cloning": False, "languages": ["en", "de"]},
        )
        register("stt", "ears", "m:F", requires=["surely_missing_sdk_0a1"])
        register.preset("local", "tts", "speaker?rate=2")


class _Commands:
    PARLEY_API = 1

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command("hello")
        @click.argument("who")
        def hello(who: str) -> None:
            """Say hello."""
            click.echo(f"hello {who} from a plugin")

        @cli.command("plugins")
        def hijack() -> None:
            click.echo("hijacked")


class _BrokenCommands:
    PARLEY_API = 1

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        raise RuntimeError("cannot add commands")


@pytest.fixture(autouse=True)
def plugins() -> Iterator[None]:
    with plugin_manager.isolated() as manager:
        manager.register(_Speaker(), name="speaker")
        manager.register(_BrokenCommands(), name="broken-commands")
        manager.register(_Commands(), name="commands")
        yield


def _run(*args: str) -> str:
    result = CliRunner().invoke(build_cli(), list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_plugins_table_shows_parts_capabilities_and_deps() -> None:
    output = _run("plugins")
    lines = output.splitlines()
    assert lines[0].split() == [
        "NAME",
        "DISTRIBUTION",
        "VERSION",
        "KINDS",
        "PARTS",
        "AND",
        "CAPABILITIES",
        "STATUS",
    ]
    speaker = next(line for line in lines if line.startswith("speaker "))
    assert "stt,tts" in speaker
    assert "missing-deps (deps missing)" in speaker
    assert "stt/ears: - [missing: surely_missing_sdk_0a1]" in speaker
    assert "tts/speaker: streaming, no cloning, languages=en/de" in output
    assert "tts/local -> speaker?rate=2" in output
    assert "Problems:" in output
    assert "speaker: modules not installed: surely_missing_sdk_0a1" in output


def test_plugins_json_is_machine_readable() -> None:
    data = json.loads(_run("plugins", "--json"))
    by_name = {entry["name"]: entry for entry in data}
    assert set(by_name) == {"broken-commands", "commands", "speaker"}
    speaker = by_name["speaker"]
    assert speaker["status"] == "missing-deps"
    assert speaker["deps_ok"] is False
    assert speaker["kinds"] == ["stt", "tts"]
    assert [(p["kind"], p["name"], p["deps_ok"]) for p in speaker["parts"]] == [
        ("stt", "ears", False),
        ("tts", "speaker", True),
    ]
    assert speaker["parts"][1]["capabilities"]["languages"] == ["en", "de"]
    assert speaker["presets"] == [{"kind": "tts", "name": "local", "spec": "speaker?rate=2"}]


def test_plugins_can_add_commands_but_not_replace_built_ins(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert "hello" in _run("--help")
    assert _run("hello", "world") == "hello world from a plugin\n"
    assert "hijacked" not in _run("plugins")
    assert any("replaced the command 'plugins'" in r.getMessage() for r in caplog.records)
    # The plugin whose hook raised was logged and skipped; the CLI still works.
    assert any("'broken-commands' failed in hook" in r.getMessage() for r in caplog.records)


def test_no_plugins() -> None:
    with plugin_manager.isolated():
        assert _run("plugins") == "No Parley plugins are installed.\n"


def test_version() -> None:
    assert _run("--version").startswith("parley, version ")
