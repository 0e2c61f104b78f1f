"""``airfleet history JOB``: past runs of a job, from its journal."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import click
from rich.text import Text

from airfleet._yaml import did_you_mean
from airfleet.cli._context import CliContext, dump_json
from airfleet.cli.run import job_dir, state_dir_option
from airfleet.errors import UsageError
from airfleet.jobs.journal import JournalRun, read_runs
from airfleet.jobs.lock import lock_holder
from airfleet.jobs.spec import load_job
from airfleet.report import default_format
from airfleet.report._layout import Column, Shape, print_fitted

__all__ = ["history"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

EPILOG = """\b
Examples:
  airfleet history nightly-refresh
  airfleet history configs/jobs/nightly.yaml --last 5 --report json
"""


@click.command(epilog=EPILOG)
@click.argument("job", metavar="JOB")
@state_dir_option
@click.option(
    "--last",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show the N latest runs.",
)
@click.option(
    "--report",
    "report_format",
    type=click.Choice(["table", "json"]),
    help="Output format (default: table on a terminal, json otherwise).",
)
@click.pass_obj
def history(
    obj: CliContext,
    job: str,
    state_dir: str | None,
    last: int,
    report_format: Literal["table", "json"] | None,
) -> None:
    """List past runs of JOB (a job name, or a job file): when, which window,
    how many calls ended ok, failed or skipped, and whether it finished.

    A run is "killed" when it has no end record (SIGKILL, power loss), and
    "interrupted" after Ctrl-C; `airfleet run JOB.yaml --resume` finishes it.
    """
    name = _job_name(job)
    directory = job_dir(state_dir, name)
    runs = read_runs(directory)[-last:]
    if not runs and not _is_job_file(job):
        # A typo must not look like "no runs yet": name the jobs that have run.
        raise UsageError(_unknown_job(name, directory.parent))
    holder = lock_holder(directory / "lock")
    rows = [
        _row(run, running=holder is not None and i == len(runs) - 1) for i, run in enumerate(runs)
    ]
    fmt = report_format or default_format(is_terminal=obj.stdout.is_terminal)
    if fmt == "json":
        obj.stdout.print(
            dump_json({"job": name, "state_dir": str(directory), "runs": rows}),
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
        return
    if not rows:
        obj.stdout.print(f"no runs of job {name!r} in {directory}", markup=False, highlight=False)
        return
    cells = [
        [
            Text(_short(row["started_at"])),
            Text(_short(row["window_start"])),
            Text(str(row["status"])),
            *(Text(str(row[c])) for c in _COUNTS),
        ]
        for row in rows
    ]
    print_fitted(
        obj.stdout,
        [Shape(_COLUMNS, [[row] for row in cells])],
        title=f"job {name}: {len(rows)} run(s), oldest first",
    )


_COUNTS = ("ok", "failed", "skipped", "missing", "resumes")
# A narrow terminal wraps a time below its date, never cuts it.
_COLUMNS = (
    Column("started", min_width=len("2026-11-24")),
    Column("window", min_width=len("2026-11-24")),
    Column("status", kind="short"),
    *(Column(c, kind="short", justify="right") for c in _COUNTS),
)


def _short(stamp: object) -> str:
    """``2026-11-24T00:00:00.123+00:00`` -> ``2026-11-24 00:00:00`` (UTC)."""
    if not isinstance(stamp, str):
        return "-"
    return stamp.replace("T", " ")[:19]


def _is_job_file(job: str) -> bool:
    path = Path(job)
    return path.suffix in (".yaml", ".yml") or path.is_file()


def _job_name(job: str) -> str:
    if _is_job_file(job):
        return load_job(job).name
    if not _NAME.match(job):
        raise UsageError(f"{job!r} is neither a job file nor a job name")
    return job


_SHOWN = 20  # known job names listed in the message; a state dir may hold many


def _unknown_job(name: str, state_dir: Path) -> str:
    known = _known_jobs(state_dir)
    if not known:
        return (
            f"no job has run with state dir {state_dir}: pass the --state-dir "
            "(or $AIRFLEET_STATE_DIR) its runs used, or a job file"
        )
    listed = ", ".join(known[:_SHOWN]) + (
        f" and {len(known) - _SHOWN} more" if len(known) > _SHOWN else ""
    )
    return (
        f"no job {name!r} has run with state dir {state_dir}{did_you_mean(name, known)}; "
        f"known jobs: {listed}"
    )


def _known_jobs(state_dir: Path) -> list[str]:
    """The jobs with at least one run journaled under ``state_dir``, sorted."""
    try:
        return sorted(d.name for d in state_dir.iterdir() if d.is_dir() and any(d.glob("*.jsonl")))
    except OSError:
        return []  # no such directory, or not readable: nothing known


def _row(run: JournalRun, *, running: bool) -> dict[str, Any]:
    counts = run.counts()
    end = run.end or {}
    status = "running" if running and run.end is None else run.status
    return {
        "file": run.path.name,
        "started_at": run.header.get("started_at"),
        "window": run.header.get("window"),
        "window_start": run.header.get("window_start"),
        "status": status,
        "planned": run.header.get("planned"),
        "ok": counts["ok"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
        "missing": counts["missing"],
        "resumes": run.resumes,
        "ended_at": end.get("at"),
        "duration_s": end.get("duration_s"),
    }
