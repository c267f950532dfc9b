"""The CLI, finding Runners in scripts and modules, the route-hook context, console output."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi import FastAPI
from parley import Agent, AgentLauncher
from parley.plugins import hookimpl, plugin_manager
from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge
from parley_server import Runner, ServeOptions
from parley_server.cli import runner_group
from parley_server.console import base_url, is_loopback, show_splash
from parley_server.loading import load_runner
from parley_server.targets import Target, TargetError, capturing, parse_target
from parley_server_testkit import TEST_AGENT, Calls, fake_launcher, serving


def test_runner_cli_has_run_and_serve_with_the_documented_options() -> None:
    group = runner_group(Runner(fake_launcher()))
    cli = CliRunner()
    assert {"run", "serve"} <= set(group.list_commands(None))  # type: ignore[arg-type]
    run_help = cli.invoke(group, ["run", "--help"]).output
    for option in ("--call-type", "--call-id", "--debug", "--log-level", "--no-demo"):
        assert option in run_help
    assert "--video-track-override" in run_help and "--no-splash" in run_help
    serve_help = cli.invoke(group, ["serve", "--help"]).output
    for option in ("--host", "--port", "--workers", "--http-log-level", "--agents-log-level"):
        assert option in serve_help
    assert "127.0.0.1" in serve_help and "8000" in serve_help


def test_serve_options_reach_runner_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(Runner, "serve", lambda self, **kw: calls.append(kw))
    group = runner_group(Runner(fake_launcher()))
    result = CliRunner().invoke(
        group,
        ["serve", "--host", "0.0.0.0", "--port", "9000", "--workers", "3", "--log-level", "debug"],
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        {
            "host": "0.0.0.0",
            "port": 9000,
            "agents_log_level": "DEBUG",
            "http_log_level": "INFO",
            "debug": False,
            "workers": 3,
            "no_splash": False,
            "target": None,
        }
    ]
    assert CliRunner().invoke(group, ["serve", "--workers", "0"]).exit_code == 2


def test_run_validates_its_options_before_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(Runner, "run", lambda self, **kw: calls.append(kw))
    group = runner_group(Runner(fake_launcher()))
    cli = CliRunner()
    assert "invalid call_id" in cli.invoke(group, ["run", "--call-id", "A*B"]).output
    assert "does not exist" in cli.invoke(group, ["run", "--video-track-override", "/nope"]).output
    assert calls == []
    ok = cli.invoke(group, ["run", "--call-id", "my-call", "--no-demo", "--port", "0"])
    assert ok.exit_code == 0, ok.output
    assert calls[0]["call_id"] == "my-call" and calls[0]["no_demo"] is True
    assert calls[0]["video_track_override"] is None and calls[0]["port"] == 0


def test_run_refuses_a_missing_video_file_in_code() -> None:
    runner = Runner(fake_launcher())
    with pytest.raises(FileNotFoundError, match="no such file"):
        runner.run(video_track_override="/no/such/video.mp4")


def test_the_parley_console_script_gains_run_and_serve() -> None:
    from parley.cli import build_cli

    output = CliRunner().invoke(build_cli(), ["--help"]).output
    assert "run" in output and "serve" in output and "plugins" in output


def test_parley_serve_loads_the_target_and_passes_it_for_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from parley.cli import build_cli

    seen: list[tuple[Runner, dict[str, Any]]] = []
    monkeypatch.setattr(Runner, "serve", lambda self, **kw: seen.append((self, kw)))
    result = CliRunner().invoke(build_cli(), ["serve", str(TEST_AGENT), "--workers", "2"])
    assert result.exit_code == 0, result.output
    runner, options = seen[0]
    assert options["workers"] == 2 and options["target"] == Target("path", str(TEST_AGENT))
    assert any(getattr(r, "path", "") == "/custom/hello" for r in runner.fast_api.routes)
    missing = CliRunner().invoke(build_cli(), ["serve", "/no/such/agent.py"])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_a_script_target_yields_the_runner_its_main_block_builds() -> None:
    runner = load_runner(Target("path", str(TEST_AGENT)))
    assert isinstance(runner, Runner)
    paths = {getattr(route, "path", None) for route in runner.fast_api.routes}
    assert "/custom/hello" in paths  # added after construction, in the script
    assert not runner.launcher.running  # capture mode built it; nothing was served


def test_capture_mode_makes_cli_run_and_serve_return(tmp_path: Path) -> None:
    with capturing() as built:
        runner = Runner(fake_launcher())
        runner.cli(["serve"])
        runner.serve(workers=4)
        runner.run()
    assert built == [runner]


def _write(path: Path, source: str) -> Path:
    path.write_text(source)
    return path


AGENT_FUNCTIONS = textwrap.dedent(
    """
    from parley import Agent
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge

    async def create_agent(**params):
        return Agent("x", edge=InMemoryEdge(), llm=FakeLLM([]))

    async def join_call(agent, call_type, call_id, **params):
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await agent.finish()
    """
)


def test_targets_with_attributes_launchers_or_bare_functions(tmp_path: Path) -> None:
    functions = _write(tmp_path / "only_functions.py", AGENT_FUNCTIONS)
    runner = load_runner(parse_target(str(functions)))
    assert runner.launcher.create_agent.__name__ == "create_agent"

    with_launcher = _write(
        tmp_path / "with_launcher.py",
        AGENT_FUNCTIONS
        + "\nfrom parley import AgentLauncher\nlauncher = AgentLauncher(create_agent, join_call)\n",
    )
    assert isinstance(load_runner(parse_target(f"{with_launcher}:launcher")), Runner)
    with pytest.raises(TargetError, match="no attribute 'nothing'"):
        load_runner(parse_target(f"{with_launcher}:nothing"))
    with pytest.raises(TargetError, match="not a Runner"):
        load_runner(parse_target(f"{with_launcher}:create_agent"))

    empty = _write(tmp_path / "empty_agent.py", "x = 1\n")
    with pytest.raises(TargetError, match="builds no Runner"):
        load_runner(parse_target(str(empty)))
    exits = _write(tmp_path / "exits.py", "import sys\nsys.exit(3)\n")
    with pytest.raises(TargetError, match="exited with 3"):
        load_runner(parse_target(str(exits)))


def test_module_targets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(
        tmp_path / "parley_server_target_mod.py",
        AGENT_FUNCTIONS
        + "\nfrom parley import AgentLauncher\nfrom parley_server import Runner\n"
        + "runner = Runner(AgentLauncher(create_agent, join_call))\n",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    target = parse_target("parley_server_target_mod:runner")
    assert target == Target("module", "parley_server_target_mod", "runner")
    runner = load_runner(target)
    assert runner.target == Target("module", "parley_server_target_mod")
    with pytest.raises(TargetError, match="neither a Python file nor a module"):
        parse_target("not a module!")
    with pytest.raises(TargetError, match="cannot load"):
        load_runner(parse_target("parley_server_no_such_module"))


def test_workers_need_a_target_to_find_the_runner_again() -> None:
    runner = Runner(fake_launcher())
    runner.target = None
    with pytest.raises(RuntimeError, match="find this Runner again"):
        runner.serve(workers=2, no_splash=True)


def test_splash_only_on_an_interactive_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    piped = io.StringIO()
    assert not show_splash("serving", stream=piped) and piped.getvalue() == ""
    terminal = Terminal()
    assert show_splash("serving", stream=terminal) and "serving" in terminal.getvalue()
    quiet = Terminal()
    assert not show_splash("serving", enabled=False, stream=quiet) and quiet.getvalue() == ""


def test_urls_and_loopback() -> None:
    assert base_url("0.0.0.0", 8000) == "http://127.0.0.1:8000"
    assert base_url("::", 80) == "http://[::1]:80"
    assert base_url("example.com", 8080) == "http://example.com:8080"
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3")


class _RoutesPlugin:
    def __init__(self) -> None:
        self.contexts: list[Any] = []

    @hookimpl
    def register_routes(self, app: FastAPI, context: Any) -> None:
        self.contexts.append(context)
        context.add_demo_page("/demo/?call={call_id}", "Demo page")

        @app.get("/demo/")
        async def demo() -> dict[str, str]:
            return {"page": "demo"}


async def test_plugins_get_a_context_and_register_routes_and_demo_pages() -> None:
    plugin = _RoutesPlugin()
    manager = plugin_manager()
    manager.register(plugin, name="parley-server-test-routes")
    try:
        options = ServeOptions()
        runner = Runner(fake_launcher(), options)
        off = Runner(fake_launcher(), ServeOptions(plugin_routes=False))
    finally:
        manager.unregister(plugin)
    context = plugin.contexts[0]
    assert len(plugin.contexts) == 1  # not called for plugin_routes=False
    assert context.launcher is runner.launcher and context.serve_options is options
    assert context.ensure_call is None
    assert runner.demo_url("http://127.0.0.1:8000", "abc") == "http://127.0.0.1:8000/demo/?call=abc"
    assert off.demo_url("http://x", "abc") is None
    async with serving(runner, lifespan=False) as client:
        assert (await client.get("/demo/")).json() == {"page": "demo"}
    with pytest.raises(ValueError, match="starts with '/'"):
        context.add_demo_page("demo")


async def test_sessions_on_demand_start_one_session_per_call() -> None:
    calls = Calls()
    runner = Runner(fake_launcher(calls), ServeOptions(start_sessions_on_demand=True))
    ensure_call = runner.context.ensure_call
    assert ensure_call is not None
    async with serving(runner):
        await asyncio.gather(ensure_call("room"), ensure_call("room"), ensure_call("other"))
        await ensure_call("room")
        assert sorted(r.call_id for r in runner.launcher.registry.local_sessions()) == [
            "other",
            "room",
        ]
    assert len(calls.created) == 2


def test_parley_exports_runner_lazily_and_the_entry_module_is_light() -> None:
    import parley
    import parley_server

    assert parley.Runner is parley_server.Runner
    assert parley.ServeOptions is parley_server.ServeOptions
    assert parley_server.PARLEY_API == 1
    code = (
        "import sys, parley_server; "
        "print(sorted(m for m in ('fastapi', 'uvicorn', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def restore_logging() -> Iterator[None]:
    names = ("", "parley", "uvicorn", "uvicorn.error", "uvicorn.access")
    levels = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _short_launcher() -> AgentLauncher:
    """A launcher whose agent leaves the call by itself soon after joining."""

    async def create_agent(**params: Any) -> Agent:
        return Agent("x", edge=InMemoryEdge(), llm=FakeLLM([]), stt=FakeSTT(None), tts=FakeTTS())

    async def join_call(agent: Agent, call_type: str, call_id: str, **params: Any) -> None:
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            await asyncio.sleep(0.2)

    return AgentLauncher(create_agent, join_call, warm_up=False)


@pytest.mark.usefixtures("restore_logging")
def test_run_prints_and_opens_the_demo_page_then_returns_when_the_session_ends(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *args, **kwargs: opened.append(url))
    plugin = _RoutesPlugin()
    manager = plugin_manager()
    manager.register(plugin, name="parley-server-test-demo")
    try:
        runner = Runner(_short_launcher())
    finally:
        manager.unregister(plugin)
    runner.run(call_id="console-call", port=0, no_splash=True)
    printed = capsys.readouterr().out
    assert len(opened) == 1
    assert opened[0].startswith("http://127.0.0.1:") and opened[0].endswith(
        "/demo/?call=console-call"
    )
    assert f"Open {opened[0]} to talk to the agent." in printed
    assert not runner.launcher.running  # stopped with the server

    quiet = Runner(_short_launcher())
    quiet.run(call_id="no-page", port=0, no_demo=True, no_splash=True)
    assert len(opened) == 1  # no demo page and --no-demo: no browser
    assert "/calls/no-page/sessions/sess_" in capsys.readouterr().out
