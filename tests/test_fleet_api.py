"""``airfleet api``: any endpoint on every deployment, through the engine.

Against the simulator (Airflow 2 and 3 side by side) and, for what is sent
after a lost answer, a server that answers every request 503: what each
counted is what is asserted.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from _cli import run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet.dialects.v2 import AirflowV2
from airfleet.engine import Engine
from airfleet.errors import UsageError
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Deployment, Fleet, Secret, TokenAuth
from airfleet.operations import plan_api
from airfleet.report import FORMATS, render
from airfleet.results import Outcome
from airfleet.sim import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    # 155 DAGs: two pages at the server's clamp of 100.
    with sim_in_thread(Simulator(deployments=4, api="mixed", seed=19, extra_dags=150)) as running:
        yield running


@pytest.fixture
def fleet(sim: SimThread, tmp_path: Path) -> Path:
    return sim.write_fleet(tmp_path / "fleet.yaml", auth="token")


def _api(fleet: Path, sim: SimThread, *args: str) -> tuple[int, Any, str]:
    out = run_airfleet("-c", str(fleet), "api", *args, env=sim.sim.env())
    try:
        body = json.loads(out.stdout) if out.stdout.strip() else None
    except ValueError:
        body = out.stdout
    return out.returncode, body, out.stderr


def test_a_get_reaches_each_deployment_under_its_own_prefix(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    code, report, _ = _api(fleet, sim, "/version", "--report", "json")
    assert code == 0
    versions = {r["deployment"]: r["data"]["version"] for r in report["results"]}
    assert versions == {
        "dep-0000": "3.3.2",
        "dep-0001": "2.11.2",
        "dep-0002": "3.3.2",
        "dep-0003": "2.11.2",
    }
    assert all(r["target"] == "GET /version" for r in report["results"])
    # Airflow 3: the call's own request; Airflow 2: its route-level 404 first.
    assert sim.stats()["requests_by_endpoint"]["version"] == 4


def test_paginate_follows_every_page_and_merges_the_list(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    code, report, _ = _api(fleet, sim, "/dags", "--paginate", "--report", "json")
    assert code == 0
    for result in report["results"]:
        ids = [d["dag_id"] for d in result["data"]["dags"]]
        assert len(ids) == len(set(ids)) == 155
        assert result["data"]["total_entries"] == 155
    assert sim.stats()["requests_by_endpoint"]["list_dags"] == 4 * 2  # 100 + 55


def test_fields_are_the_query_of_a_get(sim: SimThread, fleet: Path) -> None:
    code, report, _ = _api(fleet, sim, "/dags", "-F", "limit=3", "--report", "json")
    assert code == 0
    assert all(len(r["data"]["dags"]) == 3 for r in report["results"])


def test_a_change_to_several_deployments_needs_yes(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    args = (
        "-X",
        "POST",
        "/pools",
        "-f",
        "name=etl",
        "-F",
        "slots=4",
        "-F",
        "include_deferred=false",
    )
    code, plan, err = _api(fleet, sim, *args)
    assert code == 2
    assert "add --yes" in err
    assert len(err.strip().splitlines()) == 1
    assert plan["calls"] == 4  # the plan it refused, printed
    assert plan["requests"][0]["body"] == {"name": "etl", "slots": 4, "include_deferred": False}
    assert sim.stats()["requests_total"] == 0

    code, report, _ = _api(fleet, sim, *args, "--yes", "--report", "json")
    assert code == 0
    pools = sim.stats()["pools"]
    assert all(pools[name]["etl"]["slots"] == 4 for name in sim.sim.names)
    # Once per deployment: made, and nothing resent.
    assert sim.stats()["requests_by_endpoint"]["create_pool"] == 4
    assert report["summary"]["ok"] == 4


def test_a_refusal_is_a_failed_result_with_the_server_s_message(
    sim: SimThread, fleet: Path
) -> None:
    code, report, _ = _api(fleet, sim, "/dags/no_such_dag", "--report", "json")
    assert code == 1
    for result in report["results"]:
        assert result["outcome"] == "failed"
        assert result["status"] == 404
        assert "no_such_dag" in result["error"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("/api/v2/dags",), "leave out the API prefix"),
        (("/dags/{dag_id}/dagRuns",), "fill in {dag_id}"),
        (("https://example.com/api/v2/dags",), "relative to the API root"),
        (("/dags", "-f", "limit"), "write it as KEY=VALUE"),
        (("/dags", "--input", "body.json"), "--input is a request body"),
        (("-X", "POST", "/pools", "--paginate", "--yes"), "GET only"),
        (("/dags", "--paginate", "-f", "limit=lots"), "needs a whole number"),
        (("-X", "POST", "/variables", "--input", "missing.json", "--yes"), "cannot read it"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_sent(
    sim: SimThread, fleet: Path, args: tuple[str, ...], message: str
) -> None:
    sim.sim.reset_stats()
    code, _, err = _api(fleet, sim, *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert sim.stats()["requests_total"] == 0


def test_dry_run_shows_the_request_in_each_version_s_form(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    code, plan, _ = _api(
        fleet, sim, "-X", "PATCH", "/pools/etl", "-F", "slots=8", "--dry-run", "--report", "json"
    )
    assert code == 0
    assert {r["path"] for r in plan["requests"]} == {"/api/v2/pools/etl"}  # auto: v2 shown
    assert plan["requests"][0]["body"] == {"slots": 8}
    assert sim.stats()["requests_total"] == 0


# -- what is resent after a lost answer ------------------------------------------------


@pytest.fixture
async def unavailable() -> AsyncIterator[tuple[str, list[str]]]:
    """A server that answers every request 503, and the requests it saw."""
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.json_response({"detail": "Service Unavailable"}, status=503)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    finally:
        await runner.cleanup()


def _one(url: str) -> tuple[Fleet, tuple[Deployment, ...]]:
    deployment = Deployment("only", url, "t", api="v2", retries=2, max_per_second=None)
    fleet = Fleet((deployment,), {"t": TokenAuth("t", Secret("api-token-0123456789"))})
    return fleet, fleet.deployments


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "body", "sent"),
    [
        # A 503 may have acted: a POST that names nothing it makes is sent once.
        ("/dags/etl/dagRuns", {"conf": {}}, 1),
        ("/variables", {"value": "x"}, 1),
        # One the endpoint refuses to make twice (409) is retried like a read.
        ("/dags/etl/dagRuns", {"dag_run_id": "manual__1"}, 3),
        ("/pools", {"name": "etl", "slots": 1}, 3),
        ("/variables", {"key": "k", "value": "x"}, 3),
    ],
)
async def test_posts_are_resent_only_when_the_endpoint_refuses_a_second(
    unavailable: tuple[str, list[str]], path: str, body: dict[str, Any], sent: int
) -> None:
    url, seen = unavailable
    fleet, deployments = _one(url)
    async with Engine(fleet, seed=1) as engine:
        report = await engine.run(plan_api(deployments, "POST", path, body=body))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.status == 503
    assert seen == [f"POST /api/v2{path}"] * sent


@pytest.mark.anyio
async def test_every_report_format_renders_api_results(sim: SimThread) -> None:
    fleet = parse_fleet(sim.sim.fleet_yaml(sim.url, auth="token"), env=sim.sim.env())
    async with Engine(fleet) as engine:
        report = await engine.run(plan_api(fleet.deployments, "GET", "/pools"))
    for fmt in FORMATS:
        out = io.StringIO()
        render(fmt, summary=report.summary, results=report.results, out=out)
        assert "dep-0000" in out.getvalue()


def test_a_query_in_the_path_is_decoded_once() -> None:
    (call,) = plan_api(
        (Deployment("d", "https://airflow.example", "t"),),
        "GET",
        "/dags/etl/dagRuns?start_date_gte=2026-11-30T00:00:00%2B00:00&state=failed",
    ).calls
    assert call.spec.preview(AirflowV2())[0].params == (
        ("start_date_gte", "2026-11-30T00:00:00+00:00"),
        ("state", "failed"),
    )


def test_plan_api_refuses_an_unknown_method() -> None:
    with pytest.raises(UsageError, match="use one of GET"):
        plan_api((), "TRACE", "/dags")
