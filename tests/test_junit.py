"""JUnit reports follow the Ant JUnit XSD and read well in CI: unique testcases,
failures apart from errors, timestamps in UTC without a zone."""

from __future__ import annotations

import dataclasses
import io
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from _reports import (
    airflow3,
    assert_valid_junit,
    fleet_of,
    host,
    rendered,
    run_job,
    run_plan,
)
from airfleet.engine import Engine
from airfleet.inventory import Deployment, Fleet, Secret, TokenAuth
from airfleet.operations import plan_health, plan_pools, plan_trigger
from airfleet.report.junit import render_junit
from airfleet.results import Collector, Outcome, Result, Summary
from airfleet.testing import MockTransport, answer

pytestmark = pytest.mark.anyio

JOB = """\
version: 1
name: nightly
steps:
  - unpause: {dags: [refresh_dims]}
  - trigger: {id: load, dags: [refresh_dims]}
  - trigger: {id: reload, dags: [refresh_dims], continue_on_failure: true}
  - pause: {dags: [refresh_dims]}
"""


def suite_of(root: etree._Element) -> etree._Element:
    suite = root.find("testsuite")
    assert suite is not None
    return suite


def pairs(root: etree._Element) -> list[tuple[str | None, str | None]]:
    return [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]


def counted(suite: etree._Element) -> dict[str, int]:
    """What the testcases hold, counted the way the suite's attributes count."""
    kinds = Counter(
        child.tag for case in suite.iter("testcase") for child in case if child.tag != "system-out"
    )
    return {
        "tests": len(suite.findall("testcase")),
        "failures": kinds["failure"],
        "errors": kinds["error"],
        "skipped": kinds["skipped"],
    }


def attributes(suite: etree._Element) -> dict[str, int]:
    return {k: int(suite.get(k) or -1) for k in ("tests", "failures", "errors", "skipped")}


async def test_a_jobs_testcases_are_unique_across_steps_and_name_the_step(
    tmp_path: Path,
) -> None:
    """Two trigger steps of one DAG on the same deployments (and a pause and an
    unpause of it): every (classname, name) pair is unique, built from the step
    id, the deployment and the target; the file follows the XSD."""
    fleet = fleet_of(["prod-eu", "prod-us"])
    report = await run_job(tmp_path, JOB, fleet, airflow3())
    root = assert_valid_junit(rendered("junit", report))
    found = pairs(root)
    assert len(found) == len(report.results) == 8
    assert len(set(found)) == len(found), found
    assert ("airfleet.load.prod-eu", "trigger refresh_dims") in found
    assert ("airfleet.reload.prod-eu", "trigger refresh_dims") in found
    assert ("airfleet.step1.prod-us", "unpause refresh_dims") in found
    assert ("airfleet.step4.prod-us", "pause refresh_dims") in found


async def test_dots_in_deployment_names_do_not_split_the_class() -> None:
    """Jenkins reads the last dot of a classname as package/class: a dot inside a
    deployment name is written as U+2024, so the class is the whole name."""
    fleet = fleet_of(["prod.eu.1", "prod-us"])
    report = await run_plan(fleet, plan_health(fleet.deployments), airflow3())
    root = assert_valid_junit(rendered("junit", report))
    classes = sorted(c for c, _ in pairs(root) if c)
    assert classes == ["airfleet.health.prod-us", "airfleet.health.prod\u2024eu\u20241"]
    assert all(c.count(".") == 2 for c in classes)


async def test_failures_errors_and_skips_are_told_apart_and_counted(tmp_path: Path) -> None:
    """A refused call is a failure; an unknown effect or an interruption is an
    error; a plain skip is skipped; the suite's counts are its testcases'."""
    fleet = fleet_of(["ok", "missing", "reset", "stopped"])
    ran = await run_plan(
        fleet,
        plan_trigger(fleet.deployments[:3], ["refresh_dims"], run_id="airfleet__r1"),
        airflow3({host(1): "missing", host(2): "reset"}),
    )
    stopped = await run_plan(
        fleet,
        plan_trigger(fleet.deployments[3:], ["refresh_dims"], run_id="airfleet__r1"),
        airflow3(),
        stopped=True,
    )
    by_name = {r.deployment: r for r in (*ran.results, *stopped.results)}
    # What the trigger conversation reports for a run stopped while --wait polled.
    waited = dataclasses.replace(
        by_name["ok"],
        deployment="waited",
        outcome=Outcome.SKIPPED,
        error="interrupted while waiting: run airfleet__r1 was made and was queued",
        data={**by_name["ok"].data, "final_state": None, "interrupted": True},
    )
    hibernating = Result("sleepy", "trigger", "refresh_dims", Outcome.SKIPPED, error="hibernating")
    results = [*by_name.values(), waited, hibernating]
    assert by_name["reset"].data.get("effect") == "unknown"
    assert by_name["stopped"].outcome is Outcome.SKIPPED
    collector = Collector("trigger")
    collector.extend(results)
    summary = collector.summary(duration_s=1.0, interrupted=True)
    out = io.StringIO()
    render_junit(summary, results, out)
    suite = suite_of(assert_valid_junit(out.getvalue()))
    cases = {c.get("classname", "").rsplit(".", 1)[1]: c for c in suite.iter("testcase")}
    kinds = {name: [child.tag for child in case] for name, case in cases.items()}
    assert kinds == {
        "ok": [],
        "missing": ["failure"],
        "reset": ["error"],
        "stopped": ["error"],
        "waited": ["error"],
        "sleepy": ["skipped"],
    }
    error = cases["reset"].find("error")
    assert error is not None
    assert error.get("type") == "effect unknown"
    assert "airfleet__r1" in (error.get("message") or "")
    assert (
        attributes(suite)
        == counted(suite)
        == {
            "tests": 6,
            "failures": 1,
            "errors": 3,
            "skipped": 1,
        }
    )


@pytest.mark.parametrize(
    ("started", "stamp"),
    [
        (datetime(2026, 11, 24, 12, 0, 5, 123456, tzinfo=UTC), "2026-11-24T12:00:05"),
        (
            datetime(2026, 11, 24, 1, 30, tzinfo=timezone(timedelta(hours=2))),
            "2026-11-23T23:30:00",
        ),
    ],
)
def test_the_timestamp_is_utc_without_a_zone(started: datetime, stamp: str) -> None:
    """The XSD's timestamp has no zone and no fraction: the run's start in UTC."""
    summary = Summary("pools", 0, 0, 0, 0, started, 0.5, 0)
    out = io.StringIO()
    render_junit(summary, [], out, hostname="ci-runner-7")
    suite = suite_of(assert_valid_junit(out.getvalue()))
    assert suite.get("timestamp") == stamp
    assert suite.get("hostname") == "ci-runner-7"


async def test_a_repeated_call_still_gets_a_testcase_of_its_own() -> None:
    """The same call twice in one plan: the second is `... #2`, never a duplicate."""
    fleet = fleet_of(["prod-eu"])
    report = await run_plan(fleet, plan_pools(fleet.deployments * 2), airflow3())
    root = assert_valid_junit(rendered("junit", report))
    assert sorted(pairs(root)) == [
        ("airfleet.pools.prod-eu", "pools"),
        ("airfleet.pools.prod-eu", "pools #2"),
    ]


async def test_every_calls_data_is_kept_in_the_suites_output() -> None:
    """The schema allows no output per testcase: each call's status and data
    (the run id) is one line of the suite's system-out, and a run id property."""
    fleet = fleet_of(["prod-eu", "prod-us"])
    report = await run_plan(
        fleet, plan_trigger(fleet.deployments, ["etl"], run_id="airfleet__r9"), airflow3()
    )
    suite = suite_of(assert_valid_junit(rendered("junit", report)))
    out = suite.findtext("system-out") or ""
    assert len(out.splitlines()) == 2
    assert all("airfleet__r9" in line for line in out.splitlines())
    properties = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert properties["run_id"] == "airfleet__r9"
    assert properties["operation"] == "trigger"


_text = st.text(max_size=12)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.builds(
            Result,
            deployment=st.text(min_size=1, max_size=12),
            operation=st.sampled_from(["trigger", "pools", "health"]),
            target=_text,
            outcome=st.sampled_from(list(Outcome)),
            status=st.one_of(st.none(), st.integers(100, 599)),
            attempts=st.integers(0, 5),
            latency_ms=st.floats(0, 1e6),
            error=st.one_of(st.none(), st.text(max_size=40)),
            data=st.fixed_dictionaries(
                {},
                optional={
                    "effect": st.just("unknown"),
                    "interrupted": st.booleans(),
                    "dag_run_id": _text,
                },
            ),
            step=st.one_of(st.none(), st.sampled_from(["load", "a.b", "step1"])),
        ),
        max_size=15,
    ),
    st.booleans(),
)
def test_any_results_make_a_valid_report_with_consistent_counts(
    results: list[Result], interrupted: bool
) -> None:
    """Whatever the names, texts and outcomes (control characters, dots, spaces):
    the report follows the XSD, its pairs are unique and its counts add up."""
    collector = Collector("trigger", started_at=datetime(2026, 11, 24, tzinfo=UTC))
    collector.extend(results)
    out = io.StringIO()
    render_junit(collector.summary(duration_s=2.0, interrupted=interrupted), results, out)
    root = assert_valid_junit(out.getvalue())
    suite = suite_of(root)
    assert attributes(suite) == counted(suite)
    assert counted(suite)["tests"] == len(results)
    assert len(set(pairs(root))) == len(results)


@pytest.mark.anyio
async def test_calls_an_interruption_never_started_are_errors() -> None:
    """A run stopped before its calls start: each is skipped with
    ``data.interrupted``, and JUnit counts it as an error, not a plain skip."""
    fleet = Fleet(
        tuple(Deployment(f"d{i}", f"http://d{i}.test", "t", api="v2") for i in range(3)),
        {"t": TokenAuth("t", Secret("stopped-token-1234"))},
    )
    transport = MockTransport(lambda request: answer(200, {"pools": [], "total_entries": 0}))
    stop = anyio.Event()
    stop.set()
    async with Engine(fleet, transport=transport) as engine:
        report = await engine.run(plan_pools(fleet.deployments), stop=stop)
    assert transport.sent == []
    assert [r.data for r in report.results] == [{"interrupted": True}] * 3
    out = io.StringIO()
    render_junit(report.summary, report.results, out)
    root = assert_valid_junit(out.getvalue())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("errors"), suite.get("skipped")) == ("3", "0")
