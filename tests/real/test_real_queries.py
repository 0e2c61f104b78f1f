"""``runs``, ``import-errors`` and ``api`` against real Airflow 3.3 and 2.11.

One deployment per server (the fleet names each ten times). What the
reports say is checked against what the servers list themselves.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ._real import RealAirflow, ra, report, run_airfleet, server_of

pytestmark = [pytest.mark.real_airflow, pytest.mark.timeout(240, func_only=True)]

ONE_EACH = "name:af3-00,name:af2-00"


def cli(real: RealAirflow, fleet: Path, *args: str) -> tuple[Any, dict[str, Any]]:
    out = run_airfleet("-c", str(fleet), *args, "-s", ONE_EACH, "--report", "json", env=real.env())
    return out, report(out)


def test_runs_filters_by_state_and_time_in_each_version_s_form(
    real: RealAirflow, fleet: Path
) -> None:
    run_id = f"runs-{uuid.uuid4().hex[:8]}"
    out, _ = cli(
        real, fleet, "trigger", "airfleet_fails", "--run-id", run_id,
        "--wait", "--timeout", "150", "--poll", "1",
    )  # fmt: skip
    assert out.returncode == 1, out.stderr  # the DAG fails, as it should

    out, data = cli(real, fleet, "runs", "airfleet_fails", "--state", "failed", "--since", "15m")
    assert out.returncode == 0, out.stderr
    for result in data["results"]:
        server = server_of(real, result["deployment"])
        (run,) = [r for r in result["data"]["runs"] if r["dag_run_id"] == run_id]
        assert run["state"] == "failed"
        assert run["dag_id"] == "airfleet_fails"
        assert run["start_date"].endswith("Z")
        assert run["end_date"].endswith("Z")
        assert run["run_type"] == "manual"
        assert all(r["state"] == "failed" for r in result["data"]["runs"])
        status, body = server.request("GET", "/dags/airfleet_fails/dagRuns?limit=100")
        assert status == 200
        failed = {r["dag_run_id"] for r in body["dag_runs"] if r["state"] == "failed"}
        assert {r["dag_run_id"] for r in result["data"]["runs"]} <= failed

    # The filters reach the server in its own spelling: nothing is from the future...
    future = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    out, data = cli(real, fleet, "runs", "--since", future)
    assert out.returncode == 0, out.stderr
    assert all(r["data"]["runs"] == [] for r in data["results"])
    # ...and a success filter leaves the failed run out.
    out, data = cli(real, fleet, "runs", "airfleet_fails", "--state", "success")
    assert out.returncode == 0, out.stderr
    for result in data["results"]:
        assert run_id not in {r["dag_run_id"] for r in result["data"]["runs"]}

    out, data = cli(real, fleet, "runs", "--limit", "1")
    assert out.returncode == 0, out.stderr
    assert all(len(r["data"]["runs"]) == 1 for r in data["results"])


def test_import_errors_lists_the_broken_file_and_exits_1(real: RealAirflow, fleet: Path) -> None:
    for server in (real.af3, real.af2):
        _wait_for_import_error(server)
    out, data = cli(real, fleet, "import-errors")
    assert out.returncode == 1, out.stderr
    assert len(data["results"]) == 2
    for result in data["results"]:
        assert result["outcome"] == "failed"
        (error,) = result["data"]["import_errors"]
        assert error["filename"].endswith(ra.BROKEN_DAG_FILE)
        assert error["message"] == ra.BROKEN_MESSAGE
        assert "Traceback" in error["stack_trace"] or ra.BROKEN_MESSAGE in error["stack_trace"]
        assert error["timestamp"].endswith("Z")


def test_api_reads_and_pages_any_endpoint_on_both_versions(real: RealAirflow, fleet: Path) -> None:
    out, data = cli(real, fleet, "api", "/pools/default_pool")
    assert out.returncode == 0, out.stderr
    for result in data["results"]:
        status, pool = server_of(real, result["deployment"]).request("GET", "/pools/default_pool")
        assert status == 200
        assert result["data"]["slots"] == pool["slots"]
    # Pages of one DAG: three requests, every DAG merged.
    out, data = cli(real, fleet, "api", "/dags", "--paginate", "-f", "limit=1")
    assert out.returncode == 0, out.stderr
    for result in data["results"]:
        assert sorted(d["dag_id"] for d in result["data"]["dags"]) == sorted(ra.DAG_IDS)
    out, data = cli(real, fleet, "api", "/dags/no_such_dag")
    assert out.returncode == 1
    assert all(r["status"] == 404 for r in data["results"])


def _wait_for_import_error(server: Any) -> None:
    # The DAG processor (Airflow 3) or the scheduler (Airflow 2) records it
    # when it parses the file; bounded, as every wait here is.
    deadline = time.monotonic() + 90
    while True:
        status, body = server.request("GET", "/importErrors")
        if status == 200 and body.get("total_entries", 0) >= 1:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{server.release} recorded no import error within 90 s: {body}")
        time.sleep(1)
