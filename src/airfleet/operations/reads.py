"""Fleet-wide reads people ask every morning: DAG runs by state and time, import errors."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from airfleet.dialects.base import Dialect
from airfleet.dialects.dates import format_utc, parse_instant
from airfleet.errors import ApiError, UsageError
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, paginate, read
from airfleet.plan import Call, Plan
from airfleet.protocol import Answer, Conversation, Request, Step, Verdict
from airfleet.results import Outcome

__all__ = [
    "RUN_STATES",
    "ImportErrorsSpec",
    "RunsSpec",
    "parse_since",
    "plan_import_errors",
    "plan_runs",
]

RUN_STATES = ("queued", "running", "success", "failed")
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(text: str, *, now: datetime | None = None) -> str:
    """``--since``: a duration back from now (``24h``, ``30m``, ``7d``) or an ISO
    date-time (``2026-11-30T00:00Z``; no zone means UTC), as a UTC ``Z`` date."""
    value = text.strip()
    match = _DURATION.match(value)
    if match:
        amount, unit = int(match.group(1)), _UNITS[match.group(2)]
        moment = (now or datetime.now(UTC)) - timedelta(**{unit: amount})
        return format_utc(moment.replace(microsecond=0))
    try:
        return format_utc(parse_instant(value))
    except ValueError:
        raise UsageError(
            f"--since {text!r}: give a duration back from now (30m, 24h, 7d) or an "
            "ISO date-time (2026-11-30T00:00Z)"
        ) from None


@dataclass(frozen=True, slots=True)
class RunsSpec:
    """The DAG runs of one deployment: every page, newest first.

    ``dag_ids``: these DAGs (empty: all, Airflow's ``~``); ``states``: only
    runs in these; ``since``: only runs from then on (Airflow 2: started
    since; Airflow 3: due to run since, which a run still queued is too);
    ``limit``: at most this many, the newest.
    """

    dag_ids: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    since: str | None = None
    limit: int | None = None

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        """The first page asked for, per DAG (a read: what --dry-run shows)."""
        size = dialect.page_limit
        return tuple(
            dialect.list_runs(d, limit=size, offset=0, states=self.states, since=self.since)
            for d in self.dag_ids or (None,)
        )

    def converse(self, dialect: Dialect) -> Conversation:
        runs: list[dict[str, Any]] = []
        for dag_id in self.dag_ids or (None,):
            runs += yield from self._of(dialect, dag_id)
        # UTC Z text sorts as time; a run with no date yet (queued) is the newest.
        runs.sort(key=lambda r: r.get("start_date") or r.get("logical_date") or "~", reverse=True)
        if self.limit is not None:
            runs = runs[: self.limit]
        counts = Counter(str(run.get("state")) for run in runs)
        data = {"runs": runs, "by_state": dict(sorted(counts.items())), "total": len(runs)}
        return Verdict(Outcome.OK, data=data, status=200)

    def _of(
        self, dialect: Dialect, dag_id: str | None
    ) -> Generator[Step, Answer, list[dict[str, Any]]]:
        def page(*, limit: int, offset: int) -> Request:
            return dialect.list_runs(
                dag_id, limit=limit, offset=offset, states=self.states, since=self.since
            )

        if self.limit is None:
            runs, _ = yield from paginate(dialect, page, dialect.read_runs, _run_key)
            return runs
        # Newest first from the server: stop once there are enough.
        runs = []
        offset = 0
        while len(runs) < self.limit:
            answer = yield from ask(page(limit=dialect.page_limit, offset=offset))
            if not answer.ok:
                raise ApiError(answer.status, dialect.error_message(answer), body=answer.text)
            more, total = read(dialect.read_runs, answer)
            runs += more
            offset += len(more)
            if not more or (total is not None and offset >= total):
                break
        return runs


@dataclass(frozen=True, slots=True)
class ImportErrorsSpec:
    """The import errors of one deployment: a deployment that has any fails its call,
    so a scheduled check exits 1."""

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        """The first page asked for (a read: what --dry-run shows)."""
        return (dialect.list_import_errors(limit=dialect.page_limit, offset=0),)

    def converse(self, dialect: Dialect) -> Conversation:
        rows, _ = yield from paginate(
            dialect, dialect.list_import_errors, dialect.read_import_errors, "filename"
        )
        data = {"import_errors": rows, "total": len(rows)}
        if not rows:
            return Verdict(Outcome.OK, data=data, status=200)
        first = rows[0]
        more = f" (and {len(rows) - 1} more)" if len(rows) > 1 else ""
        error = f"{len(rows)} import error(s): {first['filename']}: {first['message']}{more}"
        return Verdict(Outcome.FAILED, data=data, error=error, status=200)


def plan_runs(
    deployments: Sequence[Deployment],
    dag_ids: Sequence[str] = (),
    *,
    states: Sequence[str] = (),
    since: str | None = None,
    limit: int | None = None,
) -> Plan:
    """One call per deployment listing its runs (``since`` as :func:`parse_since` gives it)."""
    unknown = [s for s in states if s not in RUN_STATES]
    if unknown:
        raise UsageError(f"--state {unknown[0]!r}: use one of {', '.join(RUN_STATES)}")
    if limit is not None and limit < 1:
        raise UsageError("--limit must be at least 1")
    spec = RunsSpec(tuple(dict.fromkeys(dag_ids)), tuple(dict.fromkeys(states)), since, limit)
    target = ",".join(spec.dag_ids)
    return Plan("runs", tuple(Call(d, "runs", target, spec) for d in deployments))


def plan_import_errors(deployments: Sequence[Deployment]) -> Plan:
    """One call per deployment listing its import errors."""
    spec = ImportErrorsSpec()
    return Plan("import_errors", tuple(Call(d, "import_errors", "", spec) for d in deployments))


def _run_key(run: dict[str, Any]) -> tuple[str, str]:
    return (run["dag_id"], run["dag_run_id"])
