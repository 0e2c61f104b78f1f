"""``airfleet run JOB.yaml``: run a job file's steps in order, journaled, safe to repeat."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from airfleet.cli._context import CliContext, report_options, run_options
from airfleet.cli._dry_run import print_plan
from airfleet.jobs.journal import Journal, JournalRun, call_key, read_runs, run_file_name
from airfleet.jobs.lock import JobLock
from airfleet.jobs.runner import (
    JobRunner,
    PlannedStep,
    find_resumable,
    journal_end,
    journal_header,
    journal_resume,
    plan_job,
    run_ids_for,
    window_of,
)
from airfleet.jobs.spec import load_job
from airfleet.plan import Plan
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
    help="Continue the last unfinished run of this job (and window): skip the calls it "
    "finished, retry the rest with the same run ids.",
)
@state_dir_option
@run_options
@report_options
@click.pass_obj
def run(
    obj: CliContext,
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
    """
    job = load_job(job_file)
    fleet = obj.fleet(job.fleet)
    now = datetime.now(UTC)
    directory = job_dir(state_dir, job.name)
    if dry_run:
        window = window_of(job, now)
        previous = find_resumable(read_runs(directory), job, window) if resume else None
        steps = plan_job(job, fleet, run_ids_for(job, now=now, previous=previous))
        as_json = obj.format_for(report_format, output) not in ("table", "markdown")
        print_plan(_left(steps, previous, job.name), console=obj.stdout, as_json=as_json)
        raise SystemExit(0)
    with JobLock(directory / "lock", job.name):
        window = window_of(job, now)
        previous = find_resumable(read_runs(directory), job, window) if resume else None
        run_ids = run_ids_for(job, now=now, previous=previous)
        steps = plan_job(job, fleet, run_ids)
        planned = sum(len(s.plan) for s in steps)
        if previous is not None:
            done = previous.counts()["ok"]
            obj.stderr.print(
                f"airfleet: resuming run {previous.path.name} of job {job.name!r}: "
                f"{done} of {planned} calls already done"
            )
            path = previous.path
            header = journal_resume(now)
        else:
            if resume:
                obj.stderr.print(f"airfleet: job {job.name!r} has no unfinished run; starting one")
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


def _left(steps: tuple[PlannedStep, ...], previous: JournalRun | None, name: str) -> Plan:
    """Every step's calls in order, less those a resume would take from the journal."""
    calls = tuple(
        call
        for planned in steps
        for call in planned.plan.calls
        if previous is None or call_key(call) not in previous.done(planned.step.index)
    )
    return Plan(f"job {name}", calls, mutating=True)
