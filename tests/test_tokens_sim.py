"""Tokens that expire and are revoked while calls queue behind rates: every call ok."""

from __future__ import annotations

import math
import time
from typing import Any, Literal

import anyio
import pytest

from airfleet.engine import Engine
from airfleet.fleet_file import parse_fleet
from airfleet.operations import plan_trigger
from airfleet.results import Outcome
from airfleet.sim import Faults, Simulator

pytestmark = pytest.mark.anyio

TOKEN_TTL_S = 2.0
DEPLOYMENTS = 30
DAGS = [f"dag_{i:04d}" for i in range(20)]
RATE = 6.0  # per deployment: 20 calls queue 3.4 s, longer than a token lives


@pytest.mark.parametrize("auth", ["oauth", "password"])
async def test_every_call_is_ok_when_tokens_expire_and_are_revoked_while_calls_queue(
    auth: Literal["oauth", "password"],
) -> None:
    """2 s tokens, 3+ s queues behind a per-deployment rate, every token revoked
    mid-run: each trigger ok and made once, and token fetches stay near one per
    lifetime per credential, as the server counts them."""
    sim = Simulator(
        deployments=DEPLOYMENTS,
        api="mixed",
        extra_dags=len(DAGS),
        faults=Faults(token_ttl_s=TOKEN_TTL_S),
    )
    async with sim.running() as server:
        extra: dict[str, Any] = {"max_per_second": RATE, "max_in_flight": 4}
        text = sim.fleet_yaml(server.url, auth=auth, api="declared", extra_defaults=extra)
        # A wide fleet cap: every call is admitted at once and waits in its
        # deployment's queue, holding nothing but its place.
        fleet = parse_fleet("limits: {max_in_flight: 1000}\n" + text, env=sim.env())
        plan = plan_trigger(fleet.deployments, DAGS)

        async def revoke_mid_run() -> None:
            await anyio.sleep(1.5)
            sim.revoke_all_tokens()

        started = time.monotonic()
        async with Engine(fleet) as engine, anyio.create_task_group() as group:
            group.start_soon(revoke_mid_run)
            report = await engine.run(plan)
        took = time.monotonic() - started

    assert took >= len(DAGS) / RATE  # the calls really queued behind the rate
    failures = [r for r in report.results if r.outcome is not Outcome.OK]
    assert failures == []
    stats = sim.stats()
    assert stats["runs_total"] == DEPLOYMENTS * len(DAGS)
    assert stats["duplicates_refused"] == 0
    # One fetch per 90 % of a lifetime, one more after the revocation, and a
    # little slack for a refresh that lands just before the run ends.
    bound = math.ceil(took / (0.9 * TOKEN_TTL_S)) + 1 + 2
    fetches = stats["token_fetches"]
    if auth == "oauth":
        assert 2 <= fetches["oauth"] <= bound
    else:
        v2 = [name for name in sim.names if sim.api_of(name) == "v2"]
        assert set(fetches["jwt"]) == set(v2)
        assert all(2 <= n <= bound for n in fetches["jwt"].values()), fetches["jwt"]
    # Only what was in flight when the tokens were revoked was refused.
    assert stats["auth_failures"] <= fleet.limits.max_in_flight
    assert report.summary.token_fetches == fetches["total"]
