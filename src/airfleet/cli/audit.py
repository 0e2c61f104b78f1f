"""``airfleet audit pools``: compare pools with a spec, report drift, optionally fix it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._dry_run import print_plan
from airfleet.cli._flags import check_dry_run_output
from airfleet.cli._running import OnResult
from airfleet.engine import Engine, RunReport
from airfleet.errors import UsageError
from airfleet.jobs.audit import audit_pools
from airfleet.operations.audit import plan_audit
from airfleet.plan import Plan
from airfleet.pool_spec import load_pool_spec

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet audit pools --spec pools.yaml                  # report drift; exit 1 if any
  airfleet audit pools --spec pools.yaml -s tag:prod --apply --dry-run
  airfleet audit pools --spec pools.yaml --apply          # create and fix pools
  airfleet audit pools --spec pools.yaml --apply --prune  # also delete pools not in the spec
"""


@click.group()
def audit() -> None:
    """Compare the fleet with a desired state."""


@audit.command(epilog=EPILOG)
@click.option(
    "--spec",
    "spec_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="pools.yaml: the desired pools (see configs/pools.yaml).",
)
@select_option
@click.option("--apply", is_flag=True, help="Create missing pools and fix mismatches.")
@click.option("--prune", is_flag=True, help="With --apply, delete pools that are not in the spec.")
@run_options
@report_options
@click.pass_obj
def pools(
    obj: CliContext,
    spec_path: str,
    selectors: tuple[str, ...],
    apply: bool,
    prune: bool,
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """Report pools that differ from the spec on every selected deployment.

    Drift is missing pools, slot, description or include_deferred
    mismatches, and pools not in the spec. Exit 0 when everything matches
    (or --apply fixed it), 1 when drift remains. --dry-run reads the pools
    and prints the changes --apply would send, sending none.
    """
    if prune and not apply:
        raise UsageError(
            "--prune deletes pools only with --apply: add --apply (and --dry-run to see "
            "the deletes first)"
        )
    check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
    spec = load_pool_spec(spec_path)
    fleet = obj.fleet()
    deployments = obj.selected(fleet, selectors)
    plan = plan_audit(deployments, spec, prune=prune)
    if not (apply or dry_run):
        code = obj.execute(fleet, plan, report_format=report_format, output=output)
        raise SystemExit(code)
    fixes: list[Plan] = []

    async def body(engine: Engine, stop: anyio.Event, _: OnResult | None) -> RunReport | int:
        # The audit itself only reads, so a dry run runs it for real and
        # stops short of the fixes, which it prints instead of a report.
        report = await audit_pools(
            engine,
            plan,
            apply=not dry_run,
            stop=stop,
            on_fixes_planned=fixes.append if dry_run else None,
        )
        if fixes:
            as_json = obj.format_for(report_format, output) not in ("table", "markdown")
            print_plan(fixes[0], console=obj.stdout, as_json=as_json)
            return report.summary.exit_code
        return report

    code = obj.run_body(
        fleet,
        body,
        total=len(plan),
        operation=plan.operation,
        report_format=report_format,
        output=output,
        streams=False,
    )
    raise SystemExit(code)
