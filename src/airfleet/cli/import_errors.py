"""``airfleet import-errors``: DAG files that no longer import, on every selected deployment."""

from __future__ import annotations

import click

from airfleet.cli._context import CliContext, report_options, select_option
from airfleet.operations import plan_import_errors
from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet import-errors
  airfleet import-errors -s tag:prod --report junit -o import-errors.xml
Exit 1 when any deployment has an import error, 0 when none has.
"""


@click.command(name="import-errors", epilog=EPILOG)
@select_option
@report_options
@click.pass_obj
def import_errors(
    obj: CliContext,
    selectors: tuple[str, ...],
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """List the import errors of every selected deployment (the whole trace in json)."""
    fleet = obj.fleet()
    plan = plan_import_errors(obj.selected(fleet, selectors))
    raise SystemExit(obj.execute(fleet, plan, report_format=report_format, output=output))
