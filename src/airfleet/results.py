"""Results: exactly one record per planned call, and the summary built from them.

The engine produces :class:`Result` values and hands each to one
:class:`Collector` as it is made; a run is one event loop, so nothing here
needs a lock.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = ["Collector", "Outcome", "Result", "Summary"]


class Outcome(StrEnum):
    """What became of one planned call."""

    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


_OUTCOME_NAMES = {outcome: outcome.value for outcome in Outcome}


@dataclass(frozen=True, slots=True)
class Result:
    """The one record of one planned call (the json report's ``results[]`` item).

    ``step``: the id of the job step the call belongs to (``None`` outside a
    job); the report then carries it as ``"step"``.
    """

    deployment: str
    operation: str
    target: str
    outcome: Outcome
    status: int | None = None
    attempts: int = 0
    latency_ms: float = 0.0
    error: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    requests: int = 0
    step: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK

    def to_dict(self) -> dict[str, Any]:
        """The json report's ``results[]`` item; ``"step"`` only for a job's results."""
        item: dict[str, Any] = {
            "deployment": self.deployment,
            "operation": self.operation,
            "target": self.target,
            "outcome": self.outcome.value,
            "status": self.status,
            "attempts": self.attempts,
            "latency_ms": round(self.latency_ms, 1),
            "error": self.error,
            "data": dict(self.data),
        }
        if self.step is not None:
            item["step"] = self.step
        return item


@dataclass(frozen=True, slots=True)
class Summary:
    """Counts and timings over every result of one operation run."""

    operation: str
    total: int
    ok: int
    failed: int
    skipped: int
    started_at: datetime
    duration_s: float
    requests: int
    retries: int = 0
    token_fetches: int = 0
    latency_p50_ms: float = 0.0
    latency_p95_ms: float = 0.0
    latency_max_ms: float = 0.0
    by_status: Mapping[str, int] = field(default_factory=dict)
    by_deployment: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    failed_deployments: tuple[str, ...] = ()
    interrupted: bool = False

    @property
    def exit_code(self) -> int:
        """0 when no call failed, 1 when one did, 130 when the run was interrupted.

        A skipped call (a hibernating deployment, say) is not a failure.
        """
        if self.interrupted:
            return 130
        return 0 if self.failed == 0 else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "total": self.total,
            "ok": self.ok,
            "failed": self.failed,
            "skipped": self.skipped,
            "started_at": self.started_at.isoformat(timespec="milliseconds"),
            "duration_s": round(self.duration_s, 3),
            "requests": self.requests,
            "retries": self.retries,
            "token_fetches": self.token_fetches,
            "latency_ms": {
                "p50": round(self.latency_p50_ms, 1),
                "p95": round(self.latency_p95_ms, 1),
                "max": round(self.latency_max_ms, 1),
            },
            "by_status": dict(self.by_status),
            "by_deployment": {name: dict(counts) for name, counts in self.by_deployment.items()},
            "failed_deployments": list(self.failed_deployments),
            "interrupted": self.interrupted,
        }


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    rank = max(0, math.ceil(q * len(sorted_values)) - 1)
    return sorted_values[rank]


class Collector:
    """Accumulates results as they stream in and summarises them at the end."""

    def __init__(self, operation: str, *, started_at: datetime | None = None) -> None:
        self.operation = operation
        self.started_at = started_at or datetime.now(UTC)
        self.results: list[Result] = []
        # Counted as results come, in plain dicts (a Counter costs more);
        # statuses are named ("200", "none") once, in summary(). The
        # per-deployment breakdown is made there too, from the results: a
        # dict per deployment kept all run long is 10,000 more objects for
        # the garbage collector to walk on every sweep of a large fleet.
        self._outcomes: dict[Outcome, int] = {}
        self._statuses: dict[int | None, int] = {}
        self._requests = 0
        self._retries = 0

    def add(self, result: Result) -> None:
        self.results.append(result)
        outcome = result.outcome
        outcomes, statuses = self._outcomes, self._statuses
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        statuses[result.status] = statuses.get(result.status, 0) + 1
        self._requests += result.requests
        if result.attempts > 1:
            self._retries += result.attempts - 1

    def extend(self, results: Iterable[Result]) -> None:
        for result in results:
            self.add(result)

    def summary(
        self,
        *,
        duration_s: float,
        requests: int | None = None,
        token_fetches: int = 0,
        interrupted: bool = False,
    ) -> Summary:
        """The summary so far. ``requests``: what the servers saw, when the
        caller counted it (token fetches and detection included); otherwise
        the results' own requests, added up."""
        latencies: list[float] = []
        failed: set[str] = set()
        by_deployment: dict[str, dict[str, int]] = {}
        # One pass, no Enum.value lookups: at 10,000 deployments this loop
        # is part of every run's time.
        names = _OUTCOME_NAMES
        for result in self.results:
            outcome = result.outcome
            if outcome is not Outcome.SKIPPED:
                latencies.append(result.latency_ms)
                if outcome is Outcome.FAILED:
                    failed.add(result.deployment)
            per = by_deployment.get(result.deployment)
            if per is None:
                by_deployment[result.deployment] = {names[outcome]: 1}
            else:
                name = names[outcome]
                per[name] = per.get(name, 0) + 1
        latencies.sort()
        return Summary(
            operation=self.operation,
            total=len(self.results),
            ok=self._outcomes.get(Outcome.OK, 0),
            failed=self._outcomes.get(Outcome.FAILED, 0),
            skipped=self._outcomes.get(Outcome.SKIPPED, 0),
            started_at=self.started_at,
            duration_s=duration_s,
            requests=self._requests if requests is None else requests,
            retries=self._retries,
            token_fetches=token_fetches,
            latency_p50_ms=_percentile(latencies, 0.50),
            latency_p95_ms=_percentile(latencies, 0.95),
            latency_max_ms=latencies[-1] if latencies else 0.0,
            by_status=dict(
                sorted(("none" if s is None else str(s), n) for s, n in self._statuses.items())
            ),
            by_deployment=by_deployment,
            failed_deployments=tuple(sorted(failed)),
            interrupted=interrupted,
        )
