"""Running a job: plan every step up front, run them in order, journal each result.

The plan of every step is built before anything is sent, so a selection that
matches nothing or a bad file stops the job with exit 2 and no request made.
Results reach the journal through one path, the engine's ``on_result`` (its
single collector task), which queues them for the journal's group commit;
each is reported (to ``on_result``, the report) only once its record is
fsync'd, and a step's results are all reported before the next step starts.
A SIGKILL at any moment leaves a journal whose ok calls really were done and
that holds every result reported.

A resume skips the calls the journal holds as ok and runs the rest with the
same run ids, so a trigger the killed process sent but never recorded answers
409 and is reported ok with ``already_existed: true``, never run twice. A run
that finished with every call ok leaves a resume nothing to do: it sends
nothing, and :func:`replayed` reports the run from its journal.

Every step runs on the job's one engine, so each token is fetched once per
job; a step's own ``limits`` are the in-flight caps and rate of its run.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from airfleet.engine import Engine, RunReport
from airfleet.errors import ConfigError, UsageError
from airfleet.inventory import Deployment, Fleet, FleetLimits
from airfleet.jobs.audit import audit_pools
from airfleet.jobs.journal import Journal, JournalRun, call_key, result_from_dict
from airfleet.jobs.spec import (
    ApiOptions,
    AuditOptions,
    DagsOptions,
    HealthOptions,
    ImportErrorsOptions,
    Job,
    JobStep,
    RunsOptions,
    TriggerOptions,
)
from airfleet.jobs.windows import window_label, window_start
from airfleet.operations import (
    parse_since,
    plan_api,
    plan_health,
    plan_import_errors,
    plan_pause,
    plan_runs,
    plan_trigger,
)
from airfleet.operations.api import place_fields
from airfleet.operations.audit import plan_audit
from airfleet.plan import Plan
from airfleet.results import Collector, Outcome, Result, Summary
from airfleet.selection import select

__all__ = [
    "JobRunner",
    "PlannedStep",
    "find_resumable",
    "journal_end",
    "journal_header",
    "journal_resume",
    "last_run",
    "nothing_left",
    "plan_job",
    "plan_step",
    "replayed",
    "run_ids_for",
    "same_steps",
    "window_of",
    "with_limits",
]

OnResult = Callable[[Result], None]


@dataclass(frozen=True, slots=True)
class PlannedStep:
    """A step, its calls, and the fleet-wide limits they run within.

    ``limits``: the step's own merged over the fleet's (the fleet's where
    the step sets none).
    """

    step: JobStep
    plan: Plan
    limits: FleetLimits

    def __repr__(self) -> str:
        return f"PlannedStep({self.step.index}, {self.step.kind!r}, {len(self.plan)} calls)"


# -- run ids and resume ---------------------------------------------------------------


def window_of(job: Job, now: datetime) -> datetime | None:
    """The start of the window ``now`` falls in, for a job with a window."""
    return window_start(now, job.span) if job.span is not None else None


def run_ids_for(job: Job, *, now: datetime, previous: JournalRun | None = None) -> dict[str, str]:
    """Each trigger step's run id.

    Resuming: the interrupted run's ids (from its journal header). With a
    window: ``airfleet__<job>__<window start>__<step id>``, the same for every
    invocation in the window. Otherwise one fresh stamp per invocation.
    """
    if previous is not None:
        return {str(k): str(v) for k, v in dict(previous.header.get("run_ids") or {}).items()}
    triggers = [s for s in job.steps if s.kind == "trigger"]
    if job.span is not None:
        label = window_label(window_start(now, job.span), job.span)
        return {s.id: f"airfleet__{job.name}__{label}__{s.id}" for s in triggers}
    stamp = f"{now.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}__{secrets.token_hex(3)}"
    return {s.id: f"airfleet__{job.name}__{stamp}__{s.id}" for s in triggers}


def last_run(runs: Sequence[JournalRun], window: datetime | None) -> JournalRun | None:
    """The latest of ``runs`` in ``window`` (None: the job has no window, so any run)."""
    key = window.isoformat() if window is not None else None
    same = [r for r in runs if r.header.get("window_start") == key]
    return same[-1] if same else None


def same_steps(run: JournalRun, job: Job) -> JournalRun:
    """``run``, if its journal describes the steps ``job`` has now; UsageError if not."""
    if run.header.get("fingerprint") != job.fingerprint:
        raise UsageError(
            f"cannot resume {run.path.name}: the steps of job {job.name!r} changed since it "
            "started; run without --resume to start a new run"
        )
    return run


def nothing_left(run: JournalRun, steps: Sequence[PlannedStep] | None = None) -> bool:
    """Whether ``run`` finished with every call ok, so a resume has nothing to do.

    ``steps``: the job as planned now; a call of theirs that the journal does
    not hold as ok (on a deployment added to the fleet since) is still to do.
    Without them, the count its journal header planned is what counts.
    """
    if not run.finished:
        return False
    if steps is None:
        return run.complete
    return all(
        call_key(call) in run.done(planned.step.index)
        for planned in steps
        for call in planned.plan.calls
    )


def find_resumable(
    runs: Sequence[JournalRun], job: Job, window: datetime | None
) -> JournalRun | None:
    """The last run of this job and window, unless it completed with every call ok."""
    last = last_run(runs, window)
    if last is None or nothing_left(last):
        return None
    return same_steps(last, job)


def replayed(steps: Sequence[PlannedStep], run: JournalRun) -> RunReport:
    """The report of a run that left nothing to do, from its journal: nothing is sent.

    Every result carries ``data.from_journal: true``, as a resume reports the
    calls it takes from the journal; the summary counts no request.
    """
    collector = Collector("job")
    for planned in steps:
        done = run.done(planned.step.index)
        for call in planned.plan.calls:
            result = _from_journal(done[call_key(call)])
            collector.add(dataclasses.replace(result, step=planned.step.id))
    summary = collector.summary(duration_s=0.0, requests=0, token_fetches=0)
    return RunReport(summary, tuple(collector.results))


# -- planning ------------------------------------------------------------------------


def plan_job(
    job: Job, fleet: Fleet, run_ids: Mapping[str, str], *, part: bool = False
) -> tuple[PlannedStep, ...]:
    """Every step's plan; ConfigError (at the step's line) if a selection matches nothing.

    ``part``: ``fleet`` is one shard of the job's (see :mod:`airfleet.jobs.shards`),
    where a step may well select nothing; the whole was checked when it was split.
    """
    planned = []
    for step in job.steps:
        try:
            deployments = select(fleet.deployments, (*job.select, *step.select))
        except UsageError as exc:
            if not part:
                raise ConfigError(f"{step.label}: {exc}", file=job.source, line=step.line) from None
            deployments = ()
        plan = plan_step(step, deployments, run_id=run_ids.get(step.id))
        planned.append(PlannedStep(step, plan, with_limits(fleet.limits, step)))
    return tuple(planned)


def plan_step(step: JobStep, deployments: Sequence[Deployment], *, run_id: str | None) -> Plan:
    """The calls of one step on ``deployments``."""
    options = step.options
    if isinstance(options, TriggerOptions):
        if run_id is None:
            raise UsageError(f"{step.label}: no run id for a trigger step (a corrupt journal?)")
        return plan_trigger(
            deployments,
            options.dags,
            run_id=run_id,
            conf=options.conf,
            note=options.note,
            wait=options.wait,
            timeout_s=options.timeout_s,
            poll_s=options.poll_s,
        )
    if isinstance(options, DagsOptions):
        return plan_pause(deployments, options.dags, paused=step.kind == "pause")
    if isinstance(options, AuditOptions):
        return plan_audit(deployments, options.spec, prune=options.prune)
    if isinstance(options, ApiOptions):
        return _plan_api_step(deployments, options)
    if isinstance(options, RunsOptions):
        since = parse_since(options.since) if options.since is not None else None
        return plan_runs(
            deployments, options.dags, states=options.states, since=since, limit=options.limit
        )
    if isinstance(options, ImportErrorsOptions):
        return plan_import_errors(deployments)
    assert isinstance(options, HealthOptions)  # noqa: S101 - the union is closed
    return plan_health(deployments)


def _plan_api_step(deployments: Sequence[Deployment], options: ApiOptions) -> Plan:
    params, body = place_fields(options.method, tuple(options.fields.items()), options.body)
    return plan_api(
        deployments,
        options.method,
        options.path,
        params=params,
        body=body,
        paginate=options.paginate,
    )


def with_limits(limits: FleetLimits, step: JobStep) -> FleetLimits:
    """The fleet-wide limits of ``step``'s run: its own, else the fleet's."""
    if step.limits is None:
        return limits
    return FleetLimits(
        step.limits.max_in_flight or limits.max_in_flight,
        step.limits.max_per_second or limits.max_per_second,
    )


# -- journal records -----------------------------------------------------------------


def journal_header(
    job: Job,
    fleet: Fleet,
    job_file: str | os.PathLike[str],
    *,
    window: datetime | None,
    now: datetime,
    run_ids: Mapping[str, str],
    steps: Sequence[PlannedStep],
) -> dict[str, Any]:
    """The first record of a new run's journal (``--resume`` and ``history`` read it)."""
    return {
        "job": job.name,
        "job_file": str(Path(job_file).resolve()),
        "fleet": fleet.source,
        "window": job.window,
        "window_start": window.isoformat() if window is not None else None,
        "started_at": now.isoformat(),
        "pid": os.getpid(),
        "fingerprint": job.fingerprint,
        "run_ids": dict(run_ids),
        "planned": sum(len(s.plan) for s in steps),
        "steps": [
            {"index": s.step.index, "id": s.step.id, "kind": s.step.kind, "calls": len(s.plan)}
            for s in steps
        ],
    }


def journal_resume(now: datetime) -> dict[str, Any]:
    """The record a ``--resume`` appends: which process took the run up, and when."""
    return {"pid": os.getpid(), "at": now.isoformat()}


def journal_end(summary: Summary, *, now: datetime | None = None) -> dict[str, Any]:
    """The record that ends an invocation: its counts, and whether it was interrupted."""
    return {
        "at": (now or datetime.now(UTC)).isoformat(),
        "ok": summary.ok,
        "failed": summary.failed,
        "skipped": summary.skipped,
        "interrupted": summary.interrupted,
        "duration_s": round(summary.duration_s, 3),
    }


# -- running -------------------------------------------------------------------------


class JobRunner:
    """The body ``CliContext.run_body`` runs: the steps in order, journaled.

    ``journal`` None: nothing is journaled and results are reported as they
    come (a job run by Airflow, whose retries replace ``--resume``; its run
    ids keep triggers exactly once). With a journal, a result is reported
    once its record is on disk.

    ``previous``: the run being resumed; its ok calls are reported from the
    journal and not sent again. Every step runs on the engine it is given,
    within its own ``PlannedStep.limits``.
    """

    def __init__(
        self,
        steps: Sequence[PlannedStep],
        journal: Journal | None,
        *,
        previous: JournalRun | None = None,
    ) -> None:
        self.steps = tuple(steps)
        self.journal = journal
        self.previous = previous
        self.report: RunReport | None = None

    async def __call__(
        self, engine: Engine, stop: anyio.Event, on_result: OnResult | None
    ) -> RunReport:
        collector = Collector("job")
        started = time.monotonic()
        requests = token_fetches = 0
        blocked: str | None = None

        def emit(result: Result, step_id: str) -> None:
            # Every report format names the step of each result.
            result = dataclasses.replace(result, step=step_id)
            collector.add(result)
            if on_result is not None:
                on_result(result)

        for planned in self.steps:
            step, plan = planned.step, planned.plan
            emit_step = functools.partial(emit, step_id=step.id)
            if blocked is not None or stop.is_set():
                reason = blocked or "not started: the run was interrupted"
                async with self._durable(step.index, emit_step) as record:
                    for call in plan.calls:
                        record(call.skipped(reason, interrupted=blocked is None))
                continue
            done = self.previous.done(step.index) if self.previous else {}
            for call in plan.calls:
                earlier = done.get(call_key(call))
                if earlier is not None:
                    emit_step(_from_journal(earlier))
            remaining = Plan(
                plan.operation,
                tuple(c for c in plan.calls if call_key(c) not in done),
                plan.mutating,
            )
            results, ran = await self._run_step(engine, planned, remaining, stop, emit_step)
            if ran is not None:
                requests += ran.requests
                token_fetches += ran.token_fetches
            failures = sum(1 for r in results if r.outcome is Outcome.FAILED)
            if failures and not step.continue_on_failure:
                blocked = (
                    f"not run: {step.label} failed ({failures} of {len(plan)} calls); "
                    "set continue_on_failure: true on it to go on regardless"
                )
        summary = collector.summary(
            duration_s=time.monotonic() - started,
            # What the servers saw in this invocation: calls taken from the
            # journal sent nothing.
            requests=requests,
            token_fetches=token_fetches,
            interrupted=stop.is_set(),
        )
        self.report = RunReport(summary, tuple(collector.results))
        return self.report

    def _durable(self, step: int, on_durable: OnResult) -> AbstractAsyncContextManager[OnResult]:
        """Where the results of ``step`` are recorded: the journal, which hands
        each to ``on_durable`` once it is on disk; without one, straight to it."""
        if self.journal is None:
            return nullcontext(on_durable)
        return self.journal.group_commit(step, on_durable)

    async def _run_step(
        self,
        engine: Engine,
        planned: PlannedStep,
        plan: Plan,
        stop: anyio.Event,
        emit: OnResult,
    ) -> tuple[list[Result], Summary | None]:
        """Run what is left of one step; its results, and its run's summary if it ran."""
        if not plan.calls:
            return [], None
        step = planned.step
        results: list[Result] = []

        def reported(result: Result) -> None:
            results.append(result)
            emit(result)

        # Leaving the block waits for the last record to reach the disk, so
        # the step's failures are all counted before the next step starts.
        async with self._durable(step.index, reported) as record:
            options = step.options
            if isinstance(options, AuditOptions) and options.apply:
                report = await audit_pools(
                    engine, plan, apply=True, stop=stop, limits=planned.limits
                )
                # The audit and its fixes are one call per deployment: journaled
                # once both are done (fixes are safe to repeat if this is lost).
                for result in report.results:
                    record(result)
            else:
                report = await engine.run(plan, limits=planned.limits, on_result=record, stop=stop)
        return results, report.summary


def _from_journal(data: dict[str, Any]) -> Result:
    result = result_from_dict(data)
    return dataclasses.replace(result, data={**result.data, "from_journal": True})
