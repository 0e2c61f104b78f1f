"""The airfleet library against real servers: fan-out, shared tokens, JWT expiry and refresh."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import anyio
import pytest

import airfleet

from ._real import SHORT_JWT_S, RealAirflow, fleet_yaml, run_airfleet

pytestmark = [pytest.mark.real_airflow, pytest.mark.timeout(240, func_only=True)]


@pytest.fixture
def short_fleet(real: RealAirflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Five names on the Airflow 3 API server whose JWTs live 3 s (leeway 0)."""
    monkeypatch.setenv("AIRFLEET_REAL_PASSWORD", real.password)
    path = tmp_path / "short.yaml"
    path.write_text(fleet_yaml([("short", real.af3_short)], names_per_server=5), encoding="utf-8")
    return path


@pytest.mark.anyio
async def test_library_fans_out_over_both_servers(
    real: RealAirflow, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """load_fleet + select + Engine + plan_*: every call ok, one JWT for ten names."""
    monkeypatch.setenv("AIRFLEET_REAL_PASSWORD", real.password)
    loaded = airfleet.load_fleet(fleet)
    af3 = airfleet.select(loaded.deployments, ["tag:af3"])
    assert len(af3) == 10
    async with airfleet.Engine(loaded) as engine:
        dags = await engine.run(airfleet.plan_dags(loaded.deployments))
        pools = await engine.run(airfleet.plan_pools(af3))
        health = await engine.run(airfleet.plan_health(loaded.deployments))
    assert dags.summary.ok == 20
    assert health.summary.ok == 20
    assert pools.summary.ok == 10
    # One JWT for the Airflow 3 server, and the Airflow 2 server's 404 page for
    # the Airflow 3 login that detection tried once; the JWT fetched for the
    # first plan is reused by the second.
    assert dags.summary.token_fetches == 2
    assert pools.summary.token_fetches == 0
    versions = {r.deployment: r.data["version"] for r in health.results}
    assert {versions[f"af3-{i:02d}"] for i in range(10)} == {real.af3.version}
    assert {versions[f"af2-{i:02d}"] for i in range(10)} == {real.af2.version}


@pytest.mark.anyio
async def test_library_trigger_with_a_run_id_makes_one_run_per_server(
    real: RealAirflow, fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """plan_trigger over 20 names: 20 ok results, exactly one run on each server."""
    monkeypatch.setenv("AIRFLEET_REAL_PASSWORD", real.password)
    loaded = airfleet.load_fleet(fleet)
    run_id = f"lib-{uuid.uuid4().hex[:8]}"
    async with airfleet.Engine(loaded) as engine:
        result = await engine.run(
            airfleet.plan_trigger(loaded.deployments, ["airfleet_idle"], run_id=run_id)
        )
    assert result.summary.ok == 20, [r.error for r in result.results if r.error]
    for server in (real.af3, real.af2):
        status, body = server.request("GET", f"/dags/airfleet_idle/dagRuns/{run_id}")
        assert (status, body["dag_run_id"]) == (200, run_id)


@pytest.mark.anyio
async def test_a_jwt_near_expiry_is_refreshed_before_it_is_refused(
    real: RealAirflow, short_fleet: Path
) -> None:
    """JWTs that live 3 s: a second plan after 4 s fetches a new one; nothing fails."""
    loaded = airfleet.load_fleet(short_fleet)
    async with airfleet.Engine(loaded) as engine:
        first = await engine.run(airfleet.plan_pools(loaded.deployments))
        await anyio.sleep(SHORT_JWT_S + 1)
        second = await engine.run(airfleet.plan_pools(loaded.deployments))
    assert (first.summary.ok, second.summary.ok) == (5, 5)
    assert (first.summary.token_fetches, second.summary.token_fetches) == (1, 1)
    assert second.summary.retries == 0


@pytest.mark.anyio
async def test_an_expired_jwt_refused_with_401_is_refetched_transparently(
    real: RealAirflow, short_fleet: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server says "Token Expired" (401) while airfleet still trusts the token:
    each call is retried once with a fresh JWT, fetched once for all five names."""
    # Make airfleet keep its token far past the server's 3 s, so the request
    # carries an expired JWT and the real server's refusal path is exercised.
    monkeypatch.setattr("airfleet.auth.REFRESH_AT", 1000.0)
    status, _ = real.af3_short.request("GET", "/pools")  # the server is up
    assert status == 200
    loaded = airfleet.load_fleet(short_fleet)
    async with airfleet.Engine(loaded) as engine:
        first = await engine.run(airfleet.plan_pools(loaded.deployments))
        await anyio.sleep(SHORT_JWT_S + 1)
        second = await engine.run(airfleet.plan_pools(loaded.deployments))
    assert (first.summary.ok, second.summary.ok) == (5, 5), [r.error for r in second.results]
    assert second.summary.token_fetches == 1
    assert second.summary.requests > 5  # the refused attempts, then the retries


def test_wait_across_many_jwt_lifetimes_with_the_cli(real: RealAirflow, short_fleet: Path) -> None:
    """trigger --wait through the 3 s-JWT server: polls outlive several tokens, all ok."""
    run_id = f"short-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    out = run_airfleet(
        "-c",
        str(short_fleet),
        "trigger",
        "airfleet_ok",
        "--run-id",
        run_id,
        "--wait",
        "--poll",
        "1",
        "--timeout",
        "150",
        "--report",
        "json",
        env=real.env(),
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    elapsed = time.monotonic() - started
    summary = json.loads(out.stdout)["summary"]
    assert summary["ok"] == 5
    if summary["duration_s"] > SHORT_JWT_S:
        # The wait outlived the first JWT: at least one more was fetched, and
        # every poll still got through.
        assert summary["token_fetches"] >= 2, (elapsed, summary)
    status, run = real.af3.request("GET", f"/dags/airfleet_ok/dagRuns/{run_id}")
    assert (status, run["state"]) == (200, "success")


@pytest.mark.anyio
async def test_detection_on_real_servers_costs_no_probe_and_a_wrong_prefix_says_so(
    real: RealAirflow, monkeypatch: pytest.MonkeyPatch
) -> None:
    """api: auto with a password profile: Airflow 3 is proved by the call's own
    requests (its login, then the listing), Airflow 2 by the missing Airflow 3
    login, then v1; no version probe. A path prefix too many fails on both as a
    URL problem, never a credentials one."""
    monkeypatch.setenv("AIRFLEET_REAL_PASSWORD", real.password)
    text = fleet_yaml([("af3", real.af3), ("af2", real.af2)], names_per_server=1)
    loaded = airfleet.parse_fleet(text)
    async with airfleet.Engine(loaded) as engine:
        pools = await engine.run(airfleet.plan_pools(loaded.deployments))
    assert pools.summary.ok == 2, [r.error for r in pools.results]
    assert [r.requests for r in pools.results] == [1, 1]
    # Each server: one login request (Airflow 2 answers it with its HTML 404), one listing.
    assert pools.summary.requests == 4

    wrong = airfleet.parse_fleet(text.replace("', tags:", "/airflow', tags:"))
    async with airfleet.Engine(wrong) as engine:
        report = await engine.run(airfleet.plan_pools(wrong.deployments))
    for result in report.results:
        assert result.outcome is airfleet.Outcome.FAILED
        assert "is the URL the Airflow (or Astro Deployment) URL" in (result.error or "")
        assert "credential" not in (result.error or "")
