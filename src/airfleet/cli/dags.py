"""``airfleet dags``: every DAG of every selected deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airfleet.cli._context import CliContext, report_options, select_option
from airfleet.errors import UsageError

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet dags -s tag:prod
  airfleet dags --pattern 'refresh_*' --paused --report csv -o paused.csv
"""


@click.command(epilog=EPILOG)
@select_option
@click.option("--pattern", metavar="GLOB", help="Only DAG ids matching this glob.")
# Two flags rather than click's --paused/--active pair, which silently
# keeps whichever comes last: both given is a contradiction to report.
@click.option("--paused", is_flag=True, help="Only paused DAGs.")
@click.option("--active", is_flag=True, help="Only active (unpaused) DAGs.")
@report_options
@click.pass_obj
def dags(
    obj: CliContext,
    selectors: tuple[str, ...],
    pattern: str | None,
    paused: bool,
    active: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """List the DAGs of every selected deployment (all pages, fetched concurrently)."""
    if paused and active:
        raise UsageError("--paused and --active contradict each other: give one, or neither")
    fleet = obj.fleet()
    only_paused = paused if paused or active else None  # None: paused and active alike
    # Imported once the fleet is read: a bad file is told without the operations.
    from airfleet.operations import plan_dags

    plan = plan_dags(obj.selected(fleet, selectors), pattern=pattern, paused=only_paused)
    raise SystemExit(obj.execute(fleet, plan, report_format=report_format, output=output))
