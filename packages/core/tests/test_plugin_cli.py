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
            capabilities={"offline": True, "cloning": False, "voices": ["amy", "bob"]},
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
    assert "tts/speaker: offline, no cloning, voices=amy/bob" in output
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
    assert speaker["parts"][1]["capabilities"]["voices"] == ["amy", "bob"]
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


def test_run_and_serve_without_parley_server_name_the_package_to_install() -> None:
    # The autouse fixture isolates the plugin manager: parley-server's plugin is not there,
    # as when only parley-core is installed.
    for command in ("run", "serve"):
        result = CliRunner().invoke(build_cli(), [command, "agent.py", "--port", "9000"])
        assert result.exit_code == 2
        assert f"'parley {command}' comes with parley-server" in result.output
        assert "pip install parley-server" in result.output
        assert "No such command" not in result.output
    assert "run and serve come with parley-server: pip install parley-server" in _run("--help")
    unknown = CliRunner().invoke(build_cli(), ["sing"])
    assert unknown.exit_code == 2 and "No such command 'sing'" in unknown.output


def test_dash_h_is_help_everywhere() -> None:
    assert _run("-h") == _run("--help")
    assert "--json" in _run("plugins", "-h") and "Usage: parley plugins" in _run("plugins", "-h")
    assert "Usage: parley hello" in _run("hello", "-h")  # a plugin's command too


def test_options_can_come_from_parley_environment_variables() -> None:
    assert "PARLEY_PLUGINS_JSON" in _run("plugins", "-h")
    result = CliRunner().invoke(build_cli(), ["plugins"], env={"PARLEY_PLUGINS_JSON": "1"})
    assert result.exit_code == 0 and json.loads(result.output)[0]["name"]


def test_python_dash_m_parley_is_the_console_script() -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "parley", "-h"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("Usage: parley [OPTIONS] COMMAND")
    assert "plugins" in out
