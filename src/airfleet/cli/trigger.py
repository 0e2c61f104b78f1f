"""``airfleet trigger``: trigger DAGs on every selected deployment, once each."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.errors import UsageError
from airfleet.operations import make_run_id, plan_trigger
from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet trigger refresh_dims -s tag:prod
  airfleet trigger refresh_dims nightly_load -s tag:prod -s tag:eu --conf '{"full": true}'
  airfleet trigger refresh_dims --run-id backfill-2026-11-24 --wait --timeout 1800
  airfleet trigger refresh_dims --conf @conf.json --dry-run
"""


@click.command(epilog=EPILOG)
@click.argument("dag_ids", nargs=-1, required=True, metavar="DAG_ID...")
@select_option
@click.option("--conf", help="Run conf: a JSON object, or @FILE holding one.")
@click.option("--logical-date", help="ISO-8601 logical date (default: now).")
@click.option(
    "--run-id",
    help="Run id to use everywhere (default: one generated per invocation). "
    "Re-running with the same id never makes a second run.",
)
@click.option("--note", help="Note attached to each run.")
@click.option("--wait", is_flag=True, help="Wait for every run to finish.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=3600.0,
    show_default=True,
    help="With --wait: seconds to wait per run.",
)
@click.option(
    "--poll",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    help="With --wait: longest pause between polls of a run, in seconds.",
)
@run_options
@report_options
@click.pass_obj
def trigger(
    obj: CliContext,
    dag_ids: tuple[str, ...],
    selectors: tuple[str, ...],
    conf: str | None,
    logical_date: str | None,
    run_id: str | None,
    note: str | None,
    wait: bool,
    timeout: float,
    poll: float,
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """Trigger DAG_ID... on every selected deployment.

    One run id serves the whole invocation, on every deployment and every
    retry, so a retried request never makes a second run.
    """
    conf_value = parse_conf(conf)
    if logical_date is not None:
        logical_date = parse_logical_date(logical_date)
    fleet = obj.fleet()
    deployments = obj.selected(fleet, selectors)
    run_id = run_id or make_run_id()
    plan = plan_trigger(
        deployments,
        dag_ids,
        run_id=run_id,
        conf=conf_value,
        logical_date=logical_date,
        note=note,
        wait=wait,
        timeout_s=timeout,
        poll_s=poll,
    )
    # On stderr before anything is sent: whatever happens next (a kill, a
    # report that is not a table), the id that settles this invocation with
    # --run-id is on the terminal or in the log.
    code = obj.execute(
        fleet,
        plan,
        report_format=report_format,
        output=output,
        dry_run=dry_run,
        announce=f"run id: {run_id}",
    )
    raise SystemExit(code)


def parse_conf(value: str | None) -> dict[str, Any]:
    """``--conf``: a JSON object, or ``@file`` holding one."""
    if value is None:
        return {}
    source = "--conf"
    text = value
    if value.startswith("@"):
        path = Path(value[1:])
        source = f"--conf file {path}"
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"{source}: cannot read it ({exc.strerror})") from exc
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            """pass an object such as '{"full": true}'"""
        ) from exc
    if not isinstance(parsed, dict):
        raise UsageError(f"{source} must be a JSON object, not {type(parsed).__name__}")
    return parsed


def parse_logical_date(value: str) -> str:
    """Validate an ISO-8601 date-time; a date without a zone is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(
            f"--logical-date {value!r} is not an ISO-8601 date-time; use e.g. 2026-11-24T00:00:00Z"
        ) from exc
    if moment.tzinfo is None:
        return moment.isoformat() + "Z"
    return moment.isoformat().replace("+00:00", "Z")
