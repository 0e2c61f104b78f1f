"""``airfleet trigger``: trigger DAGs on every selected deployment, once each."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._flags import check_dry_run_output, check_listed_once
from airfleet.errors import UsageError
from airfleet.operations import plan_pause, plan_trigger
from airfleet.operations.trigger import (
    NO_LOGICAL_DATE,
    NoLogicalDate,
    check_run_id,
    make_run_id,
    utc_logical_date,
)
from airfleet.plan import Plan
from airfleet.results import Collector, Outcome, Result

if TYPE_CHECKING:
    import anyio

    from airfleet.engine import Engine, RunReport
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet trigger refresh_dims -s tag:prod
  airfleet trigger refresh_dims nightly_load -s tag:prod -s tag:eu --conf '{"full": true}'
  airfleet trigger refresh_dims --run-id backfill-2026-11-24 --wait --timeout 1800
  airfleet trigger refresh_dims --logical-date 2026-11-24T00:00:00Z --unpause
  airfleet trigger refresh_dims --conf @conf.json --dry-run
"""


@click.command(epilog=EPILOG)
@click.argument("dag_ids", nargs=-1, required=True, metavar="DAG_ID...")
@select_option
@click.option("--conf", help="Run conf: a JSON object, or @FILE holding one.")
@click.option(
    "--logical-date",
    metavar="ISO|none",
    help="Logical date, sent in UTC (a date-time without a zone is UTC). Default: the "
    "time of this invocation, one instant for every deployment and Airflow version. "
    "'none': a run without a logical date (Airflow 3 only).",
)
@click.option(
    "--run-id",
    help="Run id to use everywhere (default: one generated per invocation); letters, "
    "digits and . _ ~ : + -. Re-running with the same id never makes a second run.",
)
@click.option("--note", help="Note attached to each run.")
@click.option(
    "--unpause",
    is_flag=True,
    help="Unpause each DAG first (its own call and result); a DAG that fails to unpause "
    "is not triggered there.",
)
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
@click.pass_context
def trigger(
    ctx: click.Context,
    dag_ids: tuple[str, ...],
    selectors: tuple[str, ...],
    conf: str | None,
    logical_date: str | None,
    run_id: str | None,
    note: str | None,
    unpause: bool,
    wait: bool,
    timeout: float,
    poll: float,
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """Trigger DAG_ID... on every selected deployment.

    One run id and one logical date serve the whole invocation, on every
    deployment and every retry, so a retried request never makes a second
    run. A paused DAG's run cannot start: its result says dag_paused, and
    --wait fails at once (pass --unpause to unpause it first).
    """
    obj: CliContext = ctx.obj
    if not wait:
        given = [
            f"--{name}"
            for name in ("timeout", "poll")
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
        ]
        if given:
            raise UsageError(f"{' and '.join(given)} only apply with --wait; add --wait")
    check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
    check_listed_once(dag_ids, what="DAG")
    conf_value = parse_conf(conf)
    date = parse_logical_date(logical_date) if logical_date is not None else None
    if run_id is not None:
        check_run_id(run_id)
    fleet = obj.fleet()
    deployments = obj.selected(fleet, selectors)
    # One moment stamps the run id and is the default logical date.
    now = datetime.now(UTC)
    run_id = run_id or make_run_id(now)
    plan = plan_trigger(
        deployments,
        dag_ids,
        run_id=run_id,
        conf=conf_value,
        logical_date=date,
        note=note,
        wait=wait,
        timeout_s=timeout,
        poll_s=poll,
        # The unpause call's answer says the DAG is not paused.
        check_paused=not unpause,
        now=now,
    )
    # On stderr before anything is sent: whatever happens next (a kill, a
    # report that is not a table), the id that settles this invocation with
    # --run-id is on the terminal or in the log.
    announce = f"run id: {run_id}"
    if not unpause:
        code = obj.execute(
            fleet,
            plan,
            report_format=report_format,
            output=output,
            dry_run=dry_run,
            announce=announce,
        )
        raise SystemExit(code)
    unpausing = plan_pause(deployments, dag_ids, paused=False)
    if dry_run:
        both = Plan("trigger", unpausing.calls + plan.calls, mutating=True)
        raise SystemExit(
            obj.execute(fleet, both, report_format=report_format, output=output, dry_run=True)
        )
    code = obj.run_body(
        fleet,
        UnpauseThenTrigger(unpausing, plan),
        total=len(unpausing) + len(plan),
        operation="trigger",
        report_format=report_format,
        output=output,
        announce=announce,
    )
    raise SystemExit(code)


class UnpauseThenTrigger:
    """The run of ``trigger --unpause``: every unpause call, then the triggers.

    A trigger runs only where its DAG's unpause was ok; the others are
    skipped with the reason (a run of a DAG still paused would only queue).
    One report holds both: the unpause results first.
    """

    def __init__(self, unpausing: Plan, triggering: Plan) -> None:
        self.unpausing = unpausing
        self.triggering = triggering

    async def __call__(
        self, engine: Engine, stop: anyio.Event, on_result: Callable[[Result], None] | None
    ) -> RunReport:
        # Here, not at the top: the engine is loaded by the time it runs this,
        # and `airfleet trigger --help` has no use for it.
        from airfleet.engine import RunReport

        collector = Collector("trigger")
        started = time.monotonic()

        def emit(result: Result) -> None:
            collector.add(result)
            if on_result is not None:
                on_result(result)

        first = await engine.run(self.unpausing, on_result=emit, stop=stop)
        outcomes = {(r.deployment, r.target): r.outcome for r in first.results}
        ready = []
        for call in self.triggering.calls:
            outcome = outcomes.get((call.deployment.name, call.target))
            if outcome is Outcome.OK:
                ready.append(call)
            elif stop.is_set():
                emit(call.skipped("not started: the run was interrupted", interrupted=True))
            else:
                emit(call.skipped(f"not sent: unpausing {call.target} {outcome}"))
        requests, fetches = first.summary.requests, first.summary.token_fetches
        if ready:
            remaining = Plan("trigger", tuple(ready), mutating=True)
            second = await engine.run(remaining, on_result=emit, stop=stop)
            requests += second.summary.requests
            fetches += second.summary.token_fetches
        summary = collector.summary(
            duration_s=time.monotonic() - started,
            requests=requests,
            token_fetches=fetches,
            interrupted=stop.is_set(),
        )
        return RunReport(summary, tuple(collector.results))


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


def parse_logical_date(value: str) -> str | NoLogicalDate:
    """``--logical-date``: ``none``, or an ISO-8601 date-time (without a zone: UTC), in UTC."""
    if value.strip().lower() == "none":
        return NO_LOGICAL_DATE
    return utc_logical_date(value)
