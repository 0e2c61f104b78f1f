"""``airfleet pools``: every pool of every selected deployment, with its slots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airfleet.cli._context import CliContext, report_options, select_option

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet pools -s tag:prod
  airfleet pools --report json -o pools.json
"""


@click.command(epilog=EPILOG)
@select_option
@report_options
@click.pass_obj
def pools(
    obj: CliContext,
    selectors: tuple[str, ...],
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """List pools (slots, occupied, queued, open) on every selected deployment."""
    fleet = obj.fleet()
    # Imported once the fleet is read: a bad file is told without the operations.
    from airfleet.operations import plan_pools

    plan = plan_pools(obj.selected(fleet, selectors))
    raise SystemExit(obj.execute(fleet, plan, report_format=report_format, output=output))
