"""Scheduled jobs: job files, schedule windows, the journal and the lock.

``airfleet run JOB.yaml`` loads a :class:`Job`, plans every step, takes the
job's :class:`JobLock`, and runs the steps with a :class:`JobRunner` that
appends each result to the run's :class:`Journal`.
"""

from __future__ import annotations

from airfleet.jobs.journal import Journal, JournalRun, read_runs
from airfleet.jobs.lock import JobLock
from airfleet.jobs.runner import JobRunner, PlannedStep, find_resumable, plan_job, run_ids_for
from airfleet.jobs.spec import Job, JobStep, load_job, parse_job
from airfleet.jobs.windows import parse_window, window_start

__all__ = [
    "Job",
    "JobLock",
    "JobRunner",
    "JobStep",
    "Journal",
    "JournalRun",
    "PlannedStep",
    "find_resumable",
    "load_job",
    "parse_job",
    "parse_window",
    "plan_job",
    "read_runs",
    "run_ids_for",
    "window_start",
]
