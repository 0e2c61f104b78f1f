"""``airfleet audit pools``: compare pools with a spec, report drift, optionally fix it."""

from __future__ import annotations

import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._dry_run import print_plan
from airfleet.engine import Engine, RunReport
from airfleet.operations.audit import fixes_from, merge_applied, plan_audit, plan_fixes
from airfleet.pool_spec import load_pool_spec
from airfleet.report import ReportFormat
from airfleet.results import Collector

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
    spec = load_pool_spec(spec_path)
    fleet = obj.fleet()
    deployments = obj.selected(fleet, selectors)
    plan = plan_audit(deployments, spec, prune=prune)
    as_json = obj.format_for(report_format, output) not in ("table", "markdown")
    by_name = {d.name: d for d in deployments}

    async def follow_up(engine: Engine, report: RunReport) -> RunReport | None:
        audited = {
            by_name[result.deployment]: fixes_from(result.data)
            for result in report.results
            if result.data.get("fixes")
        }
        fixes = plan_fixes(audited)
        if dry_run:
            print_plan(fixes, console=obj.stdout, as_json=as_json)
            return None
        if not apply or not fixes.calls:
            return report
        return merge(report, await engine.run(fixes))

    code = obj.execute(
        fleet,
        plan,
        report_format=report_format,
        output=output,
        follow_up=follow_up if (apply or dry_run) else None,
    )
    raise SystemExit(code)


def merge(audit_report: RunReport, applied: RunReport) -> RunReport:
    """The audit's report with the fixes' outcomes folded in (see merge_applied)."""
    merged = merge_applied(audit_report.results, applied.results)
    collector = Collector(
        audit_report.summary.operation, started_at=audit_report.summary.started_at
    )
    collector.extend(merged)
    summary = collector.summary(
        duration_s=audit_report.summary.duration_s + applied.summary.duration_s,
        token_fetches=audit_report.summary.token_fetches + applied.summary.token_fetches,
        interrupted=applied.summary.interrupted,
    )
    return RunReport(summary, tuple(merged))
