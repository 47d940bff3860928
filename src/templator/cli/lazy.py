"""Sub-commands imported only when they run, and the root's last-resort error handler.

The root command (`cli/main.py`) names each sub-command with a `LazyCommand`: its name,
where it lives (`"module:attribute"`, a Typer app or a command function) and its one-line
help. `templator --help` lists them from those lines without importing anything else;
`templator db …` imports `templator.cli.db` and nothing of the other commands, so a
command pays only for the libraries it uses (SQLAlchemy, boto3, FastAPI… cost seconds).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.main import get_command, get_group

from templator.cli.errors import exit_for

Command = TyperCommand | TyperGroup
"""What Typer makes of an app (a group) or a function (a command): typer's public
classes, rather than the vendored click they derive from (a private module)."""
_COMPLETION_OPTIONS = ("install_completion", "show_completion")


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A sub-command by name, location (`"package.module:attribute"`) and one-line help."""

    name: str
    target: str
    help: str

    def load(self) -> Command:
        """The real command (a click command made from the Typer app or function)."""
        module_name, _, attribute = self.target.partition(":")
        obj = getattr(importlib.import_module(module_name), attribute)
        if isinstance(obj, typer.Typer):
            # Always a group, even with one command, as `add_typer` would make it.
            command: Command = get_group(obj)
        else:
            single = typer.Typer()
            single.command(self.name)(obj)
            made = get_command(single)
            if not isinstance(made, TyperCommand | TyperGroup):
                raise TypeError(f"Typer made a {type(made).__name__} of {self.target}")
            command = made
        command.name = self.name
        # Shell completion is the root's option; each sub-app would repeat it.
        command.params = [p for p in command.params if p.name not in _COMPLETION_OPTIONS]
        if not command.help:
            command.help = self.help
        command.short_help = self.help
        _plain_help(command)
        return command


def _plain_help(command: Command) -> None:
    """Help as plain text, like the root's: Typer's Rich help imports Rich's traceback,
    pretty-printer and Markdown modules, which would double the start of `--help`."""
    if isinstance(command, TyperCommand | TyperGroup):
        command.rich_markup_mode = None
    for sub in getattr(command, "commands", {}).values():
        if not sub.short_help and sub.help:
            # The whole first paragraph in listings (click would cut it at ~45 characters).
            sub.short_help = " ".join(sub.help.strip().split("\n\n", 1)[0].split())
        _plain_help(sub)


class LazyGroup(TyperGroup):
    """A Typer group whose `lazy_commands` are imported on first use.

    Unloaded commands are stand-ins carrying only their help line (enough for the
    listing of `--help`); resolving a command for a run (or its own `--help`) replaces
    the stand-in with the real one. `invoke` is the last resort of `cli/errors.py`: an
    expected failure no command caught becomes one line and exit code 1.
    """

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._lazy = {entry.name: entry for entry in self.lazy_commands}
        for entry in self.lazy_commands:
            self.commands.setdefault(
                entry.name, TyperCommand(entry.name, help=entry.help, short_help=entry.help)
            )

    def load(self, name: str) -> None:
        """Import `name`'s module and put the real command in place of its stand-in."""
        entry = self._lazy.pop(name, None)
        if entry is not None:
            self.commands[name] = entry.load()

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args:
            self.load(args[0])
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:
            exit_for(exc)
