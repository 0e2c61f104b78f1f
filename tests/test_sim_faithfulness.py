"""The official apache-airflow-client parses every simulator answer it covers (v2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from airflow_client import client as af

from _simthread import SimThread, sim_in_thread
from airfleet.sim import Simulator


@pytest.fixture(scope="module")
def api() -> Iterator[af.ApiClient]:
    with sim_in_thread(
        Simulator(deployments=2, api="v2", seed=3, run_queued_s=0, run_duration_s=0)
    ) as sim:
        config = af.Configuration(
            host=f"{sim.url}/d/dep-0000", access_token=sim.sim.credentials.api_token
        )
        with af.ApiClient(config) as client:
            yield client


@pytest.fixture(scope="module")
def running() -> Iterator[SimThread]:
    with sim_in_thread(Simulator(deployments=1, api="v2")) as sim:
        yield sim


def test_version_and_health_parse(api: af.ApiClient) -> None:
    """VersionInfo and HealthInfoResponse models accept the simulator's answers."""
    assert af.VersionApi(api).get_version().version == "3.3.2"
    health = af.MonitorApi(api).get_health()
    assert health.metadatabase.status == "healthy"


def test_dags_parse_and_patch(api: af.ApiClient) -> None:
    """DAGCollectionResponse, DAGResponse and DAGPatchBody round-trip."""
    dags = af.DAGApi(api)
    page = dags.get_dags(limit=100)
    assert page.total_entries == len(page.dags) == 5
    assert dags.get_dag("hello").dag_id == "hello"
    patched = dags.patch_dag("hello", af.DAGPatchBody(is_paused=True), update_mask=["is_paused"])
    assert patched.is_paused is True
    dags.patch_dag("hello", af.DAGPatchBody(is_paused=False))


def test_pools_parse_create_and_patch(api: af.ApiClient) -> None:
    """PoolCollectionResponse, PoolResponse, PoolBody and PoolPatchBody round-trip."""
    pools = af.PoolApi(api)
    assert any(p.name == "default_pool" for p in pools.get_pools().pools)
    created = pools.post_pool(af.PoolBody(name="faithful", slots=4, description="d"))
    assert created.slots == 4
    body = af.PoolPatchBody(pool="faithful", slots=6, include_deferred=False)
    assert pools.patch_pool("faithful", body, update_mask=["slots"]).slots == 6
    assert pools.get_pool("faithful").open_slots == 6


def test_dag_runs_parse_trigger_get_patch(api: af.ApiClient) -> None:
    """TriggerDAGRunPostBody, DAGRunResponse and DAGRunPatchBody round-trip."""
    runs = af.DagRunApi(api)
    body = af.TriggerDAGRunPostBody(dag_run_id="faithful-1", logical_date=None, conf={"a": 1})
    created = runs.trigger_dag_run("hello", body)
    assert created.dag_run_id == "faithful-1"
    assert created.conf == {"a": 1}
    fetched = runs.get_dag_run("hello", "faithful-1")
    assert fetched.state.value in ("queued", "running", "success")
    patched = runs.patch_dag_run("hello", "faithful-1", af.DAGRunPatchBody(state="failed"))
    assert patched.state.value == "failed"
    assert (runs.get_dag_runs("hello").total_entries or 0) >= 1


def test_duplicate_trigger_raises_conflict(api: af.ApiClient) -> None:
    """A duplicate run id is a 409 the client surfaces as ConflictException."""
    runs = af.DagRunApi(api)
    body = af.TriggerDAGRunPostBody(dag_run_id="faithful-dup", logical_date=None)
    runs.trigger_dag_run("hello", body)
    with pytest.raises(af.ApiException) as caught:
        runs.trigger_dag_run("hello", body)
    assert caught.value.status == 409


def test_token_endpoint_works_for_the_client(running: SimThread) -> None:
    """A JWT from /auth/token authenticates the official client."""
    import json
    import urllib.request

    creds = running.sim.credentials
    request = urllib.request.Request(  # noqa: S310 - loopback
        f"{running.url}/d/dep-0000/auth/token",
        data=json.dumps({"username": creds.username, "password": creds.password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
        assert response.status == 201
        token = json.loads(response.read())["access_token"]
    config = af.Configuration(host=f"{running.url}/d/dep-0000", access_token=token)
    with af.ApiClient(config) as client:
        assert af.PoolApi(client).get_pools().total_entries == 1
