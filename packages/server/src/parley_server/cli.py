"""The ``run`` and ``serve`` commands, for a script's ``Runner.cli()`` and for the ``parley``
console script (``parley serve path/to/agent.py``, built in `parley_server.loading`). Heavy
imports wait for the command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from parley_server.console import LOG_FORMATS, LOG_LEVELS

if TYPE_CHECKING:
    from parley_server.targets import Target

F = TypeVar("F", bound=Callable[..., Any])

_LEVEL = click.Choice(LOG_LEVELS, case_sensitive=False)
_FORMAT = click.Choice(LOG_FORMATS, case_sensitive=False)


class Servable(Protocol):
    """What the commands drive: a `Runner`'s ``run`` and ``serve``."""

    def run(self, *args: Any, **kwargs: Any) -> None: ...

    def serve(self, *args: Any, **kwargs: Any) -> None: ...


def _check_call_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    from parley.launcher import InvalidCallId, validate_call_id

    try:
        return validate_call_id(value)
    except InvalidCallId as exc:
        raise click.BadParameter(str(exc)) from None


def _env(name: str) -> dict[str, Any]:
    """``envvar=PARLEY_<NAME>``, shown in ``--help``. Explicit names rather than click's
    ``auto_envvar_prefix`` (which would say ``PARLEY_SERVE_PORT``): one variable means one
    thing for every command, and ``PARLEY_PORT`` is also the port of a `WorkerJob`'s room."""
    return {"envvar": f"PARLEY_{name}", "show_envvar": True}


def _apply(command: F, decorators: list[Callable[[F], F]]) -> F:
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def shared_options(command: F) -> F:
    """What ``run`` and ``serve`` share: where to listen, logging, debug, the banner."""
    return _apply(
        command,
        [
            click.option(
                "--host",
                default="127.0.0.1",
                show_default=True,
                help="Address to bind.",
                **_env("HOST"),
            ),
            click.option(
                "--port",
                type=click.IntRange(0, 65535),
                default=8000,
                show_default=True,
                help="Port to listen on (0: a free one).",
                **_env("PORT"),
            ),
            click.option(
                "--log-level",
                "--agents-log-level",
                "log_level",
                type=_LEVEL,
                default="INFO",
                show_default=True,
                help="Level of Parley's loggers (parley.*) and of the agent script's.",
                **_env("LOG_LEVEL"),
            ),
            click.option(
                "--log-level-libs",
                type=_LEVEL,
                help="Level of every other library (aioice, httpx, ...)  [default: WARNING; "
                "with `run --log-level debug`: DEBUG]",
                **_env("LOG_LEVEL_LIBS"),
            ),
            click.option(
                "--http-log-level",
                type=_LEVEL,
                help="Level of the HTTP server's log (uvicorn: startup, requests)  [default: "
                "serve: INFO; run: WARNING, or DEBUG with --log-level debug]",
                **_env("HTTP_LOG_LEVEL"),
            ),
            click.option(
                "--log-format",
                type=_FORMAT,
                default="text",
                show_default=True,
                help="text, or json: one object per line with the session's ids.",
                **_env("LOG_FORMAT"),
            ),
            click.option(
                "--debug",
                is_flag=True,
                help="Run the event loop in asyncio debug mode.",
                **_env("DEBUG"),
            ),
            click.option(
                "--no-splash", is_flag=True, help="Do not print the banner.", **_env("NO_SPLASH")
            ),
        ],
    )


def run_options(command: F) -> F:
    return _apply(
        command,
        [
            click.option(
                "--call-type",
                default="default",
                show_default=True,
                help="Call type.",
                **_env("CALL_TYPE"),
            ),
            click.option(
                "--call-id",
                callback=_check_call_id,
                help="Call to join (a-z, 0-9, '_', '-'); generated when absent.",
                **_env("CALL_ID"),
            ),
            click.option(
                "--no-demo",
                is_flag=True,
                help="Do not open the demo page in a browser.",
                # PARLEY_NO_BROWSER: the name a WorkerJob reads for the same thing.
                envvar=["PARLEY_NO_DEMO", "PARLEY_NO_BROWSER"],
                show_envvar=True,
            ),
            click.option(
                "--idle-timeout",
                type=click.FloatRange(min=0),
                help="Seconds the agent stays on a call with no one else on it, then leaves "
                "and `run` ends; 0: stay until Ctrl-C  [default: the launcher's "
                "agent_idle_timeout]",
                **_env("IDLE_TIMEOUT"),
            ),
            click.option(
                "--video-track-override",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="Play this local video file instead of incoming video.",
                **_env("VIDEO_TRACK_OVERRIDE"),
            ),
            shared_options,
        ],
    )


def serve_options(command: F) -> F:
    return _apply(
        command,
        [
            click.option(
                "--workers",
                type=click.IntRange(min=1),
                default=1,
                show_default=True,
                help="Worker processes (share a registry store between them: parley-redis).",
                **_env("WORKERS"),
            ),
            shared_options,
        ],
    )


def _logging(options: dict[str, Any]) -> dict[str, Any]:
    """The logging options as given; None where not given (each command has its defaults)."""
    return {
        "http_log_level": options["http_log_level"],
        "log_level_libs": options["log_level_libs"],
        "log_format": options["log_format"],
    }


def run_from_options(runner: Servable, options: dict[str, Any]) -> None:
    runner.run(
        call_type=options["call_type"],
        call_id=options["call_id"],
        debug=options["debug"],
        log_level=options["log_level"],
        no_demo=options["no_demo"],
        video_track_override=options["video_track_override"],
        host=options["host"],
        port=options["port"],
        no_splash=options["no_splash"],
        idle_timeout=options["idle_timeout"],
        **_logging(options),
    )


def serve_from_options(
    runner: Servable, options: dict[str, Any], target: Target | None = None
) -> None:
    runner.serve(
        host=options["host"],
        port=options["port"],
        agents_log_level=options["log_level"],
        debug=options["debug"],
        workers=options["workers"],
        no_splash=options["no_splash"],
        target=target,
        **{
            **_logging(options),
            "http_log_level": options["http_log_level"] or "INFO",
            "log_level_libs": options["log_level_libs"] or "WARNING",
        },
    )


CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}


def runner_group(runner: Servable) -> click.Group:
    """The commands of ``Runner.cli()``."""

    @click.group(
        help="Run this agent: `run` (console, one call) or `serve` (HTTP API).",
        context_settings=CONTEXT_SETTINGS,
    )
    def group() -> None:
        pass

    @group.command("run")
    @run_options
    def run_command(**options: Any) -> None:
        """Console mode: serve, put one agent on a call, print the URL to open."""
        run_from_options(runner, options)

    @group.command("serve")
    @serve_options
    def serve_command(**options: Any) -> None:
        """Serve the HTTP session API (POST /calls/{call_id}/sessions starts an agent)."""
        serve_from_options(runner, options)

    return group
