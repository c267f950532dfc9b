"""The ``run`` and ``serve`` commands, for a script's ``Runner.cli()`` and for the ``parley``
console script (``parley serve path/to/agent.py``, built in `parley_server.loading`). Heavy
imports wait for the command."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import click

from parley_server.console import LOG_LEVELS

if TYPE_CHECKING:
    from parley_server.targets import Target

F = TypeVar("F", bound=Callable[..., Any])

_LEVEL = click.Choice(LOG_LEVELS, case_sensitive=False)


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


def run_options(command: F) -> F:
    decorators = [
        click.option("--call-type", default="default", show_default=True, help="Call type."),
        click.option(
            "--call-id",
            callback=_check_call_id,
            help="Call to join (a-z, 0-9, '_', '-'); generated when absent.",
        ),
        click.option("--debug", is_flag=True, help="Run the event loop in asyncio debug mode."),
        click.option("--log-level", type=_LEVEL, default="INFO", show_default=True),
        click.option("--no-demo", is_flag=True, help="Do not open the demo page in a browser."),
        click.option(
            "--video-track-override",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="Play this local video file instead of incoming video.",
        ),
        click.option("--no-splash", is_flag=True, help="Do not print the banner."),
        click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
        click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


def serve_options(command: F) -> F:
    decorators = [
        click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind."),
        click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True),
        click.option(
            "--workers",
            type=click.IntRange(min=1),
            default=1,
            show_default=True,
            help="Worker processes (share a registry store between them: parley-redis).",
        ),
        click.option(
            "--log-level",
            "--agents-log-level",
            "log_level",
            type=_LEVEL,
            default="INFO",
            show_default=True,
            help="Log level of Parley and the agents.",
        ),
        click.option(
            "--http-log-level",
            type=_LEVEL,
            default="INFO",
            show_default=True,
            help="Log level of the HTTP server (uvicorn).",
        ),
        click.option("--debug", is_flag=True, help="Run the event loop in asyncio debug mode."),
        click.option("--no-splash", is_flag=True, help="Do not print the banner."),
    ]
    for decorator in reversed(decorators):
        command = decorator(command)
    return command


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
    )


def serve_from_options(
    runner: Servable, options: dict[str, Any], target: Target | None = None
) -> None:
    runner.serve(
        host=options["host"],
        port=options["port"],
        agents_log_level=options["log_level"],
        http_log_level=options["http_log_level"],
        debug=options["debug"],
        workers=options["workers"],
        no_splash=options["no_splash"],
        target=target,
    )


def runner_group(runner: Servable) -> click.Group:
    """The commands of ``Runner.cli()``."""

    @click.group(help="Run this agent: `run` (console, one call) or `serve` (HTTP API).")
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
