"""``airfleet runs``: the DAG runs of every selected deployment, by state and time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._flags import check_dry_run_output, check_listed_once
from airfleet.operations import parse_since, plan_runs
from airfleet.operations.reads import RUN_STATES

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet runs --state failed --since 24h
  airfleet runs nightly_load --since 2026-11-30T00:00Z -s tag:prod
  airfleet runs --state failed --since 12h --report markdown >> "$GITHUB_STEP_SUMMARY"
  airfleet runs --limit 5 --report json -o latest.json
"""


@click.command(epilog=EPILOG)
@click.argument("dag_ids", nargs=-1, metavar="[DAG_ID...]")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice(RUN_STATES),
    help="Only runs in this state (repeat for several).",
)
@click.option(
    "--since",
    metavar="DURATION|ISO",
    help="Only runs from then on: 30m, 24h, 7d, or 2026-11-30T00:00Z.",
)
@click.option("--limit", type=click.IntRange(min=1), help="At most N runs per deployment, newest.")
@select_option
@run_options
@report_options
@click.pass_obj
def runs(
    obj: CliContext,
    dag_ids: tuple[str, ...],
    states: tuple[str, ...],
    since: str | None,
    limit: int | None,
    selectors: tuple[str, ...],
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """List the DAG runs of every selected deployment (all DAGs unless DAG_IDs), newest first.

    On Airflow 2, --since is when a run started; on Airflow 3, when it was
    due to run, so a run still queued counts too.
    """
    check_listed_once(dag_ids, what="DAG")
    check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
    after = parse_since(since) if since is not None else None
    fleet = obj.fleet()
    plan = plan_runs(
        obj.selected(fleet, selectors), dag_ids, states=states, since=after, limit=limit
    )
    code = obj.execute(fleet, plan, report_format=report_format, output=output, dry_run=dry_run)
    raise SystemExit(code)
