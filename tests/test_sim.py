"""The simulator: endpoints, auth, faults and stats, over real loopback HTTP."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from _shapes import shape
from airfleet.sim import Faults, Simulator

pytestmark = pytest.mark.anyio
FIXTURES = Path(__file__).parent / "fixtures" / "airflow-3.3.2"


class Client:
    """A thin aiohttp client for one running simulator."""

    def __init__(self, sim: Simulator, url: str, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.url = url
        self.session = session
        self.token = sim.credentials.api_token

    async def call(
        self, method: str, path: str, body: Any = None, *, auth: str | None = "token", **params: str
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {}
        if auth == "token":
            headers["Authorization"] = f"Bearer {self.token}"
        elif auth is not None:
            headers["Authorization"] = auth
        async with self.session.request(
            method, self.url + path, json=body, headers=headers, params=params or None
        ) as resp:
            text = await resp.text()
            try:
                data = json.loads(text) if text else None
            except ValueError:
                data = text
            return resp.status, data, dict(resp.headers)


async def start(sim: Simulator) -> AsyncIterator[Client]:
    async with sim.running() as server, aiohttp.ClientSession() as session:
        yield Client(sim, server.url, session)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    async for c in start(Simulator(deployments=4, api="mixed", extra_dags=150, seed=1)):
        yield c


V2, V1 = "/d/dep-0000", "/d/dep-0001"


async def test_versions_and_wrong_version_paths(client: Client) -> None:
    """Each deployment speaks its own API; the other answers 404 as real servers do."""
    assert (await client.call("GET", f"{V2}/api/v2/version", auth=None))[1]["version"] == "3.3.2"
    assert (await client.call("GET", f"{V1}/api/v1/version", auth=None))[1]["version"] == "2.11.2"
    status, body, _ = await client.call("GET", f"{V2}/api/v1/dags")
    assert status == 404
    assert "removed in Airflow 3" in body["error"]
    assert (await client.call("GET", f"{V1}/api/v2/dags"))[0] == 404
    assert (await client.call("GET", "/d/nope/api/v2/version"))[0] == 404


async def test_health_needs_no_auth(client: Client) -> None:
    """v1 /health and v2 /monitor/health answer without credentials."""
    for path in (f"{V1}/api/v1/health", f"{V2}/api/v2/monitor/health"):
        status, body, _ = await client.call("GET", path, auth=None)
        assert status == 200
        assert body["metadatabase"]["status"] == "healthy"


@pytest.mark.parametrize("base", [V1, V2])
async def test_dag_listing_caps_pages_at_100(client: Client, base: str) -> None:
    """limit is clamped to 100 silently; total_entries counts all."""
    api = "v2" if base == V2 else "v1"
    status, body, _ = await client.call("GET", f"{base}/api/{api}/dags", limit="500", offset="0")
    assert status == 200
    assert len(body["dags"]) == 100
    assert body["total_entries"] == 155
    _, rest, _ = await client.call("GET", f"{base}/api/{api}/dags", limit="100", offset="100")
    assert len(rest["dags"]) == 55


async def test_v2_trigger_rules(client: Client) -> None:
    """v2: logical_date required (may be null), no unknown fields, 409 on dup, 404 on no DAG."""
    path = f"{V2}/api/v2/dags/hello/dagRuns"
    status, body, _ = await client.call("POST", path, {"dag_run_id": "r1"})
    assert (status, body["detail"][0]["loc"]) == (422, ["body", "logical_date"])
    status, body, _ = await client.call(
        "POST", path, {"dag_run_id": "r1", "logical_date": None, "x": 1}
    )
    assert (status, body["detail"][0]["type"]) == (422, "extra_forbidden")
    status, body, _ = await client.call("POST", path, {"dag_run_id": "r1", "logical_date": None})
    assert (status, body["state"], body["triggered_by"]) == (200, "queued", "rest_api")
    status, body, _ = await client.call("POST", path, {"dag_run_id": "r1", "logical_date": None})
    assert (status, body["detail"]["reason"]) == (409, "Unique constraint violation")
    status, body, _ = await client.call(
        "POST", f"{V2}/api/v2/dags/nope/dagRuns", {"logical_date": None}
    )
    assert (status, body["detail"]) == (404, "Dag with dag_id: 'nope' not found")
    stats = client.sim.stats()
    assert stats["runs"]["dep-0000"]["hello"] == 1
    assert stats["duplicates_refused"] == 1


async def test_v1_trigger_rules(client: Client) -> None:
    """v1 rejects null logical_date with 400 and answers problem JSON."""
    path = f"{V1}/api/v1/dags/hello/dagRuns"
    status, body, _ = await client.call("POST", path, {"dag_run_id": "r1", "logical_date": None})
    assert (status, body["title"]) == (400, "Bad Request")
    status, body, _ = await client.call("POST", path, {"dag_run_id": "r1"})
    assert status == 200
    assert body["execution_date"] == body["logical_date"]
    status, body, _ = await client.call("POST", path, {"dag_run_id": "r1"})
    assert status == 409
    assert "already exists" in body["detail"]


async def test_run_state_machine_and_failing_dags() -> None:
    """Runs go queued -> running -> success, or failed for failing DAGs; PATCH forces a state."""
    import anyio

    async for client in start(
        Simulator(deployments=1, api="v2", run_queued_s=0.1, run_duration_s=0.2)
    ):
        base = f"{V2}/api/v2/dags"
        for dag in ("hello", "always_fails"):
            await client.call(
                "POST", f"{base}/{dag}/dagRuns", {"dag_run_id": "r", "logical_date": None}
            )
        assert (await client.call("GET", f"{base}/hello/dagRuns/r"))[1]["state"] == "queued"
        await anyio.sleep(0.15)
        assert (await client.call("GET", f"{base}/hello/dagRuns/r"))[1]["state"] == "running"
        await anyio.sleep(0.25)
        assert (await client.call("GET", f"{base}/hello/dagRuns/r"))[1]["state"] == "success"
        assert (await client.call("GET", f"{base}/always_fails/dagRuns/r"))[1]["state"] == "failed"
        status, body, _ = await client.call("PATCH", f"{base}/hello/dagRuns/r", {"state": "failed"})
        assert (status, body["state"]) == (200, "failed")
        assert (await client.call("GET", f"{base}/hello/dagRuns/zz"))[0] == 404


async def test_paused_dag_runs_stay_queued() -> None:
    """A run of a paused DAG does not start."""
    import anyio

    async for client in start(
        Simulator(deployments=1, api="v1", run_queued_s=0.0, run_duration_s=0.0)
    ):
        base = "/d/dep-0000/api/v1/dags/hello"
        status, body, _ = await client.call(
            "PATCH", base, {"is_paused": True}, update_mask="is_paused"
        )
        assert (status, body["is_paused"]) == (200, True)
        await client.call("POST", f"{base}/dagRuns", {"dag_run_id": "r"})
        await anyio.sleep(0.05)
        assert (await client.call("GET", f"{base}/dagRuns/r"))[1]["state"] == "queued"
        assert client.sim.stats()["paused"]["dep-0000"]["hello"] is True


async def test_pool_rules_per_version(client: Client) -> None:
    """Pool create/patch follow Airflow 2 and 3's masks and default_pool rules."""
    v2, v1 = f"{V2}/api/v2/pools", f"{V1}/api/v1/pools"
    assert (await client.call("POST", v2, {"name": "etl", "slots": 8}))[0] == 201
    assert (await client.call("POST", v1, {"name": "etl", "slots": 8}))[0] == 200
    assert (await client.call("POST", v2, {"name": "etl", "slots": 8}))[0] == 409
    # v2 default_pool: mask required, slots alone is fine
    assert (await client.call("PATCH", f"{v2}/default_pool", {"slots": 5}))[0] == 400
    status, body, _ = await client.call(
        "PATCH", f"{v2}/default_pool", {"slots": 5}, update_mask="slots"
    )
    assert (status, body["slots"]) == (200, 5)
    # v2 other pools must carry name, slots, include_deferred even with a mask
    assert (await client.call("PATCH", f"{v2}/etl", {"slots": 9}, update_mask="slots"))[0] == 422
    body = {"name": "etl", "slots": 9, "include_deferred": False, "description": "x"}
    status, got, _ = await client.call("PATCH", f"{v2}/etl", body, update_mask="slots")
    assert (status, got["slots"], got["description"]) == (200, 9, None)
    # v1: a mask with slots alone works for any pool; comma-separated masks
    status, got, _ = await client.call(
        "PATCH", f"{v1}/etl", {"slots": 3, "description": "d"}, update_mask="slots,description"
    )
    assert (status, got["slots"], got["description"]) == (200, 3, "d")
    assert (await client.call("PATCH", f"{v1}/etl", {"slots": 3}))[0] == 400
    assert (await client.call("DELETE", f"{v1}/default_pool"))[0] == 400
    assert (await client.call("DELETE", f"{v1}/etl"))[0] == 204


async def test_oauth_and_jwt_and_basic_auth() -> None:
    """OAuth tokens work everywhere, JWTs only on the deployment that signed them, basic on v1."""
    async for client in start(Simulator(deployments=3, api="mixed", seed=2)):
        creds = client.sim.credentials
        status, body, _ = await client.call(
            "POST",
            "/oauth/token",
            {
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "audience": creds.audience,
                "grant_type": "client_credentials",
            },
            auth=None,
        )
        assert status == 200
        oauth = f"Bearer {body['access_token']}"
        assert (await client.call("GET", f"{V1}/api/v1/pools", auth=oauth))[0] == 200
        status, body, _ = await client.call(
            "POST", "/oauth/token", {"client_id": "x", "client_secret": "y"}, auth=None
        )
        assert status == 401
        assert creds.client_secret not in json.dumps(body)
        status, body, _ = await client.call(
            "POST",
            f"{V2}/auth/token",
            {"username": creds.username, "password": creds.password},
            auth=None,
        )
        assert status == 201
        jwt = body["access_token"]
        claims = json.loads(base64.urlsafe_b64decode(jwt.split(".")[1] + "=="))
        assert claims["aud"] == "apache-airflow"
        assert claims["exp"] > claims["iat"]
        assert (await client.call("GET", f"{V2}/api/v2/pools", auth=f"Bearer {jwt}"))[0] == 200
        status, body, _ = await client.call("GET", "/d/dep-0002/api/v2/pools", auth=f"Bearer {jwt}")
        assert (status, body["detail"]) == (403, "Invalid JWT token")
        assert (await client.call("GET", f"{V2}/api/v2/pools", auth="Bearer a.b.c"))[0] == 403
        assert (await client.call("GET", f"{V2}/api/v2/pools", auth=None))[0] == 401
        assert (
            await client.call(
                "POST", f"{V2}/auth/token", {"username": "admin", "password": "no"}, auth=None
            )
        )[0] == 401
        assert (await client.call("POST", f"{V1}/auth/token", {}, auth=None))[0] == 404
        basic = "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
        assert (await client.call("GET", f"{V1}/api/v1/pools", auth=basic))[0] == 200
        status, body, _ = await client.call("GET", f"{V1}/api/v1/pools", auth="Basic eDp5")
        assert (status, body["title"]) == (403, "Forbidden")
        stats = client.sim.stats()
        assert stats["token_fetches"] == {"oauth": 1, "jwt": {"dep-0000": 1}, "total": 2}
        assert "api_token" not in json.dumps(stats) or creds.api_token not in json.dumps(stats)


async def test_expiry_and_revocation() -> None:
    """Tokens past their TTL and revoked tokens answer 401 Token Expired."""
    import anyio

    async for client in start(Simulator(deployments=1, api="v2", faults=Faults(token_ttl_s=0.3))):
        creds = client.sim.credentials
        _, body, _ = await client.call(
            "POST",
            f"{V2}/auth/token",
            {"username": creds.username, "password": creds.password},
            auth=None,
        )
        bearer = f"Bearer {body['access_token']}"
        assert (await client.call("GET", f"{V2}/api/v2/pools", auth=bearer))[0] == 200
        await anyio.sleep(0.35)
        status, body, _ = await client.call("GET", f"{V2}/api/v2/pools", auth=bearer)
        assert (status, body["detail"]) == (401, "Token Expired")
        _, body, _ = await client.call(
            "POST",
            f"{V2}/auth/token",
            {"username": creds.username, "password": creds.password},
            auth=None,
        )
        fresh = f"Bearer {body['access_token']}"
        client.sim.revoke_all_tokens()
        assert (await client.call("GET", f"{V2}/api/v2/pools", auth=fresh))[0] == 401


async def test_error_rate_and_reset_faults_are_counted() -> None:
    """error_rate=1 answers 5xx without acting; reset_rate=1 drops connections."""
    async for client in start(Simulator(deployments=1, api="v2", faults=Faults(error_rate=1.0))):
        status, _, _ = await client.call(
            "POST", f"{V2}/api/v2/dags/hello/dagRuns", {"logical_date": None}
        )
        assert status in (500, 502, 503)
        client.sim.set_faults(error_rate=0.0, reset_rate=1.0)
        with pytest.raises(aiohttp.ClientPayloadError):
            await client.call("GET", f"{V2}/api/v2/pools")
        stats = client.sim.stats()
        assert stats["faults_injected"]["error"] == 1
        assert stats["faults_injected"]["reset"] == 1
        assert stats["runs_total"] == 0


async def test_server_rate_limit_answers_429_with_retry_after() -> None:
    """Over rate_limit_per_s in the last second: 429 and Retry-After: 1."""
    async for client in start(
        Simulator(deployments=1, api="v2", faults=Faults(rate_limit_per_s=3))
    ):
        statuses = [(await client.call("GET", f"{V2}/api/v2/pools"))[0] for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        _, _, headers = await client.call("GET", f"{V2}/api/v2/pools")
        assert headers["Retry-After"] == "1"
        assert client.sim.stats()["faults_injected"]["rate_limited"] == 3


async def test_commit_then_fail_records_the_run() -> None:
    """commit_then_fail: the client sees a failure but the run exists."""
    async for client in start(
        Simulator(deployments=1, api="v2", faults=Faults(commit_then_fail_rate=1.0))
    ):
        try:
            status, _, _ = await client.call(
                "POST", f"{V2}/api/v2/dags/hello/dagRuns", {"dag_run_id": "r", "logical_date": None}
            )
            assert status == 503
        except aiohttp.ClientPayloadError:
            pass
        assert (await client.call("GET", f"{V2}/api/v2/dags/hello/dagRuns/r"))[0] == 200
        assert client.sim.stats()["faults_injected"]["commit_then_fail"] == 1


async def test_token_outage_window() -> None:
    """During the outage window token endpoints answer 503."""
    faults = Faults(token_outage_start_s=0.0, token_outage_s=30.0)
    async for client in start(Simulator(deployments=1, api="v2", faults=faults)):
        creds = client.sim.credentials
        status, _, _ = await client.call(
            "POST",
            "/oauth/token",
            {"client_id": creds.client_id, "client_secret": creds.client_secret},
            auth=None,
        )
        assert status == 503
        assert client.sim.stats()["token_fetch_failures"] == 1


async def test_window_maxima_and_in_flight() -> None:
    """Stats count the most requests in any 1 s window, per deployment and fleet-wide."""
    async for client in start(Simulator(deployments=2, api="v2")):
        for _ in range(7):
            await client.call("GET", f"{V2}/api/v2/pools")
        await client.call("GET", "/d/dep-0001/api/v2/pools")
        stats = client.sim.stats()
        assert stats["max_per_second_by_deployment"] == {"dep-0000": 7, "dep-0001": 1}
        assert stats["max_per_second"] == 8
        assert stats["max_in_flight"] >= 1
        assert stats["max_per_second_by_credential"] == {"api_token": 8}
        client.sim.reset_stats()
        assert client.sim.stats()["requests_total"] == 0


def test_fleet_yaml_follows_the_design_format() -> None:
    """fleet_yaml() writes DESIGN.md's format with secrets as ${VAR}s."""
    sim = Simulator(deployments=3, api="mixed")
    for auth in ("oauth", "token", "password"):
        doc = yaml.safe_load(sim.fleet_yaml("http://127.0.0.1:1", auth=auth))
        assert doc["version"] == 1
        assert doc["defaults"]["auth"] == auth
        assert [d["name"] for d in doc["deployments"]] == ["dep-0000", "dep-0001", "dep-0002"]
        assert doc["deployments"][1]["url"] == "http://127.0.0.1:1/d/dep-0001"
        assert set(doc["deployments"][0]["tags"]) == {"prod", "eu", "v2"}
        text = json.dumps(doc)
        for secret in (
            sim.credentials.client_secret,
            sim.credentials.api_token,
            sim.credentials.password,
        ):
            assert secret not in text
    assert set(sim.env()) == {
        "AIRFLEET_SIM_CLIENT_SECRET",
        "AIRFLEET_SIM_TOKEN",
        "AIRFLEET_SIM_PASSWORD",
    }


async def test_shapes_match_real_airflow_3_3_2_fixtures() -> None:
    """Status codes and keys (recursively) match recorded Airflow 3.3.2 answers."""
    async for client in start(Simulator(deployments=1, api="v2")):
        creds = client.sim.credentials
        base = f"{V2}/api/v2"
        await client.call(
            "POST", f"{base}/dags/hello/dagRuns", {"dag_run_id": "d", "logical_date": None}
        )
        cases = {
            "version.json": await client.call("GET", f"{base}/version", auth=None),
            "health.json": await client.call("GET", f"{base}/monitor/health", auth=None),
            "dags.json": await client.call("GET", f"{base}/dags", limit="1"),
            "pools.json": await client.call("GET", f"{base}/pools"),
            "dag_run.json": await client.call(
                "POST", f"{base}/dags/hello/dagRuns", {"dag_run_id": "x", "logical_date": None}
            ),
            "error_404_dag.json": await client.call(
                "POST", f"{base}/dags/nope/dagRuns", {"logical_date": None}
            ),
            "error_409_duplicate.json": await client.call(
                "POST", f"{base}/dags/hello/dagRuns", {"dag_run_id": "d", "logical_date": None}
            ),
            "error_422_missing_logical_date.json": await client.call(
                "POST", f"{base}/dags/hello/dagRuns", {}
            ),
            "error_401_missing.json": await client.call("GET", f"{base}/pools", auth=None),
            "error_403_invalid_jwt.json": await client.call(
                "GET", f"{base}/pools", auth="Bearer x.y.z"
            ),
            "error_404_api_v1.json": await client.call("GET", f"{V2}/api/v1/pools"),
            "token.json": await client.call(
                "POST",
                f"{V2}/auth/token",
                {"username": creds.username, "password": creds.password},
                auth=None,
            ),
        }
        for name, (status, body, _) in cases.items():
            recorded = json.loads((FIXTURES / name).read_text())
            assert status == recorded["status"], name
            assert shape(body) == shape(recorded["body"]), name
