"""The ``parley`` console script. Other packages add commands through the
``register_commands`` hook; heavy imports stay inside the commands so startup is fast."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from parley.plugins import PartInfo, PluginInfo

logger = logging.getLogger("parley.cli")

CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"]}
# Commands another distribution adds, and the hint when it is not installed.
PROVIDED_BY = {
    "run": "parley-server",
    "serve": "parley-server",
}


class ParleyGroup(click.Group):
    """A click group that asks plugins for their commands the first time it is used."""

    _plugin_commands_loaded = False

    def _load_plugin_commands(self) -> None:
        if self._plugin_commands_loaded:
            return
        self._plugin_commands_loaded = True
        from parley.plugins import PluginError, call_hook

        built_in = dict(self.commands)
        try:
            call_hook("register_commands", cli=self)
        except PluginError as exc:  # e.g. a malformed PARLEY_PLUGINS_PREFER: say it plainly
            raise click.ClickException(str(exc)) from None
        for name, command in built_in.items():
            if self.commands.get(name) is not command:  # a plugin may add, not replace
                logger.warning("a plugin replaced the command %r; keeping the built-in", name)
                self.commands[name] = command

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "plugins":
            # That command reports skipped plugins itself; don't log them to stderr as well.
            logging.getLogger("parley.plugins").setLevel(logging.ERROR)
        self._load_plugin_commands()
        return super().get_command(ctx, cmd_name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else None
        if name in PROVIDED_BY and self.get_command(ctx, name) is None:
            package = PROVIDED_BY[name]
            ctx.fail(
                f"'parley {name}' comes with {package}: pip install {package} "
                "(if it is installed, `parley plugins` says why it did not load)"
            )
        return super().resolve_command(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        missing = sorted({p for n, p in PROVIDED_BY.items() if n not in self.list_commands(ctx)})
        for package in missing:
            names = " and ".join(n for n, p in PROVIDED_BY.items() if p == package)
            formatter.write_paragraph()
            formatter.write_text(f"{names} come with {package}: pip install {package}")
        super().format_epilog(ctx, formatter)


@click.command("plugins")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print machine-readable JSON.",
    envvar="PARLEY_PLUGINS_JSON",
    show_envvar=True,
)
@click.option(
    "--capabilities",
    "read_classes",
    is_flag=True,
    help="Import each part to show the capabilities its class declares (sample rates, ...).",
    envvar="PARLEY_PLUGINS_CAPABILITIES",
    show_envvar=True,
)
def plugins_command(as_json: bool, read_classes: bool) -> None:
    """List installed plugins: kinds, capabilities, and whether their dependencies import."""
    from parley.plugins import PluginError, list_plugins

    try:
        infos = list_plugins(capabilities=read_classes)
    except PluginError as exc:  # e.g. a malformed PARLEY_PLUGINS_PREFER
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], indent=2))
    elif infos:
        click.echo(render_plugins(infos))
        if not read_classes:
            click.echo(
                "\nSample rates, streaming, tools and the other contract capabilities are "
                "declared by each part's class: `parley plugins --capabilities` shows them."
            )
    else:
        click.echo("No Parley plugins are installed.")


def build_cli() -> ParleyGroup:
    """A fresh ``parley`` command group (tests build their own; the console script uses
    `main`)."""

    @click.group(cls=ParleyGroup, name="parley", context_settings=CONTEXT_SETTINGS)
    @click.version_option(package_name="parley-core", prog_name="parley")
    def cli() -> None:
        """Parley: real-time voice and video AI agents."""

    cli.add_command(plugins_command)
    return cli


main = build_cli()


def render_plugins(infos: Sequence[PluginInfo]) -> str:
    """A plain-text table, one row per plugin, one capability line per part."""
    header = ("NAME", "DISTRIBUTION", "VERSION", "KINDS", "PARTS AND CAPABILITIES", "STATUS")
    rows = [
        (
            info.name,
            info.distribution or info.module,
            info.version or "-",
            ",".join(info.kinds) or "-",
            "\n".join(_part_lines(info)) or "-",
            _status(info),
        )
        for info in infos
    ]
    table = _table([header, *rows])
    problems = [f"  {info.name}: {info.error}" for info in infos if info.error]
    problems += [f"  {info.name}: {warning}" for info in infos for warning in info.warnings]
    problems += [f"  {c}" for c in dict.fromkeys(c for info in infos for c in info.conflicts)]
    if problems:
        table += "\n\nProblems:\n" + "\n".join(problems)
    return table


def _status(info: PluginInfo) -> str:
    if info.deps_ok is None:
        return info.status
    return f"{info.status} (deps {'ok' if info.deps_ok else 'missing'})"


def _part_lines(info: PluginInfo) -> Iterable[str]:
    for part in info.parts:
        yield f"{part.kind}/{part.name}: {_capabilities(part)}"
    for preset in info.presets:
        yield f"{preset.kind}/{preset.name} -> {preset.spec}"


def _capabilities(part: PartInfo) -> str:
    text = ", ".join(_capability(key, value) for key, value in part.capabilities.items()) or "-"
    if part.missing:
        text += f" [missing: {', '.join(part.missing)}]"
    return text


def _capability(key: str, value: Any) -> str:
    if value is True:
        return key
    if value is False:
        return f"no {key}"
    if isinstance(value, list | tuple):
        return f"{key}={'/'.join(str(v) for v in value)}"
    if isinstance(value, Mapping):
        return f"{key}={json.dumps(value, separators=(',', ':'))}"
    return f"{key}={value}"


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns; a cell may span several lines."""
    cells = [[cell.splitlines() or [""] for cell in row] for row in rows]
    widths = [max(len(line) for row in cells for line in row[col]) for col in range(len(rows[0]))]
    lines: list[str] = []
    for row in cells:
        for i in range(max(len(cell) for cell in row)):
            parts = [
                (cell[i] if i < len(cell) else "").ljust(width)
                for cell, width in zip(row, widths, strict=True)
            ]
            lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


if __name__ == "__main__":
    main()
