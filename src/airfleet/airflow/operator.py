"""``AirfleetJobOperator``: a job file, or one fleet operation, run as an Airflow task.

One request through it: :meth:`AirfleetJobOperator.execute` loads the job and
the fleet (secrets through :class:`~airfleet.airflow.secrets.AirflowSecrets`),
derives run ids from the DAG run, and hands both to
:func:`airfleet.jobs.hosted.run_hosted`, the same engine ``airfleet run``
drives. What comes back is logged as the report's table; its summary is the
task's return value (XCom).
"""

from __future__ import annotations

import functools
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anyio
from rich.console import Console

from airfleet.airflow import _compat
from airfleet.airflow.secrets import AirflowSecrets
from airfleet.engine import RunReport
from airfleet.errors import AirfleetError, ConfigError, UsageError
from airfleet.events import CallFinished, Event
from airfleet.fleet_file import load_fleet
from airfleet.inventory import Fleet
from airfleet.jobs.hosted import host_run_ids, run_hosted, run_label
from airfleet.jobs.shards import Shard
from airfleet.jobs.spec import STEP_KINDS, Job, load_job, parse_job
from airfleet.report.jsonfmt import render_json
from airfleet.report.output import output_to
from airfleet.report.table import render_table
from airfleet.results import Outcome

__all__ = [
    "SHARD_KEY",
    "AirfleetJobOperator",
    "Transfer",
    "dag_folder",
    "failure_line",
    "resolve",
    "table_text",
    "write_report",
    "xcom_summary",
]

# The XCom key a shard's results (or the path of its part file) travel under.
SHARD_KEY = "airfleet_shard"
Transfer = Literal["xcom", "report_dir"]
_TABLE_WIDTH = 160


def dag_folder(context: Mapping[str, Any]) -> Path:
    """The folder of the running DAG's file: where relative job and fleet paths start."""
    fileloc = getattr(context.get("dag"), "fileloc", None)
    return Path(fileloc).parent if fileloc else Path.cwd()


def resolve(path: str, base: Path) -> str:
    """``path``, relative to ``base`` unless absolute."""
    return path if Path(path).is_absolute() else str(base / path)


class AirfleetJobOperator(_compat.BaseOperator):  # type: ignore[misc]
    """Run a job file (``job=``), or one operation (``operation=``), on the fleet.

    ``operation`` is a job step kind (``trigger``, ``pause``, ``unpause``,
    ``health``, ``audit_pools``, ``api``, ``runs``, ``import_errors``) with
    ``dags``, ``select`` and the step's other ``options`` (``conf``,
    ``wait``, ``spec``, ...), exactly as a job file would write them.
    ``fleet``: the fleet file when the job names none (default
    ``$AIRFLEET_CONFIG``). Relative paths start at the DAG file's folder.

    Run ids derive from the DAG run and this task, so a retry, a cleared
    task or a re-run of the DAG run triggers nothing twice (``already_existed``).
    The task fails if any call failed (Airflow's retries then rerun it; the
    calls that were done answer as they did); a bad job or fleet fails it at
    once, without retries. ``report``: a path to write the full JSON report
    to (templated, e.g. ``reports/{{ run_id }}.json``). ``shard`` is set by
    :func:`airfleet.airflow.fleet_dag`.
    """

    template_fields: Sequence[str] = ("job", "fleet", "report", "report_dir")
    ui_color = "#d6e9f8"

    def __init__(
        self,
        *,
        job: str | None = None,
        operation: str | None = None,
        dags: Sequence[str] = (),
        select: Sequence[str] = (),
        options: Mapping[str, Any] | None = None,
        fleet: str | None = None,
        report: str | None = None,
        shard: Mapping[str, Any] | None = None,
        report_dir: str | None = None,
        transfer: Transfer = "xcom",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (job is None) == (operation is None):
            raise UsageError("AirfleetJobOperator takes job= (a job file) or operation=, not both")
        if operation is not None and operation not in STEP_KINDS:
            raise UsageError(f"operation {operation!r} is not one of {', '.join(STEP_KINDS)}")
        if transfer not in ("xcom", "report_dir"):
            raise UsageError(f"transfer is 'xcom' or 'report_dir', not {transfer!r}")
        if transfer == "report_dir" and report_dir is None:
            raise UsageError("transfer='report_dir' needs report_dir= (a folder every worker sees)")
        self.job = job
        self.operation = operation
        self.dags = list(dags)
        self.select = list(select)
        self.options = dict(options or {})
        self.fleet = fleet
        self.report = report
        self.shard = dict(shard) if shard is not None else None
        self.report_dir = report_dir
        self.transfer = transfer

    # -- what the task runs --------------------------------------------------------

    def load(self, context: Mapping[str, Any]) -> tuple[Job, Fleet]:
        """The job and its fleet (not yet discovered); ConfigError if either is bad."""
        base = dag_folder(context)
        job = load_job(resolve(self.job, base)) if self.job is not None else self._one_step(base)
        path = job.fleet or self.fleet or os.environ.get("AIRFLEET_CONFIG")
        if path is None:
            raise ConfigError(
                "no fleet file: name it in the job (fleet:), pass fleet= or set $AIRFLEET_CONFIG",
                file=job.source,
            )
        return job, load_fleet(resolve(path, base), env=AirflowSecrets())

    def _one_step(self, base: Path) -> Job:
        assert self.operation is not None  # noqa: S101 - __init__ checked it
        # The step's id names it in run ids: the operation, unless options say.
        body: dict[str, Any] = {"id": self.operation, **self.options}
        if self.dags:
            body["dags"] = self.dags
        document = {
            "version": 1,
            "name": _job_name(self.task_id),
            "select": self.select,
            "steps": [{self.operation: body}],
        }
        # Through the job file's own validation: the same rules, the same messages.
        return parse_job(json.dumps(document), source=f"<task {self.task_id}>", base=base)

    def execute(self, context: Mapping[str, Any]) -> dict[str, Any]:
        try:
            job, fleet = self.load(context)
            shard = Shard.from_dict(self.shard) if self.shard is not None else None
            dag_run = context["dag_run"]
            label = run_label(getattr(dag_run, "logical_date", None), dag_run.run_id)
            run_ids = host_run_ids(job, scope=f"{self.dag_id}.{self.task_id}", label=label)
        except (ConfigError, UsageError) as exc:
            # A retry cannot fix a bad file: fail now, without retries.
            raise _compat.AirflowFailException(f"airfleet: {exc}") from None
        try:
            report = anyio.run(
                functools.partial(
                    run_hosted, job, fleet, run_ids=run_ids, shard=shard, listeners=[self._event]
                )
            )
        except (ConfigError, UsageError) as exc:
            raise _compat.AirflowFailException(f"airfleet: {exc}") from None
        except AirfleetError as exc:  # a platform or server down: worth Airflow's retry
            raise _compat.AirflowException(f"airfleet: {exc}") from None
        self.log.info("%s", table_text(report))
        if self.report is not None:
            write_report(report, resolve(self.report, dag_folder(context)))
        if shard is not None:
            payload = self._shard_payload(report, shard, context)
            context["ti"].xcom_push(key=SHARD_KEY, value=payload)
        if report.summary.failed:
            raise _compat.AirflowException(failure_line(report))
        return xcom_summary(report)

    def _shard_payload(
        self, report: RunReport, shard: Shard, context: Mapping[str, Any]
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"shard": shard.index, "summary": xcom_summary(report)}
        if self.transfer == "xcom":
            payload["results"] = [r.to_dict() for r in report.results]
            return payload
        assert self.report_dir is not None  # noqa: S101 - __init__ checked it
        folder = Path(resolve(self.report_dir, dag_folder(context))) / file_safe(
            context["dag_run"].run_id
        )
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"shard-{shard.index}-of-{shard.count}.json"
        write_report(report, str(path))
        payload["path"] = str(path)
        return payload

    def _event(self, event: Event) -> None:
        # One line per call that did not go well; the table at the end has the rest.
        if isinstance(event, CallFinished) and event.result.outcome is Outcome.FAILED:
            result = event.result
            self.log.warning(
                "%s %s %s failed: %s",
                result.deployment,
                result.operation,
                result.target,
                result.error,
            )


def xcom_summary(report: RunReport) -> dict[str, Any]:
    """The summary a task returns: the report's, less its per-deployment counts.

    Those grow with the fleet (about 40 bytes a deployment) and are in the
    table and the report already; XCom lives in Airflow's database.
    """
    summary = report.summary.to_dict()
    del summary["by_deployment"]
    return summary


def table_text(report: RunReport) -> str:
    """The report as the terminal table, in plain text for a task log."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=_TABLE_WIDTH, color_system=None, force_terminal=False)
    render_table(report.summary, report.results, console=console)
    return buffer.getvalue()


def write_report(report: RunReport, path: str) -> None:
    """The JSON report at ``path``, whole or not at all."""
    with output_to(path) as out:
        render_json(report.summary, report.results, out)


def failure_line(report: RunReport) -> str:
    """The exception message of a task whose calls failed."""
    s = report.summary
    names = ", ".join(s.failed_deployments[:5])
    more = f" and {len(s.failed_deployments) - 5} more" if len(s.failed_deployments) > 5 else ""
    return f"airfleet: {s.failed} of {s.total} calls failed (on {names}{more}); see the table above"


def file_safe(text: str) -> str:
    """A DAG run id as a file name (it may hold ':' and '+', which are fine; '/' is not)."""
    return text.replace("/", "_").replace("\\", "_")


def _job_name(task_id: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in task_id).lstrip("._-")
    return cleaned or "task"
