"""What a run reports about itself matches what the servers saw; -v tells every attempt."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from airfleet.engine import Engine
from airfleet.fleet_file import parse_fleet
from airfleet.logs import configure_logging, log_event
from airfleet.operations import plan_dags, plan_pools
from airfleet.sim import Faults, Simulator

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("auth", ["oauth", "password"])
async def test_summary_requests_is_what_the_servers_counted(auth: str) -> None:
    """Detection, token fetches and retries included: the summary's request
    count equals the simulator's, run by run."""
    sim = Simulator(
        deployments=6, api="mixed", faults=Faults(throttle_rate=0.2, throttle_retry_after_s=0.01)
    )
    async with sim.running() as server:
        text = sim.fleet_yaml(server.url, auth=auth, extra_defaults={"max_per_second": None})  # type: ignore[arg-type]
        fleet = parse_fleet(text, env=sim.env())
        async with Engine(fleet, seed=4) as engine:
            first = await engine.run(plan_dags(fleet.deployments))
            seen_first = sim.stats()["requests_seen"]
            second = await engine.run(plan_pools(fleet.deployments))
            seen_second = sim.stats()["requests_seen"] - seen_first
    assert first.summary.failed == second.summary.failed == 0
    assert first.summary.requests == seen_first
    assert second.summary.requests == seen_second
    assert first.summary.retries > 0 or second.summary.retries > 0  # retries were counted too
    assert first.summary.requests > second.summary.requests  # the first detected and fetched


async def test_verbose_logs_every_attempt_reauth_token_and_detection_but_no_secret() -> None:
    """-v: one debug line per attempt (deployment, method, path, status, attempt,
    delay), every re-auth, token fetch and detection result; never a header or body."""
    sim = Simulator(deployments=2, api="mixed", faults=Faults(token_ttl_s=3600))
    stream = io.StringIO()
    configure_logging(fmt="json", verbose=True, stream=stream)
    try:
        async with sim.running() as server:
            text = sim.fleet_yaml(server.url, auth="password")
            fleet = parse_fleet(text, env=sim.env())
            async with Engine(fleet, listeners=[log_event]) as engine:
                await engine.run(plan_pools(fleet.deployments))
                sim.revoke_all_tokens()
                report = await engine.run(plan_pools(fleet.deployments))
            seen = sim.stats()["requests_seen"]
    finally:
        configure_logging(fmt="json", verbose=False)
    assert report.summary.failed == 0
    lines: list[dict[str, Any]] = [json.loads(line) for line in stream.getvalue().splitlines()]
    attempts = [line for line in lines if line["event"] == "attempt"]
    assert len(attempts) == seen
    assert {"deployment", "method", "path", "status", "attempt", "delay_s"} <= set(attempts[0])
    paths = {a["path"] for a in attempts}
    # No version probe: each deployment's first call settled it (v1 after
    # Airflow 2's 404 page for the Airflow 3 login).
    assert {"/api/v2/pools", "/api/v1/pools"} <= paths
    assert not any(path.endswith("/version") for path in paths)
    assert any(path.endswith("/auth/token") for path in paths)  # the token fetch's own line
    detected = {line["deployment"]: line["api"] for line in lines if line["event"] == "detected"}
    assert detected == {name: sim.api_of(name) for name in sim.names}
    assert any(line["event"] == "token fetched" for line in lines)
    reauth = [line for line in lines if line["event"].startswith("credential refused")]
    assert [line["deployment"] for line in reauth] == [
        name for name in sim.names if sim.api_of(name) == "v2"
    ]
    text_out = stream.getvalue()
    for secret in (sim.credentials.password, "Bearer ", "Basic ", "Authorization"):
        assert secret not in text_out
