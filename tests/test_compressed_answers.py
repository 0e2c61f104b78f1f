"""A compressed answer is capped by what it inflates to, not by what it weighs on the wire."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from airfleet.engine import Engine
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Deployment, Fleet, Secret, TokenAuth
from airfleet.operations import plan_dags, plan_health, plan_pools, plan_trigger
from airfleet.results import Outcome
from airfleet.sim import Faults, Simulator
from airfleet.transport import MAX_BODY_BYTES

pytestmark = pytest.mark.anyio

POOL = b'{"name": "pool_%08d", "slots": 128, "occupied_slots": 0, "queued_slots": 0}'


def pool_list(count: int) -> bytes:
    pools = b", ".join(POOL % i for i in range(count))
    return b'{"pools": [' + pools + b'], "total_entries": %d}' % count


# A valid pool list padded to 20 MiB, which gzip squeezes into some 20 KB: a bomb.
BOMB = gzip.compress(pool_list(1)[:-1] + b', "pad": "' + b"a" * 20 * 2**20 + b'"}', 9)
SMALL = gzip.compress(pool_list(3))


@pytest.fixture
async def gzip_server() -> AsyncIterator[str]:
    """Serves the bomb at /bomb/... and a small gzip answer at /small/..., both with
    Content-Encoding: gzip and a Content-Length of the compressed bytes."""

    async def pools(request: web.Request) -> web.Response:
        body = BOMB if request.path.startswith("/bomb/") else SMALL
        return web.Response(
            body=body,
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )

    app = web.Application()
    app.router.add_get("/{kind}/api/v2/pools", pools)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_gzip_bomb_is_cut_at_the_cap_and_a_small_answer_reads_whole(
    gzip_server: str,
) -> None:
    """20 KB on the wire inflating to 20 MiB: failed, cut at 8 MiB; a small
    compressed answer: ok, every pool read."""
    assert len(BOMB) < MAX_BODY_BYTES // 16
    profile = TokenAuth("t", Secret("ready-token-123"))
    fleet = Fleet(
        (
            Deployment("bomb", f"{gzip_server}/bomb", "t", api="v2", retries=0),
            Deployment("small", f"{gzip_server}/small", "t", api="v2", retries=0),
        ),
        {"t": profile},
    )
    async with Engine(fleet) as engine:
        report = await engine.run(plan_pools(fleet.deployments))
    results = {r.deployment: r for r in report.results}
    assert results["bomb"].outcome is Outcome.FAILED
    assert "larger than 8 MiB" in (results["bomb"].error or "")
    assert results["small"].outcome is Outcome.OK
    assert len(results["small"].data["pools"]) == 3


async def test_every_operation_reads_a_simulator_that_gzips_every_answer() -> None:
    """The simulator gzips every answer (tokens included): every operation on
    both Airflow versions is read whole and ok."""
    sim = Simulator(deployments=4, api="mixed", faults=Faults(compress=True))
    async with sim.running() as server:
        fleet = parse_fleet(sim.fleet_yaml(server.url), env=sim.env())
        async with Engine(fleet) as engine:
            reports = [
                await engine.run(make(fleet.deployments))
                for make in (
                    plan_pools,
                    plan_dags,
                    plan_health,
                    lambda ds: plan_trigger(ds, ["hello"]),
                )
            ]
    for report in reports:
        assert report.summary.ok == 4, [r.error for r in report.results]
    stats = sim.stats()
    assert stats["faults_injected"]["compressed"] >= stats["requests_total"]
    assert stats["runs_total"] == 4
