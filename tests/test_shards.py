"""Jobs split into shards that run apart (airfleet.airflow's mapped tasks), without Airflow.

The hostile condition: the shards of one job run at the same time, each
with an engine of its own that knows nothing of the others. Only their
shares of every shared limit keep the servers' view of the fleet within
the fleet's limits, and only run ids derived from the host's run keep a
re-run from triggering twice.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet.engine import RunReport
from airfleet.errors import ConfigError, UsageError
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Deployment, Fleet, FleetLimits
from airfleet.jobs.hosted import (
    ShardReport,
    host_run_ids,
    merge_reports,
    plan_shards,
    run_hosted,
    run_label,
)
from airfleet.jobs.shards import Shard, share_limits, split
from airfleet.jobs.spec import Job, parse_job
from airfleet.operations.trigger import check_run_id
from airfleet.results import Outcome
from airfleet.sim import Faults, Simulator

TRIGGER_JOB = """\
version: 1
name: nightly
steps:
  - trigger: {id: load, dags: [hello]}
"""


def deployments(names: list[str], auth: str = "oauth") -> list[Deployment]:
    return [Deployment(name, f"http://127.0.0.1/d/{name}", auth) for name in names]


# -- the split -----------------------------------------------------------------------

names_lists = st.lists(
    st.text("abcdefghij0123456789-._", min_size=1, max_size=12), unique=True, max_size=60
)


@given(names=names_lists, count=st.integers(1, 12), seed=st.integers(0, 1000))
def test_every_deployment_is_in_exactly_one_shard_whatever_the_file_order(
    names: list[str], count: int, seed: int
) -> None:
    shards = split(deployments(names), count, caps=[64])
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    again = split(deployments(shuffled), count, caps=[64])
    assert again == shards
    assert len(shards) == count
    held = [name for shard in shards for name in shard.deployments]
    assert sorted(held) == sorted(names)
    sizes = [len(shard.deployments) for shard in shards]
    assert max(sizes) - min(sizes) <= 1


@given(
    total=st.integers(1, 500),
    rate=st.one_of(st.none(), st.floats(0.1, 10_000)),
    count=st.integers(1, 64),
)
def test_the_shares_of_a_limit_add_up_to_no_more_than_it(
    total: int, rate: float | None, count: int
) -> None:
    if count > total:
        with pytest.raises(UsageError, match="each needs at least one"):
            share_limits(FleetLimits(total, rate), Shard(count - 1, count, (), {}))
        return
    shares = [share_limits(FleetLimits(total, rate), Shard(i, count, (), {})) for i in range(count)]
    assert sum(s.max_in_flight for s in shares) == total
    assert all(s.max_in_flight >= 1 for s in shares)
    if rate is None:
        assert all(s.max_per_second is None for s in shares)
    else:
        assert sum(s.max_per_second or 0 for s in shares) <= rate * (1 + 1e-9)


def test_more_shards_than_a_step_s_in_flight_cap_is_refused_before_anything_runs() -> None:
    job = parse_job(
        TRIGGER_JOB.replace("dags: [hello]", "dags: [hello], limits: {max_in_flight: 2}")
    )
    fleet = Fleet(tuple(deployments(["a", "b", "c", "d"])))
    with pytest.raises(UsageError, match="max_in_flight of 2"):
        plan_shards(job, fleet, 3)
    assert len(plan_shards(job, fleet, 2)) == 2


def test_a_step_that_selects_nothing_is_a_config_error_at_its_line() -> None:
    job = parse_job(TRIGGER_JOB.replace("dags: [hello]", "dags: [hello], select: [tag:nope]"))
    with pytest.raises(ConfigError) as caught:
        plan_shards(job, Fleet(tuple(deployments(["a"]))), 2)
    assert caught.value.line == 4


def test_a_shard_travels_as_names_only_and_comes_back_the_same() -> None:
    shard = split(deployments(["b", "a", "c"]), 2, caps=[4])[0]
    assert Shard.from_dict(shard.to_dict()) == shard
    assert shard.to_dict() == {
        "index": 0,
        "count": 2,
        "deployments": ["a", "c"],
        "sharers": {"oauth": 2},
    }
    with pytest.raises(UsageError, match="not within"):
        Shard.from_dict({**shard.to_dict(), "index": 2})


# -- run ids ---------------------------------------------------------------------------


@given(run_id=st.text(max_size=300), scope=st.text(min_size=1, max_size=300))
def test_run_ids_from_any_host_run_are_valid_airflow_run_ids(run_id: str, scope: str) -> None:
    job = parse_job(TRIGGER_JOB)
    ids = host_run_ids(job, scope=scope, label=run_label(None, run_id))
    assert check_run_id(ids["load"]) == ids["load"]
    assert len(ids["load"]) <= 250


def test_run_ids_name_the_host_run_by_its_logical_date_else_its_run_id() -> None:
    from datetime import UTC, datetime, timedelta, timezone

    job = parse_job(TRIGGER_JOB)
    at = datetime(2026, 12, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert run_label(at, "manual__whatever") == "2026-12-01T00:00:00Z"
    assert run_label(at.replace(microsecond=5), "x") == "2026-12-01T00:00:00.000005Z"
    assert run_label(None, "manual__2026-12-01T10:00:00+00:00") == (
        "manual__2026-12-01T10:00:00+00:00"
    )
    label = run_label(datetime(2026, 12, 1, tzinfo=UTC), "")
    assert host_run_ids(job, scope="fleet_nightly.shard", label=label) == {
        "load": "airfleet__fleet_nightly.shard__2026-12-01T00:00:00Z__load"
    }


# -- shards at once, against the simulator -------------------------------------------


class Served:
    def __init__(self, sim: Simulator, url: str) -> None:
        self.sim = sim
        self.url = url

    def fleet(self, auth: str = "oauth", **defaults: Any) -> Fleet:
        text = self.sim.fleet_yaml(self.url, auth=auth, extra_defaults=defaults)  # type: ignore[arg-type]
        return parse_fleet(text, source="fleet.yaml", env=self.sim.env())

    def runs(self, dag: str = "hello") -> dict[str, list[str]]:
        logged = self.sim.stats()["run_ids"]
        return {name: list(per_dag.get(dag, [])) for name, per_dag in logged.items()}


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    sim = Simulator(deployments=30, api="mixed", seed=5, faults=Faults(latency_ms=2))
    async with sim.running(host="127.0.0.1", port=0) as server:
        yield Served(sim, server.url)


async def run_shards(job: Job, fleet: Fleet, count: int, label: str) -> list[RunReport]:
    shards = plan_shards(job, fleet, count)
    ids = host_run_ids(job, scope="fleet.shard", label=label)
    reports: list[RunReport] = []

    async def one(shard: Shard) -> None:
        reports.append(await run_hosted(job, fleet, run_ids=ids, shard=shard))

    async with anyio.create_task_group() as group:
        for shard in shards:
            group.start_soon(one, shard)
    return reports


@pytest.mark.anyio
async def test_shards_running_at_once_stay_within_the_fleet_rate_and_trigger_once(
    served: Served,
) -> None:
    """Four shards at once, each its own engine: the server sees at most the fleet's
    rate (each shard alone would take all of it: 4x), every deployment triggered once,
    and the same host run again triggers nothing."""
    fleet = dataclasses.replace(
        served.fleet(max_per_second=None), limits=FleetLimits(max_in_flight=16, max_per_second=20)
    )
    job = parse_job(TRIGGER_JOB)
    reports = await run_shards(job, fleet, 4, "2026-12-01T00:00:00Z")
    stats = served.sim.stats()
    assert stats["max_per_second"] <= 20 + 1  # one late first arrival, at most
    assert sum(r.summary.ok for r in reports) == 30
    runs = served.runs()
    assert all(len(ids) == 1 for ids in runs.values())
    assert set(runs) == set(served.sim.names)

    again = await run_shards(job, fleet, 4, "2026-12-01T00:00:00Z")
    assert served.runs() == runs
    results = [r for report in again for r in report.results]
    assert len(results) == 30
    assert all(r.ok and r.data["already_existed"] for r in results)


@pytest.mark.anyio
async def test_a_credential_s_rate_is_shared_among_the_shards_that_use_it(
    served: Served,
) -> None:
    """Three shards at once on one token limited to 12/s: the server sees at most 12/s
    from it (36/s with every shard taking the whole rate)."""
    fleet = served.fleet("token", max_per_second=None)
    token = fleet.auth["token"]
    fleet = dataclasses.replace(
        fleet,
        auth={**fleet.auth, "token": dataclasses.replace(token, max_per_second=12)},
        limits=FleetLimits(max_in_flight=16, max_per_second=None),
    )
    job = parse_job(
        TRIGGER_JOB.replace("trigger: {id: load, dags: [hello]}", "api: {path: /pools}")
    )
    reports = await run_shards(job, fleet, 3, "x")
    assert sum(r.summary.ok for r in reports) == 30
    peak = served.sim.stats()["max_per_second_by_credential"]["api_token"]
    assert 6 <= peak <= 12 + 1


@pytest.mark.anyio
async def test_a_deployment_gone_since_the_split_fails_and_is_sent_nothing(
    served: Served,
) -> None:
    fleet = served.fleet(max_per_second=None)
    job = parse_job(TRIGGER_JOB)
    shard = Shard(0, 2, ("d-gone", fleet.deployments[0].name), {"oauth": 1})
    ids = host_run_ids(job, scope="fleet.shard", label="x")
    report = await run_hosted(job, fleet, run_ids=ids, shard=shard)
    outcomes = {r.deployment: r.outcome for r in report.results}
    assert outcomes == {"d-gone": Outcome.FAILED, fleet.deployments[0].name: Outcome.OK}
    gone = next(r for r in report.results if r.deployment == "d-gone")
    assert gone.error is not None
    assert "no longer has it" in gone.error
    assert report.summary.exit_code == 1
    sent_to = {name for name, ids in served.runs().items() if ids}
    assert sent_to == {fleet.deployments[0].name}


# -- merging ---------------------------------------------------------------------------


def test_the_merged_report_holds_every_result_and_a_silent_shard_fails_its_deployments() -> None:
    shards = split(deployments(["a", "b", "c", "d"]), 2, caps=[4])
    ok = {
        "deployment": "a",
        "operation": "trigger",
        "target": "hello",
        "outcome": "ok",
        "status": 200,
        "attempts": 1,
        "latency_ms": 5.0,
        "error": None,
        "data": {},
        "step": "load",
    }
    summary = {
        "operation": "job",
        "started_at": "2026-12-01T00:00:00.000+00:00",
        "duration_s": 2.0,
        "requests": 7,
        "token_fetches": 1,
    }
    merged = merge_reports(shards, {0: ShardReport([ok, {**ok, "deployment": "c"}], summary)})
    assert merged.summary.total == 4
    assert merged.summary.ok == 2
    assert merged.summary.failed == 2
    assert merged.summary.requests == 7
    assert merged.summary.duration_s == 2.0
    assert merged.summary.failed_deployments == ("b", "d")
    assert {r.step for r in merged.results if r.ok} == {"load"}
    assert merged.summary.exit_code == 1
