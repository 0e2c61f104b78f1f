"""``airfleet run JOB.yaml``: run a job file's steps in order, journaled, safe to repeat."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import click

from airfleet.cli._context import CliContext, report_options, run_options
from airfleet.cli._dry_run import print_plan
from airfleet.cli._flags import check_dry_run_output, check_explicit_config_unused
from airfleet.cli._running import OnResult
from airfleet.engine import Engine, RunReport
from airfleet.inventory import Fleet
from airfleet.jobs.journal import Journal, JournalRun, call_key, read_runs, run_file_name
from airfleet.jobs.lock import JobLock
from airfleet.jobs.runner import (
    JobRunner,
    PlannedStep,
    journal_end,
    journal_header,
    journal_resume,
    last_run,
    nothing_left,
    plan_job,
    replayed,
    run_ids_for,
    same_steps,
    window_of,
)
from airfleet.jobs.spec import Job, load_job
from airfleet.plan import Plan

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

__all__ = ["job_dir", "run", "state_dir_option"]

F = TypeVar("F", bound=Callable[..., Any])

EPILOG = """\b
Examples:
  airfleet run configs/jobs/nightly.yaml
  airfleet run nightly.yaml --resume                    # after a crash: finish what is left
  airfleet run nightly.yaml --resume --dry-run          # what --resume would send
  airfleet run nightly.yaml --state-dir /var/lib/airfleet --report junit -o nightly.xml
  airfleet history nightly-refresh
"""


def default_state_dir() -> Path:
    """``~/.local/state/airfleet`` (``$AIRFLEET_STATE_DIR`` is read by the option)."""
    return Path.home() / ".local" / "state" / "airfleet"


def state_dir_option(func: F) -> F:
    option = click.option(
        "--state-dir",
        envvar="AIRFLEET_STATE_DIR",
        show_envvar=True,
        type=click.Path(file_okay=False),
        default=None,
        help="Where jobs keep their journals and locks [default: ~/.local/state/airfleet].",
    )
    return option(func)


def job_dir(state_dir: str | None, job_name: str) -> Path:
    """The directory of one job's journals and lock."""
    return (Path(state_dir) if state_dir else default_state_dir()) / job_name


@click.command(epilog=EPILOG)
@click.argument("job_file", metavar="JOB.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the last run of this job (and window): skip the calls it finished, "
    "retry the rest with the same run ids. If it finished all ok, send nothing.",
)
@state_dir_option
@run_options
@report_options
@click.pass_context
def run(
    ctx: click.Context,
    job_file: str,
    resume: bool,
    state_dir: str | None,
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """Run the steps of JOB.yaml in order (see configs/jobs/nightly.yaml).

    Steps trigger DAGs, pause or unpause them, audit pools or check health.
    A failed step stops the job unless it sets continue_on_failure; the
    calls of later steps are then reported skipped. Every result is written
    to a journal as it arrives. With a window (daily, hourly, PT6H...), run
    ids are the same for the whole window, so running twice triggers nothing
    twice. Only one run of a job at a time (exit 2 if another holds it).
    --dry-run prints the requests the steps would send (pool fixes depend
    on what the audit reads, so they are not shown), takes no lock and
    writes no journal.

    --resume after a run that finished with every call ok sends nothing,
    says so on stderr, reports that run's results from its journal and
    exits 0: a retry scheduled after the nightly run runs it once.
    """
    obj: CliContext = ctx.obj
    check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
    job = load_job(job_file)
    check_explicit_config_unused(ctx, job.fleet, job_file=job_file)
    fleet = obj.fleet(job.fleet)
    now = datetime.now(UTC)
    directory = job_dir(state_dir, job.name)
    if dry_run:
        steps, run_ids, previous, finished = _prepare(job, fleet, directory, now, resume=resume)
        if finished is not None:
            _say(obj, _nothing_to_resume(job, finished, steps))
        as_json = obj.format_for(report_format, output) not in ("table", "markdown")
        left = _left(steps, previous or finished, job.name)
        print_plan(left, console=obj.stdout, as_json=as_json)
        raise SystemExit(0)
    with JobLock(directory / "lock", job.name):
        window = window_of(job, now)
        steps, run_ids, previous, finished = _prepare(job, fleet, directory, now, resume=resume)
        if finished is not None:
            _say(obj, _nothing_to_resume(job, finished, steps))
            report = replayed(steps, finished)
            raise SystemExit(_report_only(obj, fleet, job, report, report_format, output))
        planned = sum(len(s.plan) for s in steps)
        if previous is not None:
            done = previous.counts()["ok"]
            obj.stderr.print(
                f"airfleet: resuming run {previous.path.name} of job {job.name!r}: "
                f"{done} of {planned} calls already done",
                soft_wrap=True,  # one line, whatever the width: scripts grep it
            )
            path = previous.path
            header = journal_resume(now)
        else:
            if resume:
                where = "in this window" if job.span is not None else "yet"
                obj.stderr.print(
                    f"airfleet: job {job.name!r} has no run {where} to resume; starting one",
                    soft_wrap=True,
                )
            path = directory / run_file_name(now, os.getpid())
            header = journal_header(
                job, fleet, job_file, window=window, now=now, run_ids=run_ids, steps=steps
            )
        journal = Journal(path, header, resume=previous is not None)
        runner = JobRunner(steps, journal, previous=previous)
        try:
            code = obj.run_body(
                fleet,
                runner,
                total=planned,
                operation=f"job {job.name}",
                report_format=report_format,
                output=output,
            )
            if runner.report is not None:
                journal.finish(journal_end(runner.report.summary))
        finally:
            journal.close()
    raise SystemExit(code)


def _prepare(
    job: Job, fleet: Fleet, directory: Path, now: datetime, *, resume: bool
) -> tuple[tuple[PlannedStep, ...], dict[str, str], JournalRun | None, JournalRun | None]:
    """The steps as planned and their run ids; the run a ``--resume``
    continues, or the one it finds finished with nothing left to do (then
    nothing is sent).

    A resume takes up the last run of the window, whatever became of it, with
    its journaled run ids; a run whose steps have changed is refused.
    """
    last = last_run(read_runs(directory), window_of(job, now)) if resume else None
    if last is not None:
        same_steps(last, job)
    # Planned once: without a window, each call of run_ids_for makes new ids.
    run_ids = run_ids_for(job, now=now, previous=last)
    steps = plan_job(job, fleet, run_ids)
    if last is not None and nothing_left(last, steps):
        return steps, run_ids, None, last
    return steps, run_ids, last, None


def _say(obj: CliContext, line: str) -> None:
    """One line on stderr, whatever the width (scripts grep it), taken as it is."""
    obj.stderr.print(line, soft_wrap=True, markup=False, highlight=False)


def _nothing_to_resume(job: Job, finished: JournalRun, steps: tuple[PlannedStep, ...]) -> str:
    when = f" of window {finished.header.get('window_start')}" if job.span is not None else ""
    calls = sum(len(s.plan) for s in steps)
    return (
        f"airfleet: job {job.name!r}: run {finished.path.name}{when} finished with all "
        f"{calls} calls ok; nothing to resume, nothing sent "
        "(run without --resume to start a new run)"
    )


def _report_only(
    obj: CliContext,
    fleet: Fleet,
    job: Job,
    report: RunReport,
    report_format: ReportFormat | None,
    output: str | None,
) -> int:
    """Write ``report`` as a run's report is written (stdout or -o, any format)."""

    async def body(_: Engine, __: anyio.Event, on_result: OnResult | None) -> RunReport:
        for result in report.results:
            if on_result is not None:
                on_result(result)  # jsonl streams them as a run would
        return report

    return obj.run_body(
        fleet,
        body,
        total=len(report.results),
        operation=f"job {job.name}",
        report_format=report_format,
        output=output,
    )


def _left(steps: tuple[PlannedStep, ...], previous: JournalRun | None, name: str) -> Plan:
    """Every step's calls in order, less those a resume would take from the journal."""
    calls = tuple(
        call
        for planned in steps
        for call in planned.plan.calls
        if previous is None or call_key(call) not in previous.done(planned.step.index)
    )
    return Plan(f"job {name}", calls, mutating=True)
