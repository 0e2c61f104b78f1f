"""A job file with a window, run twice against real Airflow 3.3 and 2.11: nothing twice."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from ._real import RealAirflow, report, run_airfleet

pytestmark = [pytest.mark.real_airflow, pytest.mark.timeout(300, func_only=True)]

JOB = """\
version: 1
name: %(name)s
fleet: %(fleet)s
window: daily
steps:
  - health: {}
  - trigger:
      id: load
      dags: [airfleet_ok]
      wait: true
      timeout_s: 150
      poll_s: 1
"""


def test_a_windowed_job_run_twice_triggers_once_per_server(
    real: RealAirflow, fleet: Path, tmp_path: Path
) -> None:
    """Window run ids: run 1 makes one run per server and waits it to success;
    run 2 finds them (409 -> already_existed) and makes none."""
    name = f"real-{uuid.uuid4().hex[:6]}"
    job = tmp_path / "job.yaml"
    job.write_text(JOB % {"name": name, "fleet": fleet}, encoding="utf-8")
    state = tmp_path / "state"
    args = ("run", str(job), "--state-dir", str(state), "--report", "json")

    first = run_airfleet(*args, env=real.env())
    data = report(first)
    assert first.returncode == 0, first.stderr[-3000:]
    triggers = [r for r in data["results"] if r["operation"] == "trigger"]
    assert len(triggers) == 20
    assert all(r["data"]["final_state"] == "success" for r in triggers)
    (run_id,) = {r["data"]["dag_run_id"] for r in triggers}
    assert run_id.startswith(f"airfleet__{name}__")
    assert run_id.endswith("__load")

    second = run_airfleet(*args, env=real.env())
    again = report(second)
    assert second.returncode == 0, second.stderr[-3000:]
    triggers = [r for r in again["results"] if r["operation"] == "trigger"]
    assert {r["data"]["dag_run_id"] for r in triggers} == {run_id}
    assert all(r["data"]["already_existed"] is True for r in triggers)

    for server in (real.af3, real.af2):
        status, body = server.request("GET", "/dags/airfleet_ok/dagRuns?limit=100")
        assert status == 200
        ours = [run for run in body["dag_runs"] if run["dag_run_id"] == run_id]
        assert [run["state"] for run in ours] == ["success"]
