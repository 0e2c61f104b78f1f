"""``airfleet runs`` and ``airfleet import-errors`` on a simulated fleet with history.

Each deployment holds 300 past runs (three pages at the server's clamp of
100), mixed states, Airflow 2 and 3 side by side. What the results say is
checked against the simulator's own state, per version's own meaning of
"since", and what was sent against what it counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _cli import run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet.operations import parse_since
from airfleet.sim import Simulator
from airfleet.sim.state import HISTORY_UNTIL, DagRun

TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/opt/airflow/dags/broken.py", line 2, in <module>\n'
    "    import not_a_module\n"
    "ModuleNotFoundError: No module named 'not_a_module'\n"
)
SINCE = HISTORY_UNTIL - timedelta(hours=20)


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    simulator = Simulator(
        deployments=4,
        api="mixed",
        seed=23,
        run_history=300,
        import_errors={"dep-0002": [("broken.py", TRACE)], "dep-0003": [("old.py", "SyntaxError")]},
    )
    with sim_in_thread(simulator) as running:
        yield running


@pytest.fixture
def fleet(sim: SimThread, tmp_path: Path) -> Path:
    return sim.write_fleet(tmp_path / "fleet.yaml", auth="token", api="declared")


def _cli(sim: SimThread, fleet: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    out = run_airfleet("-c", str(fleet), *args, "--report", "json", env=sim.sim.env())
    return out.returncode, json.loads(out.stdout) if out.stdout.strip() else {}, out.stderr


def _past(sim: SimThread, name: str) -> list[DagRun]:
    dep = sim.sim.deployments[name]
    return [run for runs in dep.runs.values() for run in runs.values() if run.past]


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_every_page_of_every_dag_newest_first(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    code, report, _ = _cli(sim, fleet, "runs")
    assert code == 0
    for result in report["results"]:
        runs = result["data"]["runs"]
        past = _past(sim, result["deployment"])
        assert len(runs) == len(past) == 300
        assert len({(r["dag_id"], r["dag_run_id"]) for r in runs}) == 300
        started = [r["start_date"] for r in runs if r["start_date"]]
        assert started == sorted(started, reverse=True)
        assert result["data"]["by_state"] == {
            state: sum(1 for r in past if r.forced == state)
            for state in sorted({r.forced for r in past if r.forced})
        }
        assert {r["run_type"] for r in runs} <= {"scheduled", "manual"}
        assert all(r["start_date"] is None or r["start_date"].endswith("Z") for r in runs)
    # Three pages each: the first, then the other two at once.
    assert sim.stats()["requests_by_endpoint"]["list_runs"] == 4 * 3


def test_state_and_since_in_each_version_s_own_form(sim: SimThread, fleet: Path) -> None:
    # Queued runs never started: Airflow 2 leaves them out of a start-date
    # filter, and Airflow 3 takes a missing start date for now, so only its
    # run_after filter keeps an old queued run out.
    code, report, _ = _cli(
        sim, fleet, "runs", "--state", "failed", "--state", "queued", "--since", _utc(SINCE)
    )
    assert code == 0
    for result in report["results"]:
        name = result["deployment"]
        past = [r for r in _past(sim, name) if r.forced in ("failed", "queued")]
        if sim.sim.api_of(name) == "v1":
            # Airflow 2: started since then (a run never started is left out).
            want = {r.dag_run_id for r in past if r.started is not None and r.started >= SINCE}
        else:
            # Airflow 3: due to run since then.
            want = {r.dag_run_id for r in past if (r.run_after or r.queued_at) >= SINCE}
        got = {r["dag_run_id"] for r in result["data"]["runs"]}
        assert got == want, name
        assert want  # the filter selects some, not none


def test_limit_keeps_the_newest_and_stops_reading(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    code, report, _ = _cli(sim, fleet, "runs", "example_etl", "--limit", "5", "--state", "success")
    assert code == 0
    for result in report["results"]:
        runs = result["data"]["runs"]
        assert len(runs) == 5
        assert {r["dag_id"] for r in runs} == {"example_etl"}
        newest = sorted(
            (r for r in _past(sim, result["deployment"])
             if r.dag_id == "example_etl" and r.forced == "success"),
            key=lambda r: r.started or r.queued_at,
            reverse=True,
        )[:5]  # fmt: skip
        assert [r["dag_run_id"] for r in runs] == [r.dag_run_id for r in newest]
    assert sim.stats()["requests_by_endpoint"]["list_runs"] == 4  # one page was enough

    sim.sim.reset_stats()
    code, report, _ = _cli(sim, fleet, "runs", "--limit", "1000")
    assert code == 0
    assert all(len(r["data"]["runs"]) == 300 for r in report["results"])
    assert sim.stats()["requests_by_endpoint"]["list_runs"] == 4 * 3  # to the end, no further


def test_runs_table_and_markdown_count_by_state(sim: SimThread, fleet: Path) -> None:
    for fmt in ("table", "markdown"):
        out = run_airfleet(
            "-c", str(fleet), "runs", "--state", "failed", "--report", fmt, env=sim.sim.env()
        )
        assert out.returncode == 0, out.stderr
        assert "failed " in out.stdout
        assert "dep-0003" in out.stdout


def test_bad_runs_input_is_exit_2_and_nothing_sent(sim: SimThread, fleet: Path) -> None:
    sim.sim.reset_stats()
    for args, message in (
        (("--since", "yesterday"), "give a duration back from now"),
        (("--state", "done"), "Invalid value for '--state'"),
        (("--limit", "0"), "Invalid value for '--limit'"),
        (("etl", "etl"), "given twice"),
    ):
        code, _, err = _cli(sim, fleet, "runs", *args)
        assert code == 2, args
        assert message in err
    assert sim.stats()["requests_total"] == 0


def test_import_errors_exit_1_and_list_each_file(sim: SimThread, fleet: Path) -> None:
    code, report, _ = _cli(sim, fleet, "import-errors")
    assert code == 1
    results = {r["deployment"]: r for r in report["results"]}
    assert results["dep-0000"]["outcome"] == "ok"
    assert results["dep-0000"]["data"]["import_errors"] == []
    (broken,) = results["dep-0002"]["data"]["import_errors"]
    assert results["dep-0002"]["outcome"] == "failed"
    assert broken["filename"] == "broken.py"
    assert broken["message"] == "ModuleNotFoundError: No module named 'not_a_module'"
    assert broken["stack_trace"] == TRACE
    assert broken["timestamp"].endswith("Z")
    assert "1 import error(s): broken.py" in results["dep-0002"]["error"]
    (old,) = results["dep-0003"]["data"]["import_errors"]
    assert old["message"] == "SyntaxError"

    code, _, _ = _cli(sim, fleet, "import-errors", "-s", "name:dep-0000,name:dep-0001")
    assert code == 0  # none there


def test_import_errors_table_shows_the_exception_line(sim: SimThread, fleet: Path) -> None:
    out = run_airfleet("-c", str(fleet), "import-errors", "--report", "csv", env=sim.sim.env())
    assert out.returncode == 1
    assert "ModuleNotFoundError: No module named 'not_a_module'" in out.stdout
    assert "Traceback" not in out.stdout  # the whole trace is for json


def test_the_three_reads_as_job_steps(sim: SimThread, fleet: Path, tmp_path: Path) -> None:
    job = tmp_path / "morning.job.yaml"
    job.write_text(
        "version: 1\nname: morning\nfleet: fleet.yaml\nsteps:\n"
        "  - runs: {states: [failed], since: 24h, continue_on_failure: true}\n"
        "  - api: {path: /version}\n"
        "  - import_errors: {select: ['name:dep-0000']}\n",
        encoding="utf-8",
    )
    out = run_airfleet(
        "run", str(job), "--state-dir", str(tmp_path / "state"), "--report", "json",
        env=sim.sim.env(),
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    steps = {(r["step"], r["deployment"]): r for r in report["results"]}
    assert len(steps) == 4 + 4 + 1
    assert steps[("step2", "dep-0001")]["data"]["version"] == "2.11.2"
    # The history ends days ago: nothing in the last 24 h.
    assert all(steps[("step1", n)]["data"]["runs"] == [] for n in sim.sim.names)


def test_a_bad_read_step_is_a_config_error_at_its_line(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(
        "version: 1\nauth: {t: {kind: token, token: x}}\n"
        "deployments: [{name: a, url: 'http://127.0.0.1:1'}]\n",
        encoding="utf-8",
    )
    for step, message in (
        ("api: {path: /api/v2/dags}", "leave out the API prefix"),
        ("runs: {since: soon}", "give a duration back from now"),
        ("runs: {states: [done]}", "states"),
    ):
        job = tmp_path / "bad.job.yaml"
        job.write_text(
            f"version: 1\nname: bad\nfleet: fleet.yaml\nsteps:\n  - {step}\n", encoding="utf-8"
        )
        out = run_airfleet("run", str(job), "--state-dir", str(tmp_path / "state"))
        assert out.returncode == 2, step
        assert "bad.job.yaml:5" in out.stderr
        assert message in out.stderr


def test_since_reads_durations_and_dates() -> None:
    now = datetime(2026, 12, 1, 12, 0, 30, 123456, tzinfo=HISTORY_UNTIL.tzinfo)
    assert parse_since("24h", now=now) == "2026-11-30T12:00:30Z"
    assert parse_since("30m", now=now) == "2026-12-01T11:30:30Z"
    assert parse_since("1w", now=now) == "2026-11-24T12:00:30Z"
    assert parse_since("2026-11-30T00:00Z") == "2026-11-30T00:00:00Z"
    assert parse_since("2026-11-30T01:00+01:00") == "2026-11-30T00:00:00Z"
    assert parse_since("2026-11-30") == "2026-11-30T00:00:00Z"  # no zone: UTC


def test_dry_run_shows_each_version_s_first_page_and_sends_nothing(
    sim: SimThread, fleet: Path
) -> None:
    sim.sim.reset_stats()
    code, plan, _ = _cli(sim, fleet, "runs", "--state", "failed", "--since", "24h", "--dry-run")
    assert code == 0
    paths = {r["deployment"]: r["path"] for r in plan["requests"]}
    assert paths["dep-0000"].startswith("/api/v2/dags/~/dagRuns?limit=100&offset=0")
    assert "order_by=-run_after&state=failed&run_after_gte=" in paths["dep-0000"]
    assert "order_by=-start_date&state=failed&start_date_gte=" in paths["dep-0001"]
    code, plan, _ = _cli(sim, fleet, "import-errors", "--dry-run")
    assert code == 0
    assert {r["path"] for r in plan["requests"]} == {
        "/api/v1/importErrors?limit=100&offset=0",
        "/api/v2/importErrors?limit=100&offset=0",
    }
    assert sim.stats()["requests_total"] == 0
