"""``airfleet dags``: every DAG of every selected deployment."""

from __future__ import annotations

import click

from airfleet.cli._context import CliContext, report_options, select_option
from airfleet.operations import plan_dags
from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet dags -s tag:prod
  airfleet dags --pattern 'refresh_*' --paused --report csv -o paused.csv
"""


@click.command(epilog=EPILOG)
@select_option
@click.option("--pattern", metavar="GLOB", help="Only DAG ids matching this glob.")
@click.option(
    "--paused/--active", "paused", default=None, help="Only paused (or only active) DAGs."
)
@report_options
@click.pass_obj
def dags(
    obj: CliContext,
    selectors: tuple[str, ...],
    pattern: str | None,
    paused: bool | None,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """List the DAGs of every selected deployment (all pages, fetched concurrently)."""
    fleet = obj.fleet()
    plan = plan_dags(obj.selected(fleet, selectors), pattern=pattern, paused=paused)
    raise SystemExit(obj.execute(fleet, plan, report_format=report_format, output=output))
