"""``--dry-run``: show the requests a plan would send, without secrets, sending nothing."""

from __future__ import annotations

import json

from rich.console import Console
from rich.table import Table

from airfleet.dialects import dialect_named
from airfleet.plan import Plan, PlannedRequest

__all__ = ["planned_requests", "print_plan"]


def planned_requests(plan: Plan) -> list[PlannedRequest]:
    """Every request of the plan its specs preview (a change's, or a read command's
    first page). ``api: auto`` deployments show the v2 form,
    since which one applies is only known by asking the server (a dry run asks nothing)."""
    rows = []
    for call in plan.calls:
        if call.deployment.unavailable is not None:
            continue  # its calls are skipped: nothing would be sent
        api = call.deployment.api
        dialect = dialect_named("v2" if api == "auto" else api)
        label = "auto (v2 shown)" if api == "auto" else api
        for request in call.spec.preview(dialect):
            query = "&".join(f"{k}={v}" for k, v in request.params)
            path = request.path + (f"?{query}" if query else "")
            rows.append(
                PlannedRequest(call.deployment.name, label, request.method, path, request.json)
            )
    return rows


def print_plan(plan: Plan, *, console: Console, as_json: bool) -> None:
    rows = planned_requests(plan)
    skipped: dict[str, str] = {}
    for call in plan.calls:
        reason = call.deployment.unavailable
        if reason is not None:
            skipped.setdefault(call.deployment.name, reason)
    if as_json:
        payload = {
            "dry_run": True,
            "operation": plan.operation,
            "calls": len(plan),
            "skipped": [{"deployment": name, "reason": why} for name, why in skipped.items()],
            "requests": [
                {
                    "deployment": r.deployment,
                    "api": r.api,
                    "method": r.method,
                    "path": r.path,
                    "body": r.body,
                }
                for r in rows
            ],
        }
        console.file.write(json.dumps(payload, indent=2) + "\n")
        return
    table = Table(title=f"dry run: {plan.operation}, {len(plan)} calls, nothing sent")
    for column in ("deployment", "api", "method", "path", "body"):
        table.add_column(column, overflow="fold")
    for r in rows:
        body = json.dumps(r.body, sort_keys=True) if r.body is not None else ""
        table.add_row(r.deployment, r.api, r.method, r.path, body)
    console.print(table)
    for name, why in skipped.items():
        console.print(f"not sent to {name}: {why}", highlight=False, markup=False)
