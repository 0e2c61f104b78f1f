"""A job run by another scheduler (Airflow): run ids from its run, no journal, maybe one shard.

``airfleet run`` keeps exactly-once with its journal and ``--resume``. A host
such as Airflow has its own retries and history instead, and no disk its
tasks are sure to share, so here nothing is journaled: run ids are derived
from the host's run (:func:`host_run_ids`), and a retried, cleared or
re-run task sends the same ids, which Airflow refuses a second time (409)
and airfleet reports ``already_existed``. Reads, pauses and audits are
safe to repeat anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from airfleet.discovery import discover
from airfleet.engine import Engine, RunReport
from airfleet.events import Listener
from airfleet.inventory import Fleet
from airfleet.jobs.journal import result_from_dict
from airfleet.jobs.runner import JobRunner, PlannedStep, plan_job, with_limits
from airfleet.jobs.shards import Shard, job_deployments, restrict, share_fleet, share_limits, split
from airfleet.jobs.spec import Job
from airfleet.operations.trigger import check_run_id
from airfleet.results import Collector, Outcome, Result
from airfleet.transport import Transport

__all__ = [
    "ShardReport",
    "host_run_ids",
    "merge_reports",
    "plan_shards",
    "run_hosted",
    "run_label",
]


@dataclass(frozen=True, slots=True)
class ShardReport:
    """What one shard hands on: its results and summary, as the JSON report has them."""

    results: Sequence[Mapping[str, Any]]
    summary: Mapping[str, Any]


_UNSAFE = re.compile(r"[^A-Za-z0-9_.~:+-]+")
_RUN_ID_MAX = 250


def run_label(logical_date: datetime | None, run_id: str) -> str:
    """What names the host's run in our run ids: its logical date, else its run id.

    The logical date is the same for every re-run of a scheduled run; an
    Airflow 3 run without one (triggered with ``logical_date: null``) is
    named by its run id, which is just as fixed.
    """
    if logical_date is not None:
        moment = logical_date.astimezone(UTC)
        spec = "microseconds" if moment.microsecond else "seconds"
        return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"
    return _UNSAFE.sub("-", run_id).strip("-") or "run"


def host_run_ids(job: Job, *, scope: str, label: str) -> dict[str, str]:
    """Each trigger step's run id: ``airfleet__<scope>__<label>__<step id>``.

    ``scope`` names who runs the job (Airflow: ``<dag id>.<task id>``), so
    two tasks running jobs whose steps share ids do not take each other's
    runs for their own. An id over Airflow's 250 characters gets a digest
    of the scope instead.
    """
    safe_scope = _UNSAFE.sub("-", scope)
    ids: dict[str, str] = {}
    for step in job.steps:
        if step.kind != "trigger":
            continue
        run_id = f"airfleet__{safe_scope}__{label}__{step.id}"
        if len(run_id) > _RUN_ID_MAX:
            digest = hashlib.sha256(scope.encode()).hexdigest()[:16]
            run_id = f"airfleet__{digest}__{label}__{step.id}"[:_RUN_ID_MAX]
        ids[step.id] = check_run_id(run_id)
    return ids


def plan_shards(job: Job, fleet: Fleet, count: int) -> tuple[Shard, ...]:
    """Split the deployments ``job`` selects (in a discovered ``fleet``) into ``count`` shards.

    ConfigError if a step selects nothing; UsageError if the shards cannot
    each have a request in flight within the fleet's or a step's cap.
    """
    caps = [fleet.limits.max_in_flight]
    caps.extend(s.limits.max_in_flight for s in job.steps if s.limits and s.limits.max_in_flight)
    return split(job_deployments(job, fleet), count, caps=caps)


async def run_hosted(
    job: Job,
    fleet: Fleet,
    *,
    run_ids: Mapping[str, str],
    shard: Shard | None = None,
    listeners: Sequence[Listener] = (),
    transport: Transport | None = None,
) -> RunReport:
    """Discover (if the fleet says to), plan and run ``job``, or one ``shard`` of it.

    With a shard, every shared limit is this shard's share, discovery asks
    at its share of the source's rate, and a deployment the shard names that
    the inventory no longer has is one failed result (a shard never takes
    on a deployment it was not given: another shard may hold it).
    """
    original = fleet
    gone: tuple[str, ...] = ()
    if shard is not None:
        fleet = share_fleet(fleet, shard)
    if fleet.discovery:
        fleet = await discover(fleet, transport=transport, listeners=listeners)
    if shard is not None:
        fleet, gone = restrict(fleet, shard)
    steps = plan_job(job, fleet, run_ids, part=shard is not None)
    if shard is not None:
        steps = tuple(
            dataclasses.replace(p, limits=share_limits(with_limits(original.limits, p.step), shard))
            for p in steps
        )
    report = await _run(steps, fleet, listeners=listeners, transport=transport)
    if not gone:
        return report
    return _with_gone(report, gone, shard)


async def _run(
    steps: Sequence[PlannedStep],
    fleet: Fleet,
    *,
    listeners: Sequence[Listener],
    transport: Transport | None,
) -> RunReport:
    runner = JobRunner(steps, None)
    async with Engine(fleet, transport=transport, listeners=listeners) as engine:
        return await runner(engine, anyio.Event(), None)


def _with_gone(report: RunReport, gone: Sequence[str], shard: Shard | None) -> RunReport:
    where = f"shard {shard.index}" if shard is not None else "the plan"
    collector = Collector(report.summary.operation, started_at=report.summary.started_at)
    collector.extend(report.results)
    for name in gone:
        collector.add(
            Result(
                deployment=name,
                operation="job",
                target=where,
                outcome=Outcome.FAILED,
                error=(
                    f"{where} was given this deployment, but the inventory no longer has it "
                    "(deleted, renamed or not discovered): nothing was sent to it"
                ),
            )
        )
    summary = collector.summary(
        duration_s=report.summary.duration_s,
        requests=report.summary.requests,
        token_fetches=report.summary.token_fetches,
        interrupted=report.summary.interrupted,
    )
    return RunReport(summary, tuple(collector.results))


def merge_reports(shards: Sequence[Shard], reports: Mapping[int, ShardReport]) -> RunReport:
    """One report of every shard's results; a shard without any fails each of its deployments.

    The summary adds up requests and token fetches; its duration runs from
    the first shard's start to the last one's end.
    """
    results: list[Result] = []
    starts: list[float] = []
    ends: list[float] = []
    requests = token_fetches = 0
    operation = "job"
    for shard in shards:
        part = reports.get(shard.index)
        if part is None:
            results.extend(_no_report(shard))
            continue
        summary = part.summary
        results.extend(result_from_dict(dict(item)) for item in part.results)
        operation = str(summary.get("operation") or operation)
        started = _started(summary)
        if started is not None:
            starts.append(started)
            ends.append(started + float(summary.get("duration_s") or 0.0))
        requests += int(summary.get("requests") or 0)
        token_fetches += int(summary.get("token_fetches") or 0)
    began = datetime.fromtimestamp(min(starts), UTC) if starts else None
    collector = Collector(operation, started_at=began)
    collector.extend(results)
    merged = collector.summary(
        duration_s=(max(ends) - min(starts)) if starts else 0.0,
        requests=requests,
        token_fetches=token_fetches,
    )
    return RunReport(merged, tuple(collector.results))


def _started(summary: Mapping[str, Any]) -> float | None:
    text = summary.get("started_at")
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _no_report(shard: Shard) -> list[Result]:
    return [
        Result(
            deployment=name,
            operation="job",
            target=f"shard {shard.index}",
            outcome=Outcome.FAILED,
            error=(
                f"shard {shard.index} left no results (its task failed before reporting: "
                "see its log); this deployment's calls may or may not have been made"
            ),
        )
        for name in shard.deployments
    ]
