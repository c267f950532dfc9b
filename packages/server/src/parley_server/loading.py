"""A Runner from a target: for ``parley run|serve TARGET`` and for worker processes.

`parley_server.targets` runs a target's code in capture mode; this module picks the Runner
out of what it built or defined. Heavy imports wait for a target to be loaded, because the
``parley`` console script imports this module to list its commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from parley_server.cli import run_from_options, run_options, serve_from_options, serve_options
from parley_server.targets import Target, TargetError, parse_target, run_captured

if TYPE_CHECKING:
    from parley_server.runner import Runner


def load_runner(target: Target) -> Runner:
    """Run ``target``'s code in capture mode and return its Runner."""
    from parley_server.runner import Runner

    namespace, built = run_captured(target)
    if target.attr is not None:
        if target.attr not in namespace:
            raise TargetError(f"{target}: {target.value} has no attribute {target.attr!r}")
        found = _as_runner(namespace[target.attr])
        if found is None:
            raise TargetError(
                f"{target}: {target.attr!r} is a {type(namespace[target.attr]).__name__}, "
                "not a Runner or an AgentLauncher"
            )
        return found
    runners = [value for value in built if isinstance(value, Runner)]
    if runners:
        return runners[-1]
    for value in list(namespace.values()):
        if isinstance(value, Runner):
            return value
    for value in list(namespace.values()):
        found = _as_runner(value)
        if found is not None:
            return found
    create_agent, join_call = namespace.get("create_agent"), namespace.get("join_call")
    if callable(create_agent) and callable(join_call):
        from parley.launcher import AgentLauncher

        return Runner(AgentLauncher(create_agent, join_call))
    raise TargetError(
        f"{target} builds no Runner: build one (Runner(launcher).cli() under "
        "if __name__ == '__main__'), or define a module-level Runner or AgentLauncher, or "
        "async functions create_agent and join_call"
    )


def _as_runner(value: Any) -> Runner | None:
    from parley.launcher import AgentLauncher

    from parley_server.runner import Runner

    if isinstance(value, Runner):
        return value
    if isinstance(value, AgentLauncher):
        return Runner(value)
    return None


def _load(target_text: str) -> tuple[Runner, Target]:
    try:
        target = parse_target(target_text)
        return load_runner(target), target
    except TargetError as exc:
        raise click.BadParameter(str(exc), param_hint="TARGET") from None


_TARGET_HELP = "TARGET: path/to/agent.py or package.module, optionally :attribute."


def target_commands() -> list[click.Command]:
    """``parley run TARGET`` and ``parley serve TARGET`` for the console script."""

    @click.command("run", help=f"Console mode for an agent. {_TARGET_HELP}")
    @click.argument("target")
    @run_options
    def run_command(target: str, **options: Any) -> None:
        runner, _ = _load(target)
        run_from_options(runner, options)

    @click.command("serve", help=f"Serve an agent's HTTP session API. {_TARGET_HELP}")
    @click.argument("target")
    @serve_options
    def serve_command(target: str, **options: Any) -> None:
        runner, where = _load(target)
        serve_from_options(runner, options, where)

    return [run_command, serve_command]
