"""``airfleet import-errors``: DAG files that no longer import, on every selected deployment."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._flags import check_dry_run_output

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet import-errors
  airfleet import-errors -s tag:prod --report junit -o import-errors.xml
Exit 1 when any deployment has an import error, 0 when none has.
"""


@click.command(name="import-errors", epilog=EPILOG)
@select_option
@run_options
@report_options
@click.pass_obj
def import_errors(
    obj: CliContext,
    selectors: tuple[str, ...],
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """List the import errors of every selected deployment (the whole trace in json)."""
    check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
    fleet = obj.fleet()
    # Imported once the fleet is read: a bad file is told without the operations.
    from airfleet.operations import plan_import_errors

    plan = plan_import_errors(obj.selected(fleet, selectors))
    code = obj.execute(fleet, plan, report_format=report_format, output=output, dry_run=dry_run)
    raise SystemExit(code)
