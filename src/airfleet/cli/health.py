"""``airfleet health``: version, API dialect and health of each deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airfleet.cli._context import CliContext, report_options, select_option

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet health
  airfleet health -s tag:prod --report junit -o health.xml
"""


@click.command(epilog=EPILOG)
@select_option
@report_options
@click.pass_obj
def health(
    obj: CliContext,
    selectors: tuple[str, ...],
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """Show each deployment's Airflow version, API (v1/v2) and health."""
    fleet = obj.fleet()
    # Imported once the fleet is read: a bad file is told without the operations.
    from airfleet.operations import plan_health

    plan = plan_health(obj.selected(fleet, selectors))
    raise SystemExit(obj.execute(fleet, plan, report_format=report_format, output=output))
