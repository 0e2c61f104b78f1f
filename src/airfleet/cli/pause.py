"""``airfleet pause`` / ``airfleet unpause``: set DAGs' paused flag fleet-wide."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._flags import check_dry_run_output, check_listed_once

if TYPE_CHECKING:
    from airfleet.report import ReportFormat


def _command(paused: bool) -> click.Command:
    verb = "pause" if paused else "unpause"

    @click.command(
        name=verb,
        epilog=f"\b\nExamples:\n  airfleet {verb} nightly_load -s tag:prod\n"
        f"  airfleet {verb} nightly_load refresh_dims -s 'name:prod-*' --dry-run\n",
    )
    @click.argument("dag_ids", nargs=-1, required=True, metavar="DAG_ID...")
    @select_option
    @run_options
    @report_options
    @click.pass_obj
    def command(
        obj: CliContext,
        dag_ids: tuple[str, ...],
        selectors: tuple[str, ...],
        dry_run: bool,
        report_format: ReportFormat | None,
        output: str | None,
    ) -> None:
        check_listed_once(dag_ids, what="DAG")
        check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
        fleet = obj.fleet()
        # Imported once the fleet is read: a bad file is told without the operations.
        from airfleet.operations import plan_pause

        plan = plan_pause(obj.selected(fleet, selectors), dag_ids, paused=paused)
        code = obj.execute(fleet, plan, report_format=report_format, output=output, dry_run=dry_run)
        raise SystemExit(code)

    command.help = f"{verb.capitalize()} DAG_ID... on every selected deployment."
    return command


pause = _command(True)
unpause = _command(False)
