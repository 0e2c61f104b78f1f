"""API version detection behind auth gateways and under wrong URLs, as the server sees it."""

from __future__ import annotations

import dataclasses
from typing import Literal

import pytest

from airfleet.engine import Engine
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Fleet
from airfleet.operations import plan_health, plan_pools, plan_trigger
from airfleet.results import Outcome
from airfleet.sim import Faults, Simulator

pytestmark = pytest.mark.anyio

Auth = Literal["oauth", "token", "password"]


def sim_fleet(
    sim: Simulator,
    url: str,
    *,
    auth: Auth = "oauth",
    api: Literal["auto", "declared"] = "auto",
    suffix: str = "",
) -> Fleet:
    fleet = parse_fleet(sim.fleet_yaml(url, auth=auth, api=api), env=sim.env())
    if not suffix:
        return fleet
    moved = tuple(dataclasses.replace(d, url=d.url + suffix) for d in fleet.deployments)
    return dataclasses.replace(fleet, deployments=moved)


@pytest.mark.parametrize("auth", ["oauth", "token", "password"])
async def test_behind_an_auth_gateway_every_deployment_is_detected_right(auth: Auth) -> None:
    """An auth gateway answers every anonymous request with a 401 page. 20 Airflow 2
    and 20 Airflow 3 deployments, api: auto: every trigger ok and made once, on the
    right API; Airflow 3 costs no request of its own, Airflow 2 one route-level 404
    per deployment; no version probe at all; the gateway refused nothing."""
    sim = Simulator(deployments=40, api="mixed", faults=Faults(gateway=True))
    dags = ["example_etl", "refresh_dims"]
    async with sim.running() as server:
        fleet = sim_fleet(sim, server.url, auth=auth)
        async with Engine(fleet) as engine:
            report = await engine.run(plan_trigger(fleet.deployments, dags))
    assert [r for r in report.results if r.outcome is not Outcome.OK] == []
    stats = sim.stats()
    assert stats["runs_total"] == 40 * len(dags)
    assert stats["duplicates_refused"] == 0
    assert stats["faults_injected"].get("gateway_refused", 0) == 0
    assert stats["requests_by_endpoint"].get("version", 0) == 0
    airflow2 = [n for n in sim.names if sim.api_of(n) == "v1"]
    assert len(airflow2) == 20
    by_deployment = stats["requests_by_deployment"]
    for name in sim.names:
        # Airflow 2: one 404 page, for the v2 request, or for a password
        # profile's Airflow 3 login (/auth/token), which comes first.
        extra = 1 if sim.api_of(name) == "v1" else 0
        jwt = 1 if auth == "password" and sim.api_of(name) == "v2" else 0
        # Each trigger: its POST and one GET of the DAG (is it paused?).
        assert by_deployment[name] == 2 * len(dags) + extra + jwt, name


async def test_health_behind_a_gateway_sends_the_credential() -> None:
    """health asks version and health with the credential: ok behind a gateway,
    with the version the server said and the right API."""
    sim = Simulator(deployments=6, api="mixed", faults=Faults(gateway=True))
    async with sim.running() as server:
        fleet = sim_fleet(sim, server.url, auth="token")
        async with Engine(fleet) as engine:
            report = await engine.run(plan_health(fleet.deployments))
    assert [r.outcome for r in report.results] == [Outcome.OK] * 6
    for result in report.results:
        api = sim.api_of(result.deployment)
        assert result.data["api"] == api
        assert result.data["version"].startswith("2." if api == "v1" else "3.")
    assert sim.stats()["faults_injected"].get("gateway_refused", 0) == 0


async def test_a_refused_credential_is_a_credentials_error_not_a_version_guess() -> None:
    """Behind a gateway, a wrong token is refused on every path: every call fails
    saying the credentials were refused, and none guesses an API version."""
    sim = Simulator(deployments=4, api="mixed", faults=Faults(gateway=True))
    async with sim.running() as server:
        env = {**sim.env(), "AIRFLEET_SIM_TOKEN": "not-the-token"}
        fleet = parse_fleet(sim.fleet_yaml(server.url, auth="token"), env=env)
        async with Engine(fleet) as engine:
            report = await engine.run(plan_pools(fleet.deployments))
    for result in report.results:
        assert result.outcome is Outcome.FAILED
        assert "refused auth profile 'token'" in (result.error or ""), result.error
    assert sim.stats()["runs_total"] == 0


@pytest.mark.parametrize("api", ["auto", "declared"])
async def test_a_wrong_path_prefix_is_a_url_problem_never_a_credentials_one(
    api: Literal["auto", "declared"],
) -> None:
    """The URL with a path too many: Airflow 3 answers its UI's HTML (200) to a GET
    and 405 to a POST; Airflow 2 its HTML 404. Every call fails saying the URL (or
    the API version) is wrong, and nothing was made."""
    sim = Simulator(deployments=4, api="mixed")
    async with sim.running() as server:
        fleet = sim_fleet(sim, server.url, api=api, suffix="/airflow")
        async with Engine(fleet) as engine:
            pools = await engine.run(plan_pools(fleet.deployments))
            triggers = await engine.run(plan_trigger(fleet.deployments, ["example_etl"]))
    for result in (*pools.results, *triggers.results):
        error = result.error or ""
        assert result.outcome is Outcome.FAILED
        assert "credential" not in error, error
        assert "is the URL the Airflow (or Astro Deployment) URL" in error, error
    assert sim.stats()["runs_total"] == 0


async def test_a_declared_api_of_the_other_major_version_says_which_to_set() -> None:
    """api: v2 on Airflow 2 and api: v1 on Airflow 3 each say what to set."""
    sim = Simulator(deployments=2, api="mixed")
    async with sim.running() as server:
        fleet = sim_fleet(sim, server.url, api="declared")
        swapped = dataclasses.replace(
            fleet,
            deployments=tuple(
                dataclasses.replace(d, api="v1" if d.api == "v2" else "v2")
                for d in fleet.deployments
            ),
        )
        async with Engine(swapped) as engine:
            report = await engine.run(plan_pools(swapped.deployments))
    for result in report.results:
        error = result.error or ""
        if sim.api_of(result.deployment) == "v1":
            assert "If this is Airflow 2, set 'api: v1'" in error, error
        else:
            assert "this is Airflow 3, where /api/v1 has been removed" in error, error
            assert "set 'api: v2'" in error
