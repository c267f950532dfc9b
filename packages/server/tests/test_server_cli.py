"""The CLI, finding Runners in scripts and modules, the route-hook context, console output."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
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
            "log_level_libs": "WARNING",
            "log_format": "text",
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
    names = ("", "parley", "__main__", "uvicorn", "uvicorn.error", "uvicorn.access")
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


SHARED = (
    "--host",
    "--port",
    "--log-level",
    "--log-level-libs",
    "--http-log-level",
    "--log-format",
    "--debug",
    "--no-splash",
)


def _options(command: click.Command) -> dict[str, click.Option]:
    return {
        name: param
        for param in command.params
        if isinstance(param, click.Option)
        for name in param.opts
    }


def test_run_and_serve_share_their_options_and_take_each_from_the_environment() -> None:
    from parley.cli import build_cli

    group = runner_group(Runner(fake_launcher()))
    for cli in (group, build_cli()):
        run = _options(cli.get_command(click.Context(cli), "run"))  # type: ignore[arg-type]
        serve = _options(cli.get_command(click.Context(cli), "serve"))  # type: ignore[arg-type]
        for name in SHARED:
            assert name in run and name in serve, name
            assert run[name].envvar == serve[name].envvar
        for options in (run, serve):
            for name, option in options.items():
                envvars = [option.envvar] if isinstance(option.envvar, str) else option.envvar
                assert envvars and all(v.startswith("PARLEY_") for v in envvars), name
                assert option.show_envvar, name
    help_text = CliRunner().invoke(group, ["serve", "-h"]).output
    assert "PARLEY_PORT" in help_text and "PARLEY_LOG_FORMAT" in help_text
    assert CliRunner().invoke(group, ["-h"]).output.startswith("Usage:")


def test_parley_port_means_the_port_for_run_serve_and_a_worker_jobs_room() -> None:
    from parley_server import room

    run = _options(runner_group(Runner(fake_launcher())).commands["run"])
    assert run["--port"].envvar == room.PORT_ENV == "PARLEY_PORT"
    assert run["--host"].envvar == room.HOST_ENV == "PARLEY_HOST"
    assert run["--port"].default == room.DEFAULT_PORT
    assert "PARLEY_NO_BROWSER" in run["--no-demo"].envvar  # what a WorkerJob reads too


def test_environment_variables_reach_serve_and_run(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[dict[str, Any]] = []
    ran: list[dict[str, Any]] = []
    monkeypatch.setattr(Runner, "serve", lambda self, **kw: served.append(kw))
    monkeypatch.setattr(Runner, "run", lambda self, **kw: ran.append(kw))
    group = runner_group(Runner(fake_launcher()))
    env = {
        "PARLEY_PORT": "9100",
        "PARLEY_HOST": "0.0.0.0",
        "PARLEY_LOG_LEVEL": "debug",
        "PARLEY_LOG_LEVEL_LIBS": "error",
        "PARLEY_LOG_FORMAT": "json",
        "PARLEY_WORKERS": "2",
        "PARLEY_CALL_ID": "from-env",
        "PARLEY_NO_BROWSER": "1",
    }
    assert CliRunner().invoke(group, ["serve"], env=env).exit_code == 0
    assert CliRunner().invoke(group, ["run", "--port", "9200"], env=env).exit_code == 0
    assert served[0]["port"] == 9100 and served[0]["host"] == "0.0.0.0"
    assert served[0]["agents_log_level"] == "DEBUG" and served[0]["workers"] == 2
    assert served[0]["log_level_libs"] == "ERROR" and served[0]["log_format"] == "json"
    assert ran[0]["port"] == 9200  # the command line wins over the environment
    assert ran[0]["call_id"] == "from-env" and ran[0]["no_demo"] is True
    # Not given: `run` picks its own (quiet) levels, `serve` INFO and WARNING.
    assert ran[0]["log_format"] == "json" and ran[0]["http_log_level"] is None
    assert served[0]["http_log_level"] == "INFO"
    assert ran[0]["idle_timeout"] is None
    idle = CliRunner().invoke(group, ["run"], env={"PARLEY_IDLE_TIMEOUT": "0"})
    assert idle.exit_code == 0 and ran[-1]["idle_timeout"] == 0
    assert CliRunner().invoke(group, ["run", "--idle-timeout", "-1"]).exit_code == 2
    bad = CliRunner().invoke(group, ["serve"], env={"PARLEY_LOG_FORMAT": "xml"})
    assert bad.exit_code == 2 and "xml" in bad.output


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_levels_parley_uvicorn_and_the_other_libraries() -> None:
    from parley_server.console import configure_logging

    configure_logging("DEBUG", "WARNING", log_level_libs="ERROR")
    assert logging.getLogger("parley.openai").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("uvicorn.access").isEnabledFor(logging.INFO)
    assert logging.getLogger("uvicorn.error").isEnabledFor(logging.WARNING)
    assert not logging.getLogger("aioice.ice").isEnabledFor(logging.WARNING)
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("INFO", "chatty")


@pytest.mark.usefixtures("restore_logging")
def test_worker_processes_get_the_logging_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    import uvicorn
    from parley_server.runner import WORKER_ENV

    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: None)
    monkeypatch.delenv(WORKER_ENV, raising=False)
    runner = Runner(fake_launcher())
    runner.target = Target("path", str(TEST_AGENT))
    runner.serve(workers=2, no_splash=True, log_level_libs="ERROR", log_format="json")
    settings = json.loads(os.environ[WORKER_ENV])
    monkeypatch.delenv(WORKER_ENV)
    assert settings["log_level_libs"] == "ERROR" and settings["log_format"] == "json"


JSON_AGENT = textwrap.dedent(
    """
    import logging

    from parley import Agent, AgentLauncher
    from parley.testing import FakeLLM, FakeSTT, FakeTTS, InMemoryEdge
    from parley_server import Runner

    provider = logging.getLogger("parley.fakeprovider")


    def respond(ctx):
        provider.info("answering")
        return "Hi."


    async def create_agent(**params):
        return Agent(
            "x",
            edge=InMemoryEdge(realtime_playout=False),
            llm=FakeLLM(respond=respond),
            tts=FakeTTS(),
            stt=FakeSTT(None),
        )


    async def join_call(agent, call_type, call_id, **params):
        call = await agent.create_call(call_type, call_id)
        async with agent.join(call):
            logging.getLogger(__name__).info("on the call")
            await agent.simple_response("hello")


    if __name__ == "__main__":
        Runner(AgentLauncher(create_agent, join_call, warm_up=False)).cli()
    """
)


def test_serve_writes_json_lines_with_the_sessions_ids(
    server_process: Callable[..., Any], tmp_path: Path
) -> None:
    import json

    import httpx

    script = _write(tmp_path / "json_agent.py", JSON_AGENT)
    server = server_process(
        "serve",
        command=[sys.executable, str(script)],
        env={"PARLEY_LOG_FORMAT": "json", "PARLEY_LOG_LEVEL_LIBS": "ERROR"},
    )
    server.wait_healthy()
    started = httpx.post(server.url + "/calls/demo/sessions", json={}, timeout=10)
    assert started.status_code == 201, started.text
    session_id = started.json()["session_id"]
    server.wait_for_line('"answering"')
    server.stop()
    entries = [json.loads(line) for line in server.lines]  # every line is one JSON object
    by_message = {entry["message"]: entry for entry in entries}
    answer = by_message["answering"]
    assert answer["logger"] == "parley.fakeprovider"
    assert (answer["session_id"], answer["call_id"], answer["turn_id"]) == (session_id, "demo", 1)
    on_call = by_message["on the call"]  # the script's own logger follows --log-level
    assert on_call["logger"] == "__main__" and on_call["session_id"] == session_id
    assert "turn_id" not in on_call
    assert any(e["logger"] == "uvicorn.access" and "session_id" not in e for e in entries)
    assert all("color_message" not in e for e in entries)


def test_run_is_quiet_unless_debug_and_says_when_it_leaves() -> None:
    from parley_server.console import console_log_levels, idle_notice

    assert console_log_levels("INFO", None, None) == ("WARNING", "WARNING")
    assert console_log_levels("debug", None, None) == ("DEBUG", "DEBUG")
    assert console_log_levels("INFO", "INFO", "ERROR") == ("INFO", "ERROR")  # given: kept
    assert "until Ctrl-C" in idle_notice(None) and "until Ctrl-C" in idle_notice(0)
    assert "60 s after the last person" in idle_notice(60.0)


@pytest.mark.usefixtures("restore_logging")
def test_run_idle_timeout_overrides_the_launcher(capsys: pytest.CaptureFixture[str]) -> None:
    runner = Runner(_short_launcher())
    assert runner.launcher.agent_idle_timeout == 60.0
    runner.run(call_id="idle-off", port=0, no_demo=True, no_splash=True, idle_timeout=0)
    assert runner.launcher.agent_idle_timeout is None
    assert "Idle timeout off" in capsys.readouterr().out
    with pytest.raises(ValueError, match="idle_timeout"):
        runner.run(call_id="x", port=0, no_splash=True, idle_timeout=-1)


def test_the_root_redirects_to_the_page_unless_the_app_serves_it() -> None:
    from fastapi.testclient import TestClient
    from parley_server.runner import _redirect_root

    app = FastAPI()
    _redirect_root(app, "/webrtc/?call=c1")
    answer = TestClient(app).get("/", follow_redirects=False)
    assert answer.status_code == 307 and answer.headers["location"] == "/webrtc/?call=c1"
    own = FastAPI()
    own.add_api_route("/", lambda: {"mine": True})
    _redirect_root(own, "/elsewhere")
    assert TestClient(own).get("/").json() == {"mine": True}


async def test_the_conversation_printer_prints_each_line_with_its_latency(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from types import SimpleNamespace

    from parley.bus import EventBus
    from parley.edge import Participant, ParticipantLeft, User
    from parley.events import AgentTurnEnded, Transcript, TurnMetricsReady
    from parley.metrics import TurnMetrics
    from parley_server.console import ConversationPrinter

    connection = SimpleNamespace(events=EventBus(), humans=lambda: [])
    session = SimpleNamespace(events=EventBus(), connection=connection)
    ConversationPrinter(idle_timeout=60.0).attach(session)  # type: ignore[arg-type]
    session.events.emit(AgentTurnEnded("s0", "Hello!", False))  # the greeting: no turn
    await asyncio.sleep(0)
    session.events.emit(Transcript("user", "what's the weather in Paris?", False))
    session.events.emit(Transcript("user", "what's the weather in Paris?", True))
    session.events.emit(AgentTurnEnded("s1", "It is sunny in Paris.", False))
    turn = TurnMetrics(turn=1, speech_id="s1", end_of_speech=10.0, first_audio_sent=10.82)
    session.events.emit(TurnMetricsReady(turn))
    session.events.emit(AgentTurnEnded("s2", "Once upon", True))
    session.events.emit(TurnMetricsReady(TurnMetrics(turn=2, speech_id="s2")))
    connection.events.emit(ParticipantLeft(Participant("p1", User("Ada", "u1"))))
    await asyncio.sleep(0)
    assert capsys.readouterr().out.splitlines() == [
        "agent: Hello!",
        "you: what's the weather in Paris?",
        "agent (0.82 s): It is sunny in Paris.",
        "agent (interrupted): Once upon",
        "-- Ada left",
        "-- no one on the call: leaving in 60 s",
    ]
