"""``fleet_dag``: one job, sharded over Airflow's workers: plan, one mapped task per shard, merge.

- ``plan`` reads the job and the fleet (discovering it if the fleet says
  to) and splits the deployments the job selects into shards
  (:func:`airfleet.jobs.hosted.plan_shards`): deterministic, names only.
- ``shard`` is an :class:`~airfleet.airflow.operator.AirfleetJobOperator`
  mapped over them (dynamic task mapping): each runs its deployments
  within its share of every shared limit, and hands on its results by XCom
  or as a file in the report directory.
- ``merge`` (which runs whatever became of the shards) combines every
  result into one report, ``report_dir/<dag run id>.json``, and one
  summary, its return value; a shard that left no results counts each of
  its deployments as failed.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from airfleet.airflow import _compat
from airfleet.airflow.operator import (
    SHARD_KEY,
    AirfleetJobOperator,
    Transfer,
    failure_line,
    file_safe,
    resolve,
    table_text,
    write_report,
    xcom_summary,
)
from airfleet.airflow.secrets import AirflowSecrets
from airfleet.discovery import discover
from airfleet.errors import ConfigError, UsageError
from airfleet.fleet_file import load_fleet
from airfleet.jobs.hosted import ShardReport, merge_reports, plan_shards
from airfleet.jobs.shards import Shard
from airfleet.jobs.spec import load_job

__all__ = ["fleet_dag"]

PLAN, SHARD, MERGE = "plan", "shard", "merge"


def fleet_dag(
    dag_id: str,
    *,
    job: str,
    shards: int,
    report_dir: str | None = None,
    fleet: str | None = None,
    transfer: Transfer = "xcom",
    **dag_kwargs: Any,
) -> Any:
    """A DAG that runs job file ``job`` as ``shards`` mapped tasks, then merges their results.

    ``report_dir``: where the merged report goes (``<dag run id>.json``);
    ``transfer="report_dir"`` sends each shard's results there too (a folder
    every worker sees) instead of by XCom. ``fleet``: the fleet file if the
    job names none. Relative paths start at the folder of the file calling
    this. ``dag_kwargs`` go to Airflow's ``DAG`` (``schedule``,
    ``start_date``, ``default_args`` with ``retries``, ...).
    """
    if not isinstance(shards, int) or shards < 1:
        raise UsageError(f"shards must be a whole number of at least 1, not {shards!r}")
    base = Path(inspect.stack()[1].filename).parent
    job_path = resolve(job, base)
    fleet_path = resolve(fleet, base) if fleet is not None else None
    folder = resolve(report_dir, base) if report_dir is not None else None
    if transfer == "report_dir" and folder is None:
        raise UsageError("transfer='report_dir' needs report_dir= (a folder every worker sees)")

    with _compat.DAG(dag_id, **dag_kwargs) as dag:

        @_compat.task(task_id=PLAN)  # type: ignore[untyped-decorator]
        def plan() -> list[dict[str, Any]]:
            return [s.to_dict() for s in _plan(job_path, fleet_path, shards)]

        @_compat.task(task_id=MERGE, trigger_rule="all_done", multiple_outputs=False)  # type: ignore[untyped-decorator]
        def merge(planned: list[dict[str, Any]] | None) -> dict[str, Any]:
            if planned is None:  # merge runs whatever happened upstream
                raise _compat.AirflowException(
                    "airfleet: the plan task failed, so no shard ran; see the plan task's log"
                )
            context = _compat.get_current_context()
            reports = {i: _read(p) for i, p in _pulled(context["ti"], len(planned)).items()}
            report = merge_reports([Shard.from_dict(s) for s in planned], reports)
            print(table_text(report))
            if folder is not None:
                path = Path(folder) / f"{file_safe(context['dag_run'].run_id)}.json"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_report(report, str(path))
            if report.summary.failed:
                raise _compat.AirflowException(failure_line(report))
            return xcom_summary(report)

        planned = plan()
        ran = AirfleetJobOperator.partial(
            task_id=SHARD,
            job=job_path,
            fleet=fleet_path,
            report_dir=folder,
            transfer=transfer,
        ).expand(shard=planned)
        ran >> merge(planned)
    return dag


def _plan(job_path: str, fleet_path: str | None, count: int) -> tuple[Shard, ...]:
    try:
        job = load_job(job_path)
        path = job.fleet or fleet_path
        if path is None:
            raise ConfigError(
                "no fleet file: name it in the job (fleet:) or pass fleet= to fleet_dag",
                file=job.source,
            )
        fleet = load_fleet(path, env=AirflowSecrets())
        if fleet.discovery:
            fleet = anyio.run(discover, fleet)
        return plan_shards(job, fleet, count)
    except (ConfigError, UsageError) as exc:
        raise _compat.AirflowFailException(f"airfleet: {exc}") from None


def _pulled(ti: Any, count: int) -> dict[int, Mapping[str, Any]]:
    """Each shard's payload, by shard index (a shard that pushed none is absent)."""
    found: dict[int, Mapping[str, Any]] = {}
    for map_index in range(count):
        value = ti.xcom_pull(task_ids=SHARD, key=SHARD_KEY, map_indexes=map_index)
        if isinstance(value, list):  # some releases wrap a single map index's value
            value = value[0] if value else None
        if isinstance(value, Mapping) and "shard" in value:
            found[int(value["shard"])] = value
    return found


def _read(payload: Mapping[str, Any]) -> ShardReport:
    """A shard's results and summary: sent by XCom, or read from the file it wrote."""
    if "results" in payload:
        return ShardReport(payload["results"], payload.get("summary") or {})
    document = json.loads(Path(str(payload["path"])).read_text(encoding="utf-8"))
    return ShardReport(document["results"], document["summary"])
