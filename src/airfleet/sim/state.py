"""One simulated deployment's state (DAGs, runs, pools) and its JSON shapes per API."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

__all__ = ["DagRun", "Pool", "SimDag", "SimDeployment", "iso"]

Api = Literal["v1", "v2"]
VERSIONS = {"v1": "2.11.2", "v2": "3.3.2"}


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
    forced: str | None = None  # a state set by PATCH


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
            "data_interval_end": logical,
            "last_scheduling_decision": None,
            "run_type": "manual",
            "state": state,
            "conf": run.conf,
            "note": run.note,
        }
        if self.api == "v2":
            base.update(
                queued_at=iso(run.queued_at),
                run_after=iso(run.queued_at),
                triggered_by="rest_api",
                triggering_user_name="admin",
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
            base.update(execution_date=logical, external_trigger=True)
        return base

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
    """Start and end dates consistent with the state machine."""
    if state == "queued":
        return None, None
    start = run.queued_at + timedelta(seconds=queued_s)
    if state == "running":
        return start, None
    return start, start + timedelta(seconds=duration_s)


def utcnow() -> datetime:
    return datetime.now(UTC)
