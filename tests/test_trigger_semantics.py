"""What a trigger means on both Airflow versions, asserted on what the simulator holds.

One logical date per invocation; a paused DAG said, and --wait failing at
once; an existing run with other values failed; run ids checked before
anything is sent; dates in UTC ``Z``; flags that mean nothing refused.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pytest

from _cli import run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet.engine import Engine, RunReport
from airfleet.errors import UsageError
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Fleet
from airfleet.operations import NO_LOGICAL_DATE, plan_trigger
from airfleet.plan import Plan
from airfleet.results import Outcome, Result
from airfleet.sim import SimServer, Simulator

NOW = datetime(2026, 12, 1, 12, 0, 0, 250000, tzinfo=UTC)
INSTANT = "2026-12-01T12:00:00.250000Z"


class Running:
    """An in-process simulator and fleets for it."""

    def __init__(self, sim: Simulator, server: SimServer) -> None:
        self.sim = sim
        self.server = server

    def fleet(self, api: Literal["auto", "declared"] = "declared") -> Fleet:
        text = self.sim.fleet_yaml(
            self.server.url, auth="token", api=api, extra_defaults={"max_per_second": None}
        )
        return parse_fleet(text, source="sim-fleet.yaml", env=self.sim.env())

    def endpoints(self) -> dict[str, int]:
        counts: dict[str, int] = self.sim.stats()["requests_by_endpoint"]
        return counts

    def runs(self, dag_id: str, run_id: str) -> dict[str, Any]:
        """Each deployment's run ``run_id`` of ``dag_id``, as the server holds it."""
        return {
            name: dep.runs[dag_id][run_id]
            for name, dep in self.sim.deployments.items()
            if run_id in dep.runs.get(dag_id, {})
        }


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    sim = Simulator(deployments=4, api="mixed", seed=7, run_queued_s=0.05, run_duration_s=0.05)
    async with sim.running(host="127.0.0.1", port=0) as server:
        yield Running(sim, server)


async def run(fleet: Fleet, plan: Plan) -> RunReport:
    async with Engine(fleet) as engine:
        return await engine.run(plan)


def by_deployment(report: RunReport) -> dict[str, Result]:
    return {r.deployment: r for r in report.results}


# -- one logical date per invocation -----------------------------------------------------


@pytest.mark.anyio
async def test_the_default_logical_date_is_one_utc_instant_on_both_versions(
    running: Running,
) -> None:
    """Without --logical-date, Airflow 2 and 3 get the same explicit instant, and the
    report shows it in UTC Z (Airflow 2 answers +00:00)."""
    fleet = running.fleet()
    report = await run(fleet, plan_trigger(fleet.deployments, ["hello"], run_id="one", now=NOW))
    assert report.summary.ok == 4
    held = running.runs("hello", "one")
    assert {running.sim.api_of(n) for n in held} == {"v1", "v2"}
    assert {run.logical_date for run in held.values()} == {NOW}
    assert {r.data["logical_date"] for r in report.results} == {INSTANT}


@pytest.mark.anyio
async def test_a_rerun_with_the_default_date_finds_its_run_and_a_given_date_is_compared(
    running: Running,
) -> None:
    """Same run id again, later, without a date: ok, already_existed. With a date
    that differs from the run's: failed, naming it; the same date: ok."""
    fleet = running.fleet()
    first = await run(fleet, plan_trigger(fleet.deployments, ["hello"], run_id="again", now=NOW))
    assert first.summary.ok == 4
    later = NOW.replace(hour=13)
    rerun = await run(fleet, plan_trigger(fleet.deployments, ["hello"], run_id="again", now=later))
    assert rerun.summary.ok == 4
    assert all(r.data["already_existed"] is True for r in rerun.results)
    assert {r.data["logical_date"] for r in rerun.results} == {INSTANT}  # the run's own

    other = await run(
        fleet,
        plan_trigger(fleet.deployments, ["hello"], run_id="again", logical_date=later),
    )
    assert other.summary.failed == 4
    for result in other.results:
        assert result.data["conflicts"] == ["logical_date"]
        assert f"logical date ({INSTANT} there, 2026-12-01T13:00:00.250000Z asked)" in (
            result.error or ""
        )
    same = await run(
        fleet,
        plan_trigger(
            fleet.deployments,
            ["hello"],
            run_id="again",
            logical_date="2026-12-01T13:00:00.25+01:00",
        ),
    )
    assert same.summary.ok == 4, [r.error for r in same.results]
    assert len(running.runs("hello", "again")) == 4
    assert running.sim.stats()["runs_total"] == 4


@pytest.mark.anyio
async def test_an_existing_run_with_another_conf_or_note_is_failed_naming_the_difference(
    running: Running,
) -> None:
    """The server keeps the first conf and note: a re-run asking for others fails and
    says which; the same conf again, without the note, stays ok."""
    fleet = running.fleet()
    plan = plan_trigger(
        fleet.deployments, ["hello"], run_id="c1", conf={"full": True}, note="first", now=NOW
    )
    assert (await run(fleet, plan)).summary.ok == 4
    changed = await run(
        fleet,
        plan_trigger(fleet.deployments, ["hello"], run_id="c1", conf={"full": 1}, note="second"),
    )
    assert changed.summary.failed == 4
    for result in changed.results:
        assert result.data["conflicts"] == ["conf", "note"]
        assert result.data["already_existed"] is True
        assert "conf (keys differing: full)" in (result.error or "")
        assert "note ('first' there, 'second' asked)" in (result.error or "")
    assert {run.conf["full"] for run in running.runs("hello", "c1").values()} == {True}
    same = await run(
        fleet, plan_trigger(fleet.deployments, ["hello"], run_id="c1", conf={"full": True})
    )
    assert same.summary.ok == 4


@pytest.mark.anyio
async def test_one_server_listed_twice_gets_one_run_and_the_second_row_finds_it(
    running: Running,
) -> None:
    """The same URL under two names (allowed): the fixed run id and instant make one
    run, and the second call reports it already_existed."""
    fleet = running.fleet()
    first = fleet.deployments[0]
    twice = dataclasses.replace(
        fleet, deployments=(first, dataclasses.replace(first, name="alias"))
    )
    async with Engine(twice) as engine:
        report = await engine.run(plan_trigger(twice.deployments, ["hello"], run_id="dup"))
    assert report.summary.ok == 2
    assert sorted(
        r.data["already_existed"] for r in report.results if "already_existed" in r.data
    ) in (
        [True],
        [False, True],  # both POSTs raced: the 409 came on a retry (never here) or not
    )
    assert len(running.runs("hello", "dup")) == 1


@pytest.mark.anyio
async def test_no_logical_date_is_airflow_3_only_and_refused_on_2_without_a_post(
    running: Running,
) -> None:
    """--logical-date none: Airflow 3 makes a run without one; an auto-detected Airflow 2
    fails with the reason and gets no trigger; a declared one is refused at planning."""
    fleet = running.fleet(api="auto")
    report = await run(
        fleet,
        plan_trigger(fleet.deployments, ["hello"], run_id="nodate", logical_date=NO_LOGICAL_DATE),
    )
    results = by_deployment(report)
    for name in running.sim.names:
        if running.sim.api_of(name) == "v2":
            assert results[name].outcome is Outcome.OK
            assert results[name].data["logical_date"] is None
        else:
            assert results[name].outcome is Outcome.FAILED
            assert "Airflow 2 cannot make a run without a logical date" in (
                results[name].error or ""
            )
    held = running.runs("hello", "nodate")
    assert {running.sim.api_of(n) for n in held} == {"v2"}
    assert {run.logical_date for run in held.values()} == {None}
    assert running.endpoints()["trigger"] == 2  # no POST reached an Airflow 2 API

    declared = running.fleet()
    with pytest.raises(UsageError, match="declare api: v1"):
        plan_trigger(declared.deployments, ["hello"], logical_date=NO_LOGICAL_DATE)


# -- paused DAGs ---------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_paused_dag_is_said_at_one_get_of_the_dag_per_call(running: Running) -> None:
    """dag_paused is true where the DAG is paused, false elsewhere; a trigger costs
    its POST and one GET of the DAG, nothing more."""
    fleet = running.fleet()
    paused = running.sim.names[:2]
    for name in paused:
        running.sim.set_paused(name, "hello", True)
    report = await run(fleet, plan_trigger(fleet.deployments, ["hello", "nightly_load"]))
    assert report.summary.ok == 8
    flags = {(r.deployment, r.target): r.data["dag_paused"] for r in report.results}
    assert flags == {
        (name, dag): name in paused and dag == "hello"
        for name in running.sim.names
        for dag in ("hello", "nightly_load")
    }
    assert running.endpoints() == {"trigger": 8, "get_dag": 8}
    assert all(r.requests == 2 for r in report.results)


@pytest.mark.anyio
async def test_waiting_on_a_paused_dag_fails_at_once_with_the_reason(running: Running) -> None:
    """--wait on a paused DAG: failed without a single poll, saying it is paused and how
    to go on; the run exists, queued."""
    fleet = running.fleet()
    name = running.sim.names[0]
    running.sim.set_paused(name, "hello", True)
    plan = plan_trigger(fleet.deployments, ["hello"], run_id="w1", wait=True, timeout_s=60)
    report = await run(fleet, plan)
    results = by_deployment(report)
    stuck = results[name]
    assert stuck.outcome is Outcome.FAILED
    assert stuck.data["dag_paused"] is True
    assert stuck.data["final_state"] == "queued"
    assert "DAG hello is paused" in (stuck.error or "")
    assert "--run-id w1 --wait" in (stuck.error or "")
    assert stuck.requests == 2  # the POST and the DAG: no poll
    assert all(results[n].data["final_state"] == "success" for n in running.sim.names[1:])
    assert set(running.runs("hello", "w1")) == set(running.sim.names)


# -- input checked before anything is sent --------------------------------------------------


@pytest.mark.parametrize(
    ("run_id", "says"),
    [
        ("with/slash", "'/'"),
        ("has space", "' '"),
        ("run é", "'é'"),
        ("", "is empty"),
        ("a..b", "'..'"),
        ("x" * 251, "at most 250"),
    ],
)
def test_run_ids_airflow_refuses_are_refused_at_planning(run_id: str, says: str) -> None:
    """Outside ^[A-Za-z0-9_.~:+-]+$ (or too long, or with '..'): UsageError naming it."""
    with pytest.raises(UsageError, match="--run-id") as raised:
        plan_trigger((), ["hello"], run_id=run_id)
    assert says in str(raised.value)


def test_every_allowed_character_passes() -> None:
    """Letters, digits and . _ ~ : + - make a valid run id."""
    plan = plan_trigger((), ["hello"], run_id="Az09._~:+-")
    assert plan.operation == "trigger"


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"note": ""}, "--note is empty"),
        ({"logical_date": "yesterday"}, "not an ISO-8601 date-time"),
        ({"dag_ids": ["a", "b", "a"]}, "DAG 'a' is given twice"),
        ({"dag_ids": [""]}, "a DAG id is empty"),
    ],
)
def test_meaningless_trigger_input_is_refused_at_planning(
    options: dict[str, Any], says: str
) -> None:
    """An empty note (Airflow keeps none), an unreadable date, a DAG given twice (the
    second call would only find the first's run): UsageError, before anything is sent."""
    dag_ids = options.pop("dag_ids", ["hello"])
    with pytest.raises(UsageError, match=says):
        plan_trigger((), dag_ids, **options)


# -- the CLI ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    simulator = Simulator(deployments=4, api="mixed", seed=17, run_queued_s=0.05)
    with sim_in_thread(simulator) as served:
        yield served


def cli(sim: SimThread, fleet: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_airfleet("-c", str(fleet), *args, env=sim.sim.env(), timeout_s=60)


def test_bad_trigger_input_is_one_line_exit_2_and_nothing_sent(
    sim: SimThread, tmp_path: Path
) -> None:
    """Bad run ids, flags that mean nothing, a DAG given twice, --logical-date none on a
    declared Airflow 2: each one line, exit 2, and the server saw no request."""
    fleet = sim.write_fleet(tmp_path / "fleet.yaml", auth="token")
    declared = tmp_path / "declared.yaml"
    declared.write_text(sim.sim.fleet_yaml(sim.url, auth="token", api="declared"))
    cases = [
        (fleet, ["hello", "--run-id", "run é/1"], "holds ' ' '/' 'é': use letters, digits"),
        (fleet, ["hello", "--poll", "1", "--timeout", "5"], "--timeout and --poll only apply"),
        (fleet, ["hello", "nightly_load", "hello"], "'hello' is given twice"),
        (fleet, ["hello", "--dry-run", "-o", str(tmp_path / "plan.json")], "drop -o"),
        (declared, ["hello", "--logical-date", "none", "-s", "tag:v1"], "declare api: v1"),
    ]
    before = sim.stats()["requests_seen"]
    with ThreadPoolExecutor(2) as pool:
        outs = list(pool.map(lambda c: cli(sim, c[0], "trigger", *c[1]), cases))
    for (_, args, says), out in zip(cases, outs, strict=True):
        assert out.returncode == 2, (args, out.stderr)
        assert says in out.stderr, (args, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1, (args, out.stderr)
    assert sim.stats()["requests_seen"] == before


def test_unpause_is_its_own_call_before_the_trigger(sim: SimThread, tmp_path: Path) -> None:
    """--unpause: one unpause row per deployment and DAG, then the trigger rows; the DAG
    is unpaused on the server and the runs reach success under --wait."""
    fleet = sim.write_fleet(tmp_path / "fleet.yaml", auth="token")
    for name in sim.sim.names:
        sim.sim.set_paused(name, "nightly_load", True)
    out = cli(
        sim, fleet, "trigger", "nightly_load", "--unpause", "--wait", "--poll", "0.2",
        "--report", "json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout)["results"]
    assert [r["operation"] for r in results] == ["unpause"] * 4 + ["trigger"] * 4
    assert all(r["outcome"] == "ok" for r in results)
    assert all("dag_paused" not in r["data"] for r in results[4:])  # the unpause said so
    assert all(r["data"]["final_state"] == "success" for r in results[4:])
    assert not any(sim.stats()["paused"][n]["nightly_load"] for n in sim.sim.names)


def test_dry_run_and_help_show_the_logical_date(sim: SimThread, tmp_path: Path) -> None:
    """The dry run shows the one instant every deployment would get; --help says the
    default."""
    fleet = sim.write_fleet(tmp_path / "fleet.yaml", auth="token")
    before = sim.stats()["requests_seen"]
    out = cli(sim, fleet, "trigger", "hello", "--unpause", "--dry-run", "--report", "json")
    assert out.returncode == 0, out.stderr
    requests = json.loads(out.stdout)["requests"]
    assert [r["method"] for r in requests] == ["PATCH"] * 4 + ["POST"] * 4
    dates = {r["body"]["logical_date"] for r in requests[4:]}
    assert len(dates) == 1
    (date,) = dates
    assert date.endswith("Z")
    assert abs((datetime.fromisoformat(date) - datetime.now(UTC)).total_seconds()) < 60
    assert sim.stats()["requests_seen"] == before
    helped = run_airfleet("trigger", "--help")
    assert "Default: the time of this invocation" in " ".join(helped.stdout.split())
