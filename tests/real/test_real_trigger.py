"""A trigger on real Airflow 3.3 and 2.11: one logical date, and a run id keeps its values."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from pathlib import Path

import pytest

from ._real import RealAirflow, report, run_airfleet, server_of

pytestmark = [pytest.mark.real_airflow, pytest.mark.timeout(240, func_only=True)]


def test_one_instant_reaches_both_versions_and_another_conf_is_refused(
    real: RealAirflow, fleet: Path
) -> None:
    """Without --logical-date, both servers hold the run at the same instant the report
    shows (UTC Z); the same run id with another conf fails on every name, naming it,
    and the servers keep the first conf."""
    run_id = f"instant-{uuid.uuid4().hex[:8]}"
    args = ("-c", str(fleet), "trigger", "airfleet_idle", "--run-id", run_id, "--report", "json")
    out = run_airfleet(*args, "--conf", '{"k": 1}', env=real.env())
    assert out.returncode == 0, out.stderr
    results = report(out)["results"]
    assert len(results) == 20
    (shown,) = {r["data"]["logical_date"] for r in results}
    assert shown.endswith("Z")
    # The name whose POST made the run looked at the DAG: not paused.
    assert any(r["data"].get("dag_paused") is False for r in results)
    instant = datetime.fromisoformat(shown)
    for server in (real.af3, real.af2):
        status, run = server.request("GET", f"/dags/airfleet_idle/dagRuns/{run_id}")
        assert status == 200, run
        assert datetime.fromisoformat(run["logical_date"]) == instant, server.version
        assert run["conf"] == {"k": 1}

    again = run_airfleet(*args, "--conf", '{"k": 2}', env=real.env())
    assert again.returncode == 1, again.stderr
    refused = report(again)["results"]
    assert {r["outcome"] for r in refused} == {"failed"}
    assert all(r["data"]["conflicts"] == ["conf"] for r in refused), json.dumps(refused)[:2000]
    for result in refused:
        status, run = server_of(real, result["deployment"]).request(
            "GET", f"/dags/airfleet_idle/dagRuns/{run_id}"
        )
        assert (status, run["conf"]) == (200, {"k": 1})
