"""A click group that imports a subcommand's module when that subcommand is used.

Click's "lazily loading subcommands" pattern: a subcommand's module imports
what it runs with (the engine, aiohttp, rich), so importing them all would
make ``airfleet --help`` wait for every one. Listing them (``--help``, the
shell completion of a command name) reads each one's summary from the table
instead: the first sentence of its help, which click shortens to the
terminal's width as it would shorten the help itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from gettext import gettext as _
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

__all__ = ["LazyGroup", "Subcommand"]


@dataclass(frozen=True, slots=True)
class Subcommand:
    """A subcommand not imported yet: its module and attribute, and the first
    sentence of its help (tests/test_startup.py holds it equal to the command's)."""

    module: str
    attribute: str
    summary: str


class LazyGroup(click.Group):
    """A group of :class:`Subcommand` entries, each imported on first use."""

    def __init__(self, *args: Any, subcommands: Mapping[str, Subcommand], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.subcommands = dict(subcommands)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.subcommands)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.subcommands.get(cmd_name)
        if entry is None:
            return None
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # click.Group's own layout, from the summaries.
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section(_("Commands")):
            formatter.write_dl([(name, self._short_help(name, limit)) for name in names])

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        from click.shell_completion import CompletionItem

        names = [name for name in self.list_commands(ctx) if name.startswith(incomplete)]
        results = [CompletionItem(name, help=self._short_help(name)) for name in names]
        # The group's options, completed as click.Command completes them
        # (click.Group's own completion would import each command for its help).
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results

    def _short_help(self, name: str, limit: int = 45) -> str:
        # A stand-in whose help is the summary: click shortens it, to the
        # same words as the command's own help.
        stand_in = click.Command(name, help=self.subcommands[name].summary)
        return stand_in.get_short_help_str(limit)
