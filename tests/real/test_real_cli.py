"""The airfleet CLI against real Airflow 3.3 and 2.11, each named ten times in one fleet.

Every test checks what the servers hold (read back over HTTP), not only the report.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from ._real import RealAirflow, fleet_yaml, report, run_airfleet, server_of

pytestmark = [
    pytest.mark.real_airflow,
    # The session fixture installs and starts the servers under its own bounded
    # waits; pytest-timeout bounds only each test's body.
    pytest.mark.timeout(240, func_only=True),
]

AF3 = [f"af3-{i:02d}" for i in range(10)]
AF2 = [f"af2-{i:02d}" for i in range(10)]


def cli(real: RealAirflow, fleet: Path, *args: str, password: str | None = None) -> Any:
    out = run_airfleet("-c", str(fleet), *args, "--report", "json", env=real.env(password))
    return out, report(out)


def by_deployment(data: dict[str, Any], target: str | None = None) -> dict[str, dict[str, Any]]:
    return {r["deployment"]: r for r in data["results"] if target is None or r["target"] == target}


def runs_with_id(server: Any, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    status, body = server.request("GET", f"/dags/{dag_id}/dagRuns?limit=100")
    assert status == 200, body
    return [run for run in body["dag_runs"] if run["dag_run_id"] == run_id]


def test_health_detects_each_version_and_api(real: RealAirflow, fleet: Path) -> None:
    """api: auto finds v2 on Airflow 3 and v1 on Airflow 2; versions are the servers' own."""
    out, data = cli(real, fleet, "health")
    assert out.returncode == 0, out.stderr
    results = by_deployment(data)
    assert set(results) == set(AF3 + AF2)
    for name, result in results.items():
        server = server_of(real, name)
        assert result["outcome"] == "ok", result
        assert result["data"]["api"] == server.api
        assert result["data"]["version"] == server.version
        assert result["data"]["healthy"] is True
        assert result["data"]["components"]["scheduler"] == "healthy"
    assert real.af3.version.startswith("3.3.")
    assert real.af2.version.startswith("2.11.")


def test_dags_match_what_the_servers_list(real: RealAirflow, fleet: Path) -> None:
    """One result per deployment with every DAG the server lists; --pattern filters."""
    out, data = cli(real, fleet, "dags")
    assert out.returncode == 0, out.stderr
    for name, result in by_deployment(data).items():
        status, body = server_of(real, name).request("GET", "/dags?limit=100")
        assert status == 200
        want = {d["dag_id"]: d["is_paused"] for d in body["dags"]}
        got = {d["dag_id"]: d["is_paused"] for d in result["data"]["dags"]}
        assert got == want, name
        assert result["data"]["total_entries"] == body["total_entries"] == 3
        tags = {d["dag_id"]: d["tags"] for d in result["data"]["dags"]}
        assert tags["airfleet_idle"] == ["idle"]

    out, data = cli(real, fleet, "dags", "--pattern", "airfleet_o*")
    assert out.returncode == 0, out.stderr
    for result in data["results"]:
        assert [d["dag_id"] for d in result["data"]["dags"]] == ["airfleet_ok"]


def test_pools_match_what_the_servers_hold(real: RealAirflow, fleet: Path) -> None:
    """Every pool's slots and counters as each server reports them."""
    out, data = cli(real, fleet, "pools")
    assert out.returncode == 0, out.stderr
    assert data["summary"]["ok"] == 20
    for name, result in by_deployment(data).items():
        status, body = server_of(real, name).request("GET", "/pools")
        assert status == 200
        want = {p["name"]: p["slots"] for p in body["pools"]}
        assert {p["name"]: p["slots"] for p in result["data"]["pools"]} == want
        assert "default_pool" in want


def test_fan_out_trigger_makes_one_run_per_server_and_reruns_are_safe(
    real: RealAirflow, fleet: Path
) -> None:
    """20 names, 2 servers, one run id: one run on each server; a re-run makes none."""
    run_id = f"fanout-{uuid.uuid4().hex[:8]}"
    out, data = cli(real, fleet, "trigger", "airfleet_idle", "--run-id", run_id)
    assert out.returncode == 0, out.stderr
    results = by_deployment(data)
    assert len(results) == 20
    assert all(r["outcome"] == "ok" for r in results.values()), data["results"]
    assert {r["data"]["dag_run_id"] for r in results.values()} == {run_id}
    for server, names in ((real.af3, AF3), (real.af2, AF2)):
        assert len(runs_with_id(server, "airfleet_idle", run_id)) == 1
        # One name made the run; the others got a 409 and found it with a GET
        # (already_existed: true, unless their own first attempt went unanswered).
        made = [n for n in names if results[n]["data"].get("already_existed") is not True]
        assert 1 <= len(made) <= 1 + sum(results[n]["attempts"] > 1 for n in names)

    out, data = cli(real, fleet, "trigger", "airfleet_idle", "--run-id", run_id)
    assert out.returncode == 0, out.stderr
    assert all(r["data"]["already_existed"] is True for r in data["results"])
    for server in (real.af3, real.af2):
        assert len(runs_with_id(server, "airfleet_idle", run_id)) == 1


def test_wait_reaches_success_and_failed(real: RealAirflow, fleet: Path) -> None:
    """--wait follows the schedulers' real runs to success and to failed; exit 1."""
    run_id = f"wait-{uuid.uuid4().hex[:8]}"
    out, data = cli(
        real,
        fleet,
        "trigger",
        "airfleet_ok",
        "airfleet_fails",
        "--run-id",
        run_id,
        "--wait",
        "--timeout",
        "150",
        "--poll",
        "1",
    )
    assert out.returncode == 1, out.stderr
    for name, result in by_deployment(data, "airfleet_ok").items():
        assert result["outcome"] == "ok", (name, result)
        assert result["data"]["final_state"] == "success"
    for name, result in by_deployment(data, "airfleet_fails").items():
        assert result["outcome"] == "failed", (name, result)
        assert result["data"]["final_state"] == "failed"
        assert "failed" in result["error"]
    for server in (real.af3, real.af2):
        (ok,) = runs_with_id(server, "airfleet_ok", run_id)
        (bad,) = runs_with_id(server, "airfleet_fails", run_id)
        assert (ok["state"], bad["state"]) == ("success", "failed")


def test_pause_and_unpause_change_the_servers(real: RealAirflow, fleet: Path) -> None:
    """pause sets is_paused on both servers, dags --paused sees it, unpause clears it."""
    try:
        out, data = cli(real, fleet, "pause", "airfleet_idle")
        assert out.returncode == 0, out.stderr
        assert data["summary"]["ok"] == 20
        for server in (real.af3, real.af2):
            status, dag = server.request("GET", "/dags/airfleet_idle")
            assert (status, dag["is_paused"]) == (200, True)
        out, data = cli(real, fleet, "dags", "--paused")
        assert out.returncode == 0, out.stderr
        for result in data["results"]:
            assert [d["dag_id"] for d in result["data"]["dags"]] == ["airfleet_idle"]
    finally:
        out, data = cli(real, fleet, "unpause", "airfleet_idle")
    assert out.returncode == 0, out.stderr
    for server in (real.af3, real.af2):
        status, dag = server.request("GET", "/dags/airfleet_idle")
        assert (status, dag["is_paused"]) == (200, False)


POOLS_SPEC = """\
version: 1
pools:
  default_pool: {slots: 64}
  etl: {slots: 16, description: ETL and loads, include_deferred: false}
  reporting: {slots: %(reporting)d}
"""


def test_pool_audit_applies_fixes_then_re_audits_clean(
    real: RealAirflow, fleet: Path, tmp_path: Path
) -> None:
    """Drift is reported (exit 1), --apply creates and patches in each API's form, then clean."""
    spec = tmp_path / "pools.yaml"
    spec.write_text(POOLS_SPEC % {"reporting": 8}, encoding="utf-8")
    out, data = cli(real, fleet, "audit", "pools", "--spec", str(spec))
    assert out.returncode == 1, out.stderr
    for result in data["results"]:
        drifted = {(d["pool"], d["field"]) for d in result["data"]["drift"]}
        assert {("etl", "exists"), ("reporting", "exists")} <= drifted, result

    out, data = cli(real, fleet, "audit", "pools", "--spec", str(spec), "--apply")
    assert out.returncode == 0, out.stderr + str(data["results"])
    want = {"default_pool": 64, "etl": 16, "reporting": 8}
    for server in (real.af3, real.af2):
        status, body = server.request("GET", "/pools")
        pools = {p["name"]: p for p in body["pools"]}
        assert {name: pools[name]["slots"] for name in want} == want
        assert pools["etl"]["description"] == "ETL and loads"

    out, data = cli(real, fleet, "audit", "pools", "--spec", str(spec))
    assert out.returncode == 0, out.stderr
    assert all(r["data"]["drift"] == [] for r in data["results"])

    # A change to a pool that exists: a masked PATCH that keeps the other fields.
    spec.write_text(POOLS_SPEC % {"reporting": 12}, encoding="utf-8")
    out, data = cli(real, fleet, "audit", "pools", "--spec", str(spec), "--apply")
    assert out.returncode == 0, out.stderr + str(data["results"])
    for server in (real.af3, real.af2):
        status, body = server.request("GET", "/pools/reporting")
        assert (status, body["slots"]) == (200, 12)
        status, body = server.request("GET", "/pools/etl")
        assert (body["slots"], body["description"]) == (16, "ETL and loads")
    out, data = cli(real, fleet, "audit", "pools", "--spec", str(spec))
    assert out.returncode == 0, out.stderr


def test_wrong_password_is_a_clear_auth_failure_on_every_deployment(
    real: RealAirflow, fleet: Path
) -> None:
    """Airflow 3 refuses the login (401), Airflow 2 every call (403): 20 failed results."""
    wrong = "not-the-password-" + uuid.uuid4().hex[:6]
    out, data = cli(real, fleet, "pools", password=wrong)
    assert out.returncode == 1
    results = by_deployment(data)
    assert len(results) == 20
    for name in AF3:
        error = results[name]["error"]
        assert results[name]["outcome"] == "failed"
        assert "/auth/token" in error
        assert "401" in error
        assert "credentials" in error
    for name in AF2:
        error = results[name]["error"]
        assert results[name]["outcome"] == "failed"
        assert "403" in error
        assert "credentials" in error
    # One login attempt per Airflow 3 server, not one per name (single flight).
    assert data["summary"]["token_fetches"] <= 3
    assert wrong not in out.stdout + out.stderr
    assert real.password not in out.stdout + out.stderr


def test_one_jwt_per_airflow3_server_is_shared_by_its_names(real: RealAirflow, fleet: Path) -> None:
    """Ten names on one Airflow 3 server fetch one JWT; Airflow 2 needs none, but
    is asked once for the Airflow 3 login that tells the versions apart (its
    404 page), and the report counts that answer as the server saw it."""
    out, data = cli(real, fleet, "dags", "-s", "tag:af3")
    assert out.returncode == 0, out.stderr
    assert data["summary"]["token_fetches"] == 1
    out, data = cli(real, fleet, "dags", "-s", "tag:af2")
    assert out.returncode == 0, out.stderr
    assert data["summary"]["token_fetches"] == 1


def test_rate_limits_hold_against_real_servers(real: RealAirflow, tmp_path: Path) -> None:
    """A fleet-wide 4 requests/s over 20 deployments: requests are spaced, all ok."""
    path = tmp_path / "slow.yaml"
    path.write_text(
        fleet_yaml([("af3", real.af3), ("af2", real.af2)], max_per_second=4), encoding="utf-8"
    )
    out, data = cli(real, path, "pools")
    assert out.returncode == 0, out.stderr
    summary = data["summary"]
    assert summary["ok"] == 20
    # Requests are spaced evenly 1/4 s apart (the first few may go at once);
    # the version detections go through the same limiter on top of these.
    assert summary["requests"] >= 20
    assert summary["duration_s"] >= (summary["requests"] - 4) / 4
