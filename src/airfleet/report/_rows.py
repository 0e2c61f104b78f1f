"""Rows per operation, shared by the table, Markdown and CSV renderers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airfleet.results import Outcome, Result, Summary

__all__ = ["Columns", "columns_for", "detail", "summary_line"]

Row = list[str]


@dataclass(frozen=True, slots=True)
class Columns:
    """Column names and a function making a result's rows (several for listings)."""

    names: tuple[str, ...]
    rows: Callable[[Result], list[Row]]


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _slots(value: Any) -> str:
    return "unlimited" if value == -1 else _fmt(value)


def detail(result: Result) -> str:
    """One cell saying what a result means: its error, or its data in short."""
    if result.outcome is not Outcome.OK and result.error:
        return result.error
    data = result.data
    if result.operation == "trigger":
        state = data.get("final_state") or data.get("state")
        extra = " (already existed)" if data.get("already_existed") else ""
        return f"{data.get('dag_run_id', '')} {state or ''}{extra}".strip()
    return ", ".join(f"{k}={_fmt(v)}" for k, v in data.items() if not isinstance(v, list | dict))


def _failure_row(result: Result, width: int) -> list[Row]:
    cells = [result.deployment, result.outcome.value, result.error or ""]
    return [cells + [""] * (width - len(cells))]


def _dags(result: Result) -> list[Row]:
    if result.outcome is not Outcome.OK:
        return _failure_row(result, 4)
    return [
        [result.deployment, d["dag_id"], _fmt(d.get("is_paused")), ", ".join(d.get("tags", []))]
        for d in result.data.get("dags", [])
    ]


def _pools(result: Result) -> list[Row]:
    if result.outcome is not Outcome.OK:
        return _failure_row(result, 6)
    return [
        [
            result.deployment,
            p["name"],
            _slots(p.get("slots")),
            _fmt(p.get("occupied_slots")),
            _fmt(p.get("queued_slots")),
            _slots(p.get("open_slots")),
        ]
        for p in result.data.get("pools", [])
    ]


def _audit(result: Result) -> list[Row]:
    data = result.data
    if result.outcome is not Outcome.OK and not data.get("drift"):
        return _failure_row(result, 4)
    drift = data.get("drift", [])
    if not drift:
        return [[result.deployment, "in sync", "", ""]]
    applied = {a["pool"]: a for a in data.get("applied", [])}
    rows = []
    for d in drift:
        fix = applied.get(d["pool"])
        if fix is None:
            action = ""
        elif fix.get("outcome") == "ok":
            action = f"{fix['action']}d"
        else:
            action = f"{fix['action']} failed: {fix.get('error') or ''}"
        rows.append(
            [
                result.deployment,
                f"{d['pool']} {d['field']}",
                f"{_fmt(d['want'])} → {_fmt(d['have'])}",
                action,
            ]
        )
    return rows


def _health(result: Result) -> list[Row]:
    data = result.data
    if not data:
        return _failure_row(result, 5)
    bad = [k for k, v in data.get("components", {}).items() if v not in ("healthy", None)]
    return [
        [
            result.deployment,
            _fmt(data.get("version")),
            _fmt(data.get("api")),
            _fmt(data.get("healthy")),
            ", ".join(bad) or (result.error or ""),
        ]
    ]


def _trigger(result: Result) -> list[Row]:
    data = result.data
    note = result.error or ("already existed" if data.get("already_existed") else "")
    duration = data.get("duration_s")
    return [
        [
            result.deployment,
            result.target,
            result.outcome.value,
            _fmt(data.get("final_state") or data.get("state")),
            str(result.attempts),
            f"{result.latency_ms:.0f}",
            _fmt(duration) if duration is not None else "",
            note,
        ]
    ]


def _generic(result: Result) -> list[Row]:
    return [
        [
            result.deployment,
            result.target,
            result.outcome.value,
            _fmt(result.status),
            str(result.attempts),
            f"{result.latency_ms:.0f}",
            detail(result),
        ]
    ]


GENERIC = Columns(
    ("deployment", "target", "outcome", "status", "attempts", "ms", "detail"), _generic
)
_BY_OPERATION = {
    "trigger": Columns(
        ("deployment", "dag", "outcome", "state", "attempts", "ms", "run s", "note"), _trigger
    ),
    "dags": Columns(("deployment", "dag_id", "paused", "tags"), _dags),
    "pools": Columns(("deployment", "pool", "slots", "occupied", "queued", "open"), _pools),
    "audit_pools": Columns(("deployment", "drift", "want → have", "applied"), _audit),
    "health": Columns(("deployment", "version", "api", "healthy", "problems"), _health),
}


def columns_for(operation: str) -> Columns:
    """The columns that show ``operation``'s results best."""
    return _BY_OPERATION.get(operation, GENERIC)


def fleet_totals(operation: str, results: Sequence[Result]) -> str | None:
    """Fleet-wide pool utilisation, for the pools and audit tables."""
    slots = occupied = queued = 0
    busy: list[str] = []
    for result in results:
        if operation == "audit_pools":
            use = result.data.get("utilisation")
            if not use:
                continue
            slots, occupied, queued = (
                slots + use["slots"],
                occupied + use["occupied"],
                queued + use["queued"],
            )
            busy += [f"{result.deployment}/{name}" for name in use["busy_pools"]]
        elif operation == "pools":
            for pool in result.data.get("pools", []):
                slots += max(pool.get("slots", 0), 0)
                occupied += pool.get("occupied_slots", 0)
                queued += pool.get("queued_slots", 0)
        else:
            return None
    line = f"fleet-wide pools: {slots} slots, {occupied} occupied, {queued} queued"
    if busy:
        shown = ", ".join(busy[:10]) + (f" and {len(busy) - 10} more" if len(busy) > 10 else "")
        line += f"; queued or full: {shown}"
    return line


def summary_line(summary: Summary) -> str:
    """``trigger: 198 ok, 2 failed, 0 skipped of 200 calls in 3.41 s (...)``."""
    s = summary
    line = (
        f"{s.operation}: {s.ok} ok, {s.failed} failed, {s.skipped} skipped of {s.total} calls "
        f"in {s.duration_s:.2f} s ({s.requests} requests, {s.retries} retries, "
        f"{s.token_fetches} token fetches, p95 {s.latency_p95_ms:.0f} ms)"
    )
    return line + (" - interrupted" if s.interrupted else "")


def run_ids(results: Sequence[Result]) -> list[str]:
    """The distinct trigger run ids, in first-seen order."""
    seen: dict[str, None] = {}
    for result in results:
        run_id = result.data.get("dag_run_id")
        if isinstance(run_id, str):
            seen.setdefault(run_id, None)
    return list(seen)


def ordered(results: Sequence[Result]) -> list[Result]:
    """Failed first, then skipped, then ok; by deployment within each."""
    rank = {Outcome.FAILED: 0, Outcome.SKIPPED: 1, Outcome.OK: 2}
    return sorted(results, key=lambda r: (rank[r.outcome], r.deployment, r.target))
