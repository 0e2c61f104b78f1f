"""Rows per operation, shared by the table, Markdown and CSV renderers."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from airfleet.report._layout import Column
from airfleet.results import Outcome, Result, Summary

__all__ = ["Columns", "columns_for", "detail", "notes", "summary_line"]

Row = list[str]

# Identifiers a table shows whole; numbers it right-aligns.
KEYS = frozenset({"step", "deployment"})
_NUMBERS = frozenset(
    {"attempts", "ms", "run s", "status", "slots", "occupied", "queued", "open", "runs"}
)
# Short headers for a narrow terminal (CSV and Markdown keep the names).
_HEADERS = {"attempts": "tries"}
# Sentences, which wrap before a name does.
_PROSE = frozenset(
    {"note", "error", "detail", "tags", "problems", "applied", "want → have", "error message"}
)


@dataclass(frozen=True, slots=True)
class Columns:
    """Column names and a function making a result's rows (several for listings).

    ``wrap``: the free-text columns, which wrap in a terminal table; the
    others are identifiers and short values, kept on one line. ``error`` is
    a failed or skipped call's reason, in its own column, never in a data
    column.
    """

    names: tuple[str, ...]
    rows: Callable[[Result], list[Row]]
    wrap: frozenset[str] = frozenset()

    def layout(self) -> tuple[Column, ...]:
        """The table's view of these columns."""
        return tuple(
            Column(
                _HEADERS.get(name, name),
                kind="key" if name in KEYS else "text" if name in self.wrap else "short",
                justify="right" if name in _NUMBERS else "left",
                prose=name in _PROSE,
            )
            for name in self.names
        )


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


def notes(result: Result) -> str:
    """What a trigger result's data says beyond its state, in words; for another
    call in a trigger's report (``--unpause``), what it was."""
    data = result.data
    if result.operation != "trigger":
        done = result.ok and result.operation in ("pause", "unpause")
        return f"{result.operation}d" if done else result.operation
    said = [
        "DAG paused" if data.get("dag_paused") else "",
        "already existed" if data.get("already_existed") else "",
        "effect unknown" if data.get("effect") == "unknown" else "",
        "interrupted" if data.get("interrupted") else "",
        "from journal" if data.get("from_journal") else "",
    ]
    return ", ".join(note for note in said if note)


def detail(result: Result) -> str:
    """One cell saying what a result's data means, in short (its error has its own)."""
    data = result.data
    if result.operation == "trigger":
        state = data.get("final_state") or data.get("state")
        said = notes(result)
        text = f"{data.get('dag_run_id', '')} {state or ''}".strip()
        return f"{text}; {said}" if text and said else text or said
    return ", ".join(f"{k}={_fmt(v)}" for k, v in data.items() if not isinstance(v, list | dict))


def _reason(result: Result) -> str:
    """The error cell of a table with no outcome column: a skip says it is one."""
    if result.outcome is Outcome.SKIPPED:
        return f"skipped: {result.error}" if result.error else "skipped"
    return result.error or result.outcome.value


def _failure_row(result: Result, width: int) -> list[Row]:
    """A listing that could not be read: the deployment, blanks, the reason last."""
    return [[result.deployment, *[""] * (width - 2), _reason(result)]]


def _dags(result: Result) -> list[Row]:
    if result.outcome is not Outcome.OK:
        return _failure_row(result, 5)
    return [
        [
            result.deployment,
            d["dag_id"],
            _fmt(d.get("is_paused")),
            ", ".join(d.get("tags", [])),
            "",
        ]
        for d in result.data.get("dags", [])
    ]


def _pools(result: Result) -> list[Row]:
    if result.outcome is not Outcome.OK:
        return _failure_row(result, 7)
    return [
        [
            result.deployment,
            p["name"],
            _slots(p.get("slots")),
            _fmt(p.get("occupied_slots")),
            _fmt(p.get("queued_slots")),
            _slots(p.get("open_slots")),
            "",
        ]
        for p in result.data.get("pools", [])
    ]


def _audit(result: Result) -> list[Row]:
    data = result.data
    if result.outcome is not Outcome.OK and not data.get("drift"):
        return _failure_row(result, 5)
    drift = data.get("drift", [])
    if not drift:
        return [[result.deployment, "in sync", "", "", ""]]
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
                "",
            ]
        )
    # A failed audit with drift (a fix that failed): the reason once, on its first row.
    rows[0][-1] = "" if result.ok else _reason(result)
    return rows


def _health(result: Result) -> list[Row]:
    data = result.data
    if not data:
        return _failure_row(result, 6)
    bad = [k for k, v in data.get("components", {}).items() if v not in ("healthy", None)]
    return [
        [
            result.deployment,
            _fmt(data.get("version")),
            _fmt(data.get("api")),
            _fmt(data.get("healthy")),
            ", ".join(bad),
            "" if result.ok else _reason(result),
        ]
    ]


def _trigger(result: Result) -> list[Row]:
    data = result.data
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
            notes(result),
            result.error or "",
        ]
    ]


def _runs(result: Result) -> list[Row]:
    """One row per deployment: its runs counted by state, and which failed."""
    if result.outcome is not Outcome.OK:
        return _failure_row(result, 5)
    data = result.data
    by_state = data.get("by_state", {})
    failed = [
        f"{r['dag_id']} {r['dag_run_id']}"
        for r in data.get("runs", [])
        if r.get("state") == "failed"
    ]
    shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
    states = ", ".join(f"{state} {count}" for state, count in by_state.items())
    return [[result.deployment, _fmt(data.get("total")), states, shown, ""]]


def _import_errors(result: Result) -> list[Row]:
    """One row per import error (a deployment without any: one row saying so)."""
    errors = result.data.get("import_errors")
    if not isinstance(errors, list):
        return _failure_row(result, 5)
    if not errors:
        return [[result.deployment, "none", "", "", ""]]
    return [
        [result.deployment, e["filename"], _fmt(e.get("timestamp")), e.get("message") or "", ""]
        for e in errors
    ]


def _api(result: Result) -> list[Row]:
    """The answer in one cell: its JSON, cut to a screenful."""
    answer = json.dumps(dict(result.data), sort_keys=True) if result.data else ""
    if len(answer) > 300:
        answer = answer[:297] + "..."
    return [
        [
            result.deployment,
            result.target,
            _fmt(result.status),
            answer,
            "" if result.ok else _reason(result),
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
            result.error or "",
        ]
    ]


GENERIC = Columns(
    ("deployment", "target", "outcome", "status", "attempts", "ms", "detail", "error"),
    _generic,
    frozenset({"target", "detail", "error"}),
)
_BY_OPERATION = {
    "trigger": Columns(
        ("deployment", "dag", "outcome", "state", "attempts", "ms", "run s", "note", "error"),
        _trigger,
        frozenset({"dag", "note", "error"}),
    ),
    "dags": Columns(
        ("deployment", "dag_id", "paused", "tags", "error"),
        _dags,
        frozenset({"dag_id", "tags", "error"}),
    ),
    "pools": Columns(
        ("deployment", "pool", "slots", "occupied", "queued", "open", "error"),
        _pools,
        frozenset({"pool", "error"}),
    ),
    "audit_pools": Columns(
        ("deployment", "drift", "want → have", "applied", "error"),
        _audit,
        frozenset({"drift", "want → have", "applied", "error"}),
    ),
    "health": Columns(
        ("deployment", "version", "api", "healthy", "problems", "error"),
        _health,
        frozenset({"problems", "error"}),
    ),
    "runs": Columns(
        ("deployment", "runs", "by state", "failed", "error"),
        _runs,
        frozenset({"by state", "failed", "error"}),
    ),
    "import_errors": Columns(
        ("deployment", "file", "since", "error message", "error"),
        _import_errors,
        frozenset({"file", "error message", "error"}),
    ),
    "api": Columns(
        ("deployment", "request", "status", "answer", "error"),
        _api,
        frozenset({"request", "answer", "error"}),
    ),
}


def _with_step(columns: Columns) -> Columns:
    def rows(result: Result) -> list[Row]:
        return [[result.step or "", *row] for row in columns.rows(result)]

    return Columns(("step", *columns.names), rows, columns.wrap)


def columns_for(operation: str, *, steps: bool = False) -> Columns:
    """The columns that show ``operation``'s results best; ``steps``: a job's, step first."""
    columns = _BY_OPERATION.get(operation, GENERIC)
    return _with_step(columns) if steps else columns


def has_steps(results: Sequence[Result]) -> bool:
    """Whether these are a job's results (each names its step)."""
    return any(result.step is not None for result in results)


def shown(names: Sequence[str], rows: Sequence[Row]) -> list[int]:
    """The columns worth showing: identifiers always, the others if a row fills them."""
    return [i for i, name in enumerate(names) if name in KEYS or any(row[i] for row in rows)]


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
    """Failed first, then skipped, then ok; by step (in job order), then deployment."""
    rank = {Outcome.FAILED: 0, Outcome.SKIPPED: 1, Outcome.OK: 2}
    steps: dict[str | None, int] = {}
    for result in results:
        steps.setdefault(result.step, len(steps))
    return sorted(results, key=lambda r: (rank[r.outcome], steps[r.step], r.deployment, r.target))
