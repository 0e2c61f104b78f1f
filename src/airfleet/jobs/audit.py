"""Audit pools, then apply the fixes: the one sequence `audit pools --apply` and a job step share.

The audit is one read-only call per deployment; the fixes it finds are a
second plan, run on the same engine (same tokens, same detected dialects).
The caller gets one result per deployment either way: the audit's, with the
outcomes of its fixes folded in. The pure parts (planning, comparing,
merging results) are in :mod:`airfleet.operations.audit`.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

from airfleet.engine import Engine, RunReport
from airfleet.inventory import Deployment, FleetLimits
from airfleet.operations.audit import Fix, fixes_from, merge_applied, plan_fixes
from airfleet.plan import Plan
from airfleet.results import Collector

__all__ = ["audit_pools", "fixes_for", "merge_reports"]


async def audit_pools(
    engine: Engine,
    plan: Plan,
    *,
    apply: bool,
    stop: anyio.Event | None = None,
    limits: FleetLimits | None = None,
    on_fixes_planned: Callable[[Plan], None] | None = None,
) -> RunReport:
    """Run the audit ``plan`` (from ``plan_audit``), then, with ``apply``, its fixes.

    ``on_fixes_planned`` sees the plan of fixes once the audit is done and
    before any fix is sent (a dry run prints it and passes ``apply=False``).
    Neither it nor the fixes run if ``stop`` was set during the audit.
    Both runs use ``limits`` (default: the fleet's). Returns the audit's
    report when nothing was applied, else the merged report (see
    :func:`merge_reports`).
    """
    audit = await engine.run(plan, limits=limits, stop=stop)
    if stop is not None and stop.is_set():
        return audit
    fixes = fixes_for(plan, audit)
    if on_fixes_planned is not None:
        on_fixes_planned(fixes)
    if not apply or not fixes.calls:
        return audit
    applied = await engine.run(fixes, limits=limits, stop=stop)
    return merge_reports(audit, applied)


def fixes_for(plan: Plan, audit: RunReport) -> Plan:
    """The fixes the audit's results planned, in the audit plan's deployment order."""
    found = {result.deployment: result for result in audit.results}
    audited: dict[Deployment, list[Fix]] = {}
    for call in plan.calls:
        result = found.get(call.deployment.name)
        if result is not None and result.data.get("fixes"):
            audited[call.deployment] = fixes_from(result.data)
    return plan_fixes(audited)


def merge_reports(audit: RunReport, applied: RunReport) -> RunReport:
    """The audit's report with the fixes' outcomes folded in, one result per deployment.

    The summary is the audit's operation and start; its duration, requests
    and token fetches are those of both runs added up.
    """
    merged = merge_applied(audit.results, applied.results)
    collector = Collector(audit.summary.operation, started_at=audit.summary.started_at)
    collector.extend(merged)
    summary = collector.summary(
        duration_s=audit.summary.duration_s + applied.summary.duration_s,
        requests=audit.summary.requests + applied.summary.requests,
        token_fetches=audit.summary.token_fetches + applied.summary.token_fetches,
        interrupted=applied.summary.interrupted,
    )
    return RunReport(summary, tuple(merged))
