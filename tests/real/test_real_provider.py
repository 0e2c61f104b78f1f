"""airfleet.airflow inside real Airflow 3.3 and 2.11: the provider, the operator, fleet_dag.

Each release gets airfleet[airflow] installed over its cached install (which
stays untouched), a fresh SQLite home, and DAG files that drive the
simulator, run with ``airflow dags test``: every task in one process, as a
developer checks a DAG. What is asserted is what the simulator saw (runs
made, the fleet-wide rate), what Airflow recorded (task instances, XCom)
and what was written (the merged report).

The hostile parts: the same DAG run run again (Airflow 3 even gives the
re-run a new run id), a deployment whose server refuses its token and
quotes it back, and secrets that come from Airflow connections and
variables: ``airflow dags test`` masks nothing, so only airfleet's own
redaction keeps them out of task logs, XCom and the report.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from _simthread import SimThread, sim_in_thread
from airfleet.sim import Faults, Simulator

from ._real import ra

pytestmark = [pytest.mark.real_airflow, pytest.mark.timeout(900, func_only=True)]

ROOT = Path(__file__).resolve().parents[2]
LOGICAL_DATE = "2026-12-01"
SHARDS = 4
FLEET_RATE = 8.0
GOOD = 12  # deployments that answer; one more has a token its server refuses
BAD_TOKEN = "bad-token-that-the-server-quotes-7f3a9c"

DAGS = f"""\
from datetime import datetime, timedelta

from airfleet.airflow import AirfleetJobOperator, fleet_dag

try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG

START = datetime(2026, 1, 1)

fleet = fleet_dag(
    "airfleet_fleet", job="job.yaml", shards={SHARDS}, report_dir="reports",
    schedule=None, start_date=START, catchup=False,
)
refused = fleet_dag(
    "airfleet_refused", job="job-all.yaml", shards={SHARDS}, report_dir="reports",
    transfer="report_dir", schedule=None, start_date=START, catchup=False,
)
retried = fleet_dag(
    "airfleet_retried", job="job-retried.yaml", shards={SHARDS}, report_dir="reports",
    schedule=None, start_date=START, catchup=False,
    default_args={{"retries": 1, "retry_delay": timedelta(0)}},
)
with DAG("airfleet_single", schedule=None, start_date=START, catchup=False):
    AirfleetJobOperator(
        task_id="trigger", operation="trigger", dags=["hello"], select=["tag:good"],
        fleet="fleet.yaml", report="reports/single-{{{{ ds }}}}.json",
    )
"""

JOB = """\
version: 1
name: nightly
fleet: {fleet}
select: [{select}]
steps:
  - trigger: {{id: load, dags: [hello]}}
"""


@dataclass(frozen=True)
class Airflow:
    release: str
    python: Path
    home: Path
    env: dict[str, str]
    sim: SimThread
    secret: str

    def airflow(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.python), "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"airflow {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
            )
        return done

    def dags_test(self, dag_id: str) -> subprocess.CompletedProcess[str]:
        return self.airflow("dags", "test", dag_id, LOGICAL_DATE, check=False)

    @staticmethod
    def tail(done: subprocess.CompletedProcess[str]) -> str:
        """The end of a command's output and the lines that say what went wrong, for failures."""
        lines = (done.stdout + done.stderr).splitlines()
        errors = [x for x in lines if "ERROR" in x or "Error" in x or "error" in x]
        return "\n".join([*errors[-20:], "...", *lines[-30:]])

    def runs(self, prefix: str) -> dict[str, list[str]]:
        """Each deployment's runs of ``hello`` whose id starts with ``prefix``."""
        logged = self.sim.stats()["run_ids"]
        return {
            name: [r for r in per_dag.get("hello", []) if r.startswith(prefix)]
            for name, per_dag in logged.items()
        }

    def reports(self) -> dict[str, dict[str, Any]]:
        folder = self.home / "dags" / "reports"
        return {p.name: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))}

    def task_states(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        done = self.airflow("tasks", "states-for-dag-run", dag_id, run_id, "-o", "json")
        line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("["))
        states: list[dict[str, Any]] = json.loads(line)
        return states

    def xcom_values(self) -> list[str]:
        with sqlite3.connect(self.home / "airflow.db") as db:
            return [str(row[0]) for row in db.execute("SELECT value FROM xcom")]

    def everything_written(self) -> str:
        """Every task log, report and XCom value Airflow and airfleet wrote."""
        files = [p for p in self.home.rglob("*") if p.is_file() and p.suffix in (".log", ".json")]
        texts = [p.read_text(errors="replace") for p in files]
        return "\n".join([*texts, *self.xcom_values()])


@pytest.fixture(scope="module", params=["3.3", "2.11"])
def airflow(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Airflow]:
    release: str = request.param
    root = tmp_path_factory.mktemp(f"provider-{release}")
    try:
        python = ra.with_airfleet(release, root / "venv", ROOT)
    except ra.SetupError as exc:
        pytest.fail(
            f"could not install airfleet[airflow] over Airflow {release}: {exc}", pytrace=False
        )
    sim = Simulator(
        deployments=GOOD + 1, api="mixed", seed=20, faults=Faults(echo_credentials=True)
    )
    with sim_in_thread(sim) as served:
        home = root / "home"
        (home / "dags" / "reports").mkdir(parents=True)
        env = ra.airflow_env(home, python)
        secret = sim.env()["AIRFLEET_SIM_CLIENT_SECRET"]
        # The secrets come from Airflow: a connection (its password) and a variable.
        env["AIRFLOW_CONN_AIRFLEET_SIM"] = json.dumps({"conn_type": "http", "password": secret})
        env["AIRFLOW_VAR_AIRFLEET_BAD_TOKEN"] = BAD_TOKEN
        _write_dags(home / "dags", served)
        found = Airflow(release, python, home, env, served, secret)
        found.airflow("db", "migrate")
        yield found


def _write_dags(folder: Path, served: SimThread) -> None:
    fleet = yaml.safe_load(served.sim.fleet_yaml(served.url, auth="oauth"))
    fleet["auth"]["oauth"]["client_secret"] = "${airflow:conn.airfleet_sim.password}"
    fleet["auth"]["refused"] = {"kind": "token", "token": "${airflow:var.airfleet_bad_token}"}
    fleet["limits"] = {"max_per_second": FLEET_RATE}
    *good, bad = fleet["deployments"]
    for entry in good:
        entry["tags"] = ["good", *entry.get("tags", [])]
    bad["auth"] = "refused"
    (folder / "fleet.yaml").write_text(yaml.safe_dump(fleet), encoding="utf-8")
    # Calls that fail at once: only Airflow's retry of the task can finish them.
    fleet["defaults"]["retries"] = 0
    (folder / "fleet-retried.yaml").write_text(yaml.safe_dump(fleet), encoding="utf-8")
    good = "'tag:good'"
    (folder / "job.yaml").write_text(JOB.format(fleet="fleet.yaml", select=good), encoding="utf-8")
    (folder / "job-all.yaml").write_text(
        JOB.format(fleet="fleet.yaml", select=""), encoding="utf-8"
    )
    (folder / "job-retried.yaml").write_text(
        JOB.format(fleet="fleet-retried.yaml", select=good), encoding="utf-8"
    )
    (folder / "airfleet_dags.py").write_text(DAGS, encoding="utf-8")


def test_the_provider_is_listed(airflow: Airflow) -> None:
    done = airflow.airflow("providers", "list", "-o", "json")
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("["))
    names = {p["package_name"] for p in json.loads(line)}
    assert "airfleet" in names


def test_a_sharded_fleet_dag_triggers_each_deployment_once_even_when_run_again(
    airflow: Airflow,
) -> None:
    prefix = f"airfleet__airfleet_fleet.shard__{LOGICAL_DATE}T00:00:00Z__load"
    before = set(airflow.reports())
    first = airflow.dags_test("airfleet_fleet")
    assert first.returncode == 0, airflow.tail(first)
    runs = airflow.runs(prefix)
    good = airflow.sim.sim.names[:GOOD]
    assert {name: len(runs[name]) for name in good} == dict.fromkeys(good, 1)
    assert not runs.get(airflow.sim.sim.names[-1])  # not selected
    # Each shard ran alone here (dags test runs tasks one by one), within its share.
    assert airflow.sim.stats()["max_per_second"] <= FLEET_RATE / SHARDS + 1

    (name,) = set(airflow.reports()) - before
    report = airflow.reports()[name]
    assert report["summary"]["total"] == GOOD
    assert report["summary"]["ok"] == GOOD
    assert sorted(r["deployment"] for r in report["results"]) == sorted(good)
    run_id = name.removesuffix(".json")
    states = airflow.task_states("airfleet_fleet", run_id)
    mapped = sorted(int(s["map_index"]) for s in states if s["task_id"] == "shard")
    assert mapped == list(range(SHARDS))
    assert all(s["state"] == "success" for s in states)

    # The same DAG run again (a re-run of the logical date): nothing triggered twice.
    again = airflow.dags_test("airfleet_fleet")
    assert again.returncode == 0, airflow.tail(again)
    assert airflow.runs(prefix) == runs
    latest = max(airflow.reports().items(), key=lambda kv: kv[1]["summary"]["started_at"])[1]
    assert latest["summary"]["ok"] == GOOD
    assert all(r["data"]["already_existed"] for r in latest["results"])
    assert airflow.secret not in first.stdout + first.stderr + again.stdout + again.stderr
    assert airflow.secret not in airflow.everything_written()


def test_a_refused_deployment_fails_its_shard_and_the_run_but_the_report_is_whole(
    airflow: Airflow,
) -> None:
    """Its server quotes the token back: it reaches no log, XCom value or report.

    The shards hand on their results as files in the report directory here
    (``transfer="report_dir"``), not by XCom."""
    done = airflow.dags_test("airfleet_refused")
    assert done.returncode != 0
    names = [n for n, r in airflow.reports().items() if r["summary"]["total"] == GOOD + 1]
    assert len(names) == 1
    reports = [airflow.reports()[names[0]]]
    parts = airflow.home / "dags" / "reports" / names[0].removesuffix(".json")
    shard_files = sorted(p.name for p in parts.glob("*.json"))
    assert shard_files == [f"shard-{k}-of-{SHARDS}.json" for k in range(SHARDS)]
    payloads = [v for v in airflow.xcom_values() if "shard-" in v]
    assert len(payloads) == SHARDS
    assert all('"results"' not in v for v in payloads)
    summary, results = reports[0]["summary"], reports[0]["results"]
    bad = airflow.sim.sim.names[-1]
    assert summary["ok"] == GOOD
    assert summary["failed_deployments"] == [bad]
    assert len(results) == GOOD + 1
    output = done.stdout + done.stderr
    assert f"1 of {GOOD + 1} calls failed" in output
    for secret in (BAD_TOKEN, airflow.secret):
        assert secret not in output
        assert secret not in airflow.everything_written()
    assert airflow.sim.stats()["auth_failures"] >= 1


def test_a_task_retried_by_airflow_triggers_nothing_twice(airflow: Airflow) -> None:
    """Every trigger is recorded by its server, then its answer is lost (a 503 or a
    dropped connection) and the call fails at once: each shard fails its first try.
    Airflow's retry sends the same run ids; the servers refuse them as duplicates."""
    prefix = f"airfleet__airfleet_retried.shard__{LOGICAL_DATE}T00:00:00Z__load"
    faults = "/_sim/faults"
    before = airflow.sim.stats()["faults_injected"]["commit_then_fail"]
    airflow.sim.post(faults, {"commit_then_fail_rate": 1.0})
    try:
        done = airflow.dags_test("airfleet_retried")
    finally:
        airflow.sim.post(faults, {"commit_then_fail_rate": 0.0})
    assert done.returncode == 0, airflow.tail(done)
    stats = airflow.sim.stats()
    assert stats["faults_injected"]["commit_then_fail"] - before == GOOD
    runs = airflow.runs(prefix)
    good = airflow.sim.sim.names[:GOOD]
    assert {name: len(runs[name]) for name in good} == dict.fromkeys(good, 1)
    (report,) = [
        r
        for r in airflow.reports().values()
        if r["results"] and str(r["results"][0]["data"].get("dag_run_id")).startswith(prefix)
    ]
    assert report["summary"]["ok"] == GOOD
    assert all(r["data"]["already_existed"] for r in report["results"])


def test_the_operator_alone_runs_one_operation(airflow: Airflow) -> None:
    prefix = f"airfleet__airfleet_single.trigger__{LOGICAL_DATE}T00:00:00Z__trigger"
    for _ in range(2):
        done = airflow.dags_test("airfleet_single")
        assert done.returncode == 0, airflow.tail(done)
    runs = airflow.runs(prefix)
    good = airflow.sim.sim.names[:GOOD]
    assert {name: len(runs[name]) for name in good} == dict.fromkeys(good, 1)
    report = airflow.reports()[f"single-{LOGICAL_DATE}.json"]
    assert report["summary"]["ok"] == GOOD
    assert all(r["data"]["already_existed"] for r in report["results"])
