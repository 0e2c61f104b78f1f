"""One simulated deployment's state (DAGs, runs, pools, import errors) and its JSON per API."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = [
    "HISTORY_UNTIL",
    "DagRun",
    "ParseImportError",
    "Pool",
    "SimDag",
    "SimDeployment",
    "iso",
    "past_runs",
]

Api = Literal["v1", "v2"]
VERSIONS = {"v1": "2.11.2", "v2": "3.3.2"}
DAGS_FOLDER = "/opt/airflow/dags"
# The simulator's fixed "present" for everything seeded (the health heartbeats
# say the same instant), so a seed always gives the same history.
HISTORY_UNTIL = datetime(2026, 11, 24, tzinfo=UTC)
HISTORY_SPAN = timedelta(days=3)
# Mostly finished well; "running" and "queued" ones are stuck (a full pool, a
# dead worker) and stay so.
_PAST_STATES = ("success", "failed", "running", "queued")
_PAST_WEIGHTS = (78, 12, 6, 4)
_SCHEDULED_SHARE = 0.8
_SCHEDULE_INTERVAL = timedelta(hours=1)


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat().replace("+00:00", "Z")


def iso_v1(moment: datetime | None) -> str | None:
    """As Airflow 2 writes a date: ``+00:00``, not ``Z``."""
    return None if moment is None else moment.astimezone(UTC).isoformat()


@dataclass(slots=True)
class SimDag:
    dag_id: str
    is_paused: bool = False
    fails: bool = False
    tags: tuple[str, ...] = ("airfleet-sim",)


@dataclass(slots=True)
class DagRun:
    dag_id: str
    dag_run_id: str
    logical_date: datetime | None
    queued_at: datetime
    created: float  # the simulator clock, for the state machine
    conf: dict[str, Any]
    note: str | None
    forced: str | None = None  # a state set by PATCH, or a past run's state
    run_type: str = "manual"
    triggered_by: str = "rest_api"
    run_after: datetime | None = None  # None: queued_at
    interval_end: datetime | None = None  # data_interval_end; None: the logical date
    # A run of the seeded history: its dates are fixed, the state machine does
    # not move it, and only a PATCH changes it (as Airflow's set_state does).
    past: bool = False
    started: datetime | None = None
    ended: datetime | None = None
    seq: int = 0  # the metadata database's id: the default listing order, across DAGs

    def set_past_state(self, state: str, now: datetime) -> None:
        """A PATCH of a past run: its dates change as Airflow 2.11's ``DagRun.set_state`` says."""
        before = self.forced
        if state == "queued":
            self.queued_at = now
            if before != "queued":
                self.started = self.ended = None
        elif before in ("queued", "running"):
            self.ended = now
        self.forced = state


@dataclass(slots=True)
class ParseImportError:
    """A DAG file the DAG processor could not import (one per file, as in Airflow)."""

    import_error_id: int
    filename: str  # relative to the DAGs folder, as Airflow 3 keeps it
    stack_trace: str
    timestamp: datetime


@dataclass(slots=True)
class Pool:
    name: str
    slots: int
    description: str = ""
    include_deferred: bool = False
    occupied: int = 0
    queued: int = 0

    def open_slots(self) -> int:
        return -1 if self.slots == -1 else max(0, self.slots - self.occupied)


@dataclass(slots=True)
class SimDeployment:
    """A deployment: its API, credentials' signing secret, DAGs, runs and pools."""

    name: str
    api: Api
    tags: tuple[str, ...]
    jwt_secret: bytes
    dags: dict[str, SimDag] = field(default_factory=dict)
    runs: dict[str, dict[str, DagRun]] = field(default_factory=dict)
    pools: dict[str, Pool] = field(default_factory=dict)
    import_errors: dict[str, ParseImportError] = field(default_factory=dict)
    runs_made: int = 0
    import_errors_made: int = 0

    # -- rows -----------------------------------------------------------------------

    def add_run(self, run: DagRun) -> DagRun:
        """Store ``run`` under its DAG with the next id."""
        self.runs_made += 1
        run.seq = self.runs_made
        self.runs.setdefault(run.dag_id, {})[run.dag_run_id] = run
        return run

    def runs_of(self, dag_id: str | None) -> list[DagRun]:
        """One DAG's runs, or every DAG's (``None``), in id order."""
        if dag_id is not None:
            return list(self.runs.get(dag_id, {}).values())
        every = [run for per_dag in self.runs.values() for run in per_dag.values()]
        return sorted(every, key=lambda run: run.seq)

    def record_import_error(
        self, filename: str, stack_trace: str, timestamp: datetime
    ) -> ParseImportError:
        """A file's import error; a file that already has one keeps its id and gets the new
        trace, as the DAG processor updates its row when it parses the file again."""
        relative = _in_dags_folder(filename)
        error = self.import_errors.get(relative)
        if error is None:
            self.import_errors_made += 1
            error = ParseImportError(self.import_errors_made, relative, stack_trace, timestamp)
            self.import_errors[relative] = error
        else:
            error.stack_trace, error.timestamp = stack_trace, timestamp
        return error

    def forget_import_error(self, filename: str) -> None:
        """The file was fixed (or deleted): its error goes, as the DAG processor drops it."""
        self.import_errors.pop(_in_dags_folder(filename), None)

    # -- run state machine --------------------------------------------------------

    def run_state(self, run: DagRun, now: float, queued_s: float, duration_s: float) -> str:
        if run.forced is not None:
            return run.forced
        if self.dags[run.dag_id].is_paused:
            return "queued"
        elapsed = now - run.created
        if elapsed < queued_s:
            return "queued"
        if elapsed < queued_s + duration_s:
            return "running"
        return "failed" if self.dags[run.dag_id].fails else "success"

    # -- shapes -------------------------------------------------------------------

    def dag_json(self, dag: SimDag) -> dict[str, Any]:
        base: dict[str, Any] = {
            "dag_id": dag.dag_id,
            "dag_display_name": dag.dag_id,
            "is_paused": dag.is_paused,
            "fileloc": f"/opt/airflow/dags/{dag.dag_id}.py",
            "file_token": f"tok-{dag.dag_id}",
            "owners": ["airflow"],
            "description": None,
            "max_active_tasks": 16,
            "max_active_runs": 16,
            "has_task_concurrency_limits": False,
            "has_import_errors": False,
            "next_dagrun_data_interval_start": None,
            "next_dagrun_data_interval_end": None,
        }
        if self.api == "v2":
            base.update(
                is_stale=False,
                tags=[
                    {"name": t, "dag_id": dag.dag_id, "dag_display_name": dag.dag_id}
                    for t in dag.tags
                ],
                timetable_partitioned=False,
                # Required by apache-airflow-client 3.3.2's DAGResponse model.
                timetable_periodic=False,
                is_backfillable=False,
                timetable_summary=None,
                timetable_description="Never, external triggers only",
                max_consecutive_failed_dag_runs=0,
                bundle_name="dags-folder",
                bundle_version=None,
                relative_fileloc=f"{dag.dag_id}.py",
                last_parsed_time="2026-11-24T00:00:00Z",
                last_parse_duration=0.01,
                allowed_run_types=None,
                last_expired=None,
                next_dagrun_logical_date=None,
                next_dagrun_run_after=None,
            )
        else:
            base.update(
                is_active=True,
                is_subdag=False,
                root_dag_id=None,
                tags=[{"name": t} for t in dag.tags],
                schedule_interval=None,
                timetable_description="Never, external triggers only",
                last_parsed_time="2026-11-24T00:00:00+00:00",
                next_dagrun=None,
                next_dagrun_create_after=None,
                default_view="grid",
                # Fields real 2.11.2 still lists (pickling and locks are unused).
                last_expired=None,
                last_pickled=None,
                pickle_id=None,
                scheduler_lock=None,
                max_consecutive_failed_dag_runs=0,
            )
        return base

    def run_json(
        self, run: DagRun, state: str, start: datetime | None, end: datetime | None
    ) -> dict[str, Any]:
        spell = iso if self.api == "v2" else iso_v1
        logical = spell(run.logical_date)
        base: dict[str, Any] = {
            "dag_run_id": run.dag_run_id,
            "dag_id": run.dag_id,
            "logical_date": logical,
            "start_date": spell(start),
            "end_date": spell(end),
            "data_interval_start": logical,
            "data_interval_end": spell(run.interval_end) if run.interval_end else logical,
            "last_scheduling_decision": None,
            "run_type": run.run_type,
            "state": state,
            "conf": run.conf,
            "note": run.note,
        }
        if self.api == "v2":
            base.update(
                queued_at=iso(run.queued_at),
                run_after=iso(run.run_after or run.queued_at),
                triggered_by=run.triggered_by,
                # The scheduler triggers as nobody.
                triggering_user_name=None if run.triggered_by == "timetable" else "admin",
                dag_display_name=run.dag_id,
                bundle_version=None,
                # Real 3.3.2 lists the DAG version the run uses (one, here).
                dag_versions=[
                    {
                        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, run.dag_id)),
                        "version_number": 1,
                        "dag_id": run.dag_id,
                        "bundle_name": "dags-folder",
                        "bundle_version": None,
                        "created_at": "2026-11-24T00:00:00Z",
                        "dag_display_name": run.dag_id,
                        "bundle_url": None,
                    }
                ],
                duration=(end - start).total_seconds() if start and end else None,
                partition_key=None,
                partition_date=None,
            )
        else:
            base.update(execution_date=logical, external_trigger=run.run_type == "manual")
        return base

    def import_error_json(self, error: ParseImportError) -> dict[str, Any]:
        if self.api == "v2":
            return {
                "import_error_id": error.import_error_id,
                "timestamp": iso(error.timestamp),
                "filename": error.filename,
                "bundle_name": "dags-folder",
                "stack_trace": error.stack_trace,
            }
        # Airflow 2 keeps the file's absolute path.
        absolute = error.filename
        if not absolute.startswith("/"):
            absolute = f"{DAGS_FOLDER}/{absolute}"
        return {
            "filename": absolute,
            "import_error_id": error.import_error_id,
            "stack_trace": error.stack_trace,
            "timestamp": iso_v1(error.timestamp),
        }

    def pool_json(self, pool: Pool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": pool.name,
            "slots": pool.slots,
            "description": pool.description or None,
            "include_deferred": pool.include_deferred,
            "occupied_slots": pool.occupied,
            "running_slots": pool.occupied,
            "queued_slots": pool.queued,
            "scheduled_slots": 0,
            "open_slots": pool.open_slots(),
            "deferred_slots": 0,
        }
        if self.api == "v2":
            body["team_name"] = None
        return body


def run_times(
    run: DagRun, state: str, queued_s: float, duration_s: float
) -> tuple[datetime | None, datetime | None]:
    """Start and end dates consistent with the state machine; a past run keeps its own."""
    if run.past:
        return run.started, run.ended
    if state == "queued":
        return None, None
    start = run.queued_at + timedelta(seconds=queued_s)
    if state == "running":
        return start, None
    return start, start + timedelta(seconds=duration_s)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _in_dags_folder(filename: str) -> str:
    return filename.removeprefix(DAGS_FOLDER + "/")


def past_runs(dep: SimDeployment, rng: random.Random, count: int, until: datetime) -> list[DagRun]:
    """``count`` runs of ``dep``'s DAGs over the 3 days before ``until``, oldest first.

    Every one ended (or stuck) before ``until``; logical dates are unique per
    DAG, as Airflow requires. Scheduled runs cover an hour's data interval and
    start when it ends; a failing DAG's finished runs failed.
    """
    dag_ids = list(dep.dags)
    if not dag_ids or count <= 0:
        return []
    # Room at the end for an interval, queueing and the longest run.
    window_s = int((HISTORY_SPAN - 2 * _SCHEDULE_INTERVAL).total_seconds())
    earliest = until - HISTORY_SPAN
    taken: set[tuple[str, datetime]] = set()
    runs: list[DagRun] = []
    for _ in range(count):
        dag_id = rng.choice(dag_ids)
        state = rng.choices(_PAST_STATES, _PAST_WEIGHTS)[0]
        if state == "success" and dep.dags[dag_id].fails:
            state = "failed"
        scheduled = rng.random() < _SCHEDULED_SHARE
        logical = earliest + timedelta(minutes=rng.randrange(window_s // 60))
        while (dag_id, logical) in taken:
            logical += timedelta(seconds=1)
        taken.add((dag_id, logical))
        run_after = logical + _SCHEDULE_INTERVAL if scheduled else logical
        queued_at = run_after + timedelta(seconds=rng.uniform(0.2, 5.0))
        started = None if state == "queued" else queued_at + timedelta(seconds=rng.uniform(1, 30))
        ended = None
        if started is not None and state in ("success", "failed"):
            ended = started + timedelta(seconds=rng.uniform(20, 1200))
        kind = "scheduled" if scheduled else "manual"
        run = DagRun(
            dag_id,
            f"{kind}__{logical.isoformat()}",
            logical,
            queued_at,
            0.0,
            {},
            None,
            forced=state,
            run_type=kind,
            triggered_by="timetable" if scheduled else "ui",
            run_after=run_after,
            interval_end=run_after if scheduled else None,
            past=True,
            started=started,
            ended=ended,
        )
        runs.append(run)
    runs.sort(key=lambda run: run.queued_at)
    return runs
