"""Scheduled jobs: job files, windows, the journal, the lock, `airfleet run` and `history`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from _cli import run_airfleet
from _reports import assert_valid_junit
from _simthread import SimThread, sim_in_thread
from airfleet.errors import ConfigError, UsageError
from airfleet.jobs.journal import Journal, read_run, read_runs
from airfleet.jobs.lock import JobLock, lock_holder
from airfleet.jobs.runner import find_resumable
from airfleet.jobs.spec import TriggerOptions, load_job, parse_job
from airfleet.jobs.windows import parse_window, window_label, window_start
from airfleet.results import Outcome, Result
from airfleet.sim import Faults, Simulator

ROOT = Path(__file__).resolve().parent.parent


airfleet = run_airfleet


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    simulator = Simulator(deployments=8, api="mixed", seed=3, faults=Faults(latency_ms=1))
    with sim_in_thread(simulator) as running:
        yield running


@pytest.fixture
def fleet(sim: SimThread, tmp_path: Path) -> Path:
    return sim.write_fleet(
        tmp_path / "fleet.yaml", extra_defaults={"max_per_second": None, "max_in_flight": 4}
    )


def write_job(tmp_path: Path, body: str, name: str = "job.yaml") -> Path:
    path = tmp_path / name
    path.write_text(body, encoding="utf-8")
    return path


def run_job(
    sim: SimThread, job: Path, state: Path, *extra: str
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = airfleet(
        "run", str(job), "--state-dir", str(state), "--report", "json", *extra, env=sim.sim.env()
    )
    report: dict[str, Any] = json.loads(out.stdout) if out.stdout.strip() else {}
    return out, report


def runs_with(sim: SimThread, prefix: str) -> list[str]:
    """Every run id on the server that starts with ``prefix``, one entry per run made."""
    stats = sim.stats()
    return [
        run_id
        for per_dag in stats["run_ids"].values()
        for ids in per_dag.values()
        for run_id in ids
        if run_id.startswith(prefix)
    ]


# -- job files -----------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "jobs").glob("*.yaml")), ids=str)
def test_every_example_job_file_validates(path: Path) -> None:
    """Each file in configs/jobs/ loads and validates, pool specs included."""
    job = load_job(path)
    assert job.steps
    assert job.name


def test_job_file_full_form_becomes_value_objects(tmp_path: Path) -> None:
    """Options land in frozen value objects; step ids default to step<N>; paths are relative."""
    (tmp_path / "fleet.yaml").write_text("version: 1\n", encoding="utf-8")
    job = parse_job(
        """\
version: 1
name: nightly
fleet: fleet.yaml
select: tag:prod
window: daily
steps:
  - trigger:
      id: load
      dags: [a, b]
      conf: {full: true}
      wait: true
      timeout_s: 60
      limits: {max_in_flight: 2}
  - health:
  - pause: {dags: [a], continue_on_failure: true, select: [tag:eu, 'name:x-*']}
""",
        source="job.yaml",
        base=tmp_path,
    )
    assert job.fleet == str(tmp_path / "fleet.yaml")
    assert job.select == ("tag:prod",)
    assert job.span == timedelta(days=1)
    assert [s.id for s in job.steps] == ["load", "step2", "step3"]
    trigger = job.steps[0].options
    assert isinstance(trigger, TriggerOptions)
    assert trigger.dags == ("a", "b")
    assert trigger.wait is True
    assert job.steps[0].limits is not None
    assert job.steps[0].limits.max_in_flight == 2
    assert job.steps[2].continue_on_failure is True
    assert job.steps[2].select == ("tag:eu", "name:x-*")


BAD_JOBS = [
    (
        "version: 1\nname: j\nsteps:\n  - trigerr: {dags: [a]}\n",
        "job.yaml:4: steps[0].trigerr: unknown step kind 'trigerr' (did you mean 'trigger'?)",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - trigger:\n      dags: [a]\n      wiat: true\n",
        "job.yaml:6: steps[0].trigger.wiat: unknown key 'wiat' (did you mean 'wait'?)",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - pause: {}\n",
        "job.yaml:4: steps[0].pause.dags: is required",
    ),
    (
        "version: 1\nname: j\nwindow: monthly\nsteps:\n  - health: {}\n",
        "job.yaml:3: window: window 'monthly' is not hourly, daily or an ISO-8601 duration",
    ),
    (
        "version: 1\nname: j\nsteps: []\n",
        "job.yaml:3: steps: List should have at least 1 item",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - trigger:\n    dags: [a]\n",
        "job.yaml:4: steps[0]: a step has exactly one key, its kind",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - health: {id: a}\n  - health: {id: a}\n",
        "job.yaml:5: steps[1]: step id 'a' is used twice",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - trigger: {dags: [a], conf: {day: 2026-11-24}}\n",
        "job.yaml:4: steps[0].trigger.conf: must be plain JSON",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - health: {select: 'color:red'}\n",
        "job.yaml:4: steps[0].health.select: unknown selector kind 'color'",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - audit_pools: {spec: nope.yaml}\n",
        "job.yaml:4: steps[0].audit_pools.spec: pool spec",
    ),
    (
        "version: 1\nname: ../etc\nsteps:\n  - health: {}\n",
        "job.yaml:2: name: '../etc': use letters, digits",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - trigger: {dags: [a, a]}\n",
        "job.yaml:4: steps[0].trigger.dags: 'a' is listed twice",
    ),
    (
        "version: 1\nname: j\nsteps:\n  - health: {limits: {max_in_fligth: 2}}\n",
        "steps[0].health.limits.max_in_fligth: unknown key 'max_in_fligth' (did you mean",
    ),
    ("version: 1\nnmae: j\nsteps:\n  - health: {}\n", "job.yaml:2: nmae: unknown key 'nmae'"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_JOBS)
def test_bad_job_file_is_one_located_error(tmp_path: Path, text: str, expected: str) -> None:
    """Every mistake names file:line and the key, with a hint where one helps."""
    with pytest.raises(ConfigError) as caught:
        parse_job(text, source="job.yaml", base=tmp_path)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


def test_bad_job_file_exits_2_with_one_line_and_sends_nothing(
    sim: SimThread, tmp_path: Path
) -> None:
    """`airfleet run` on an invalid job: exit 2, a single stderr line, no request made."""
    job = write_job(tmp_path, "version: 1\nname: j\nsteps:\n  - trigerr: {dags: [hello]}\n")
    before = sim.stats()["requests_total"]
    out, _ = run_job(sim, job, tmp_path / "state")
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0
    assert "job.yaml:4:" in out.stderr
    assert "did you mean 'trigger'" in out.stderr
    assert "Traceback" not in out.stderr
    assert sim.stats()["requests_total"] == before
    assert not (tmp_path / "state").exists()


def test_selection_matching_nothing_is_exit_2_at_the_step(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """A step whose selection matches no deployment stops the job before anything is sent."""
    job = write_job(
        tmp_path,
        "version: 1\nname: nosel\nfleet: fleet.yaml\nsteps:\n"
        "  - health: {}\n  - pause: {dags: [hello], select: tag:nowhere}\n",
    )
    before = sim.stats()["requests_total"]
    out, _ = run_job(sim, job, tmp_path / "state")
    assert out.returncode == 2
    assert "job.yaml:6: step 2 (pause): selection 'tag:nowhere' matches no deployment" in out.stderr
    assert sim.stats()["requests_total"] == before


# -- windows -------------------------------------------------------------------------


def test_windows_parse_and_align() -> None:
    """Named and ISO-8601 windows; starts aligned in UTC (weeks on Mondays); labels."""
    assert parse_window("hourly") == timedelta(hours=1)
    assert parse_window("PT6H") == timedelta(hours=6)
    assert parse_window("P1W") == timedelta(weeks=1)
    assert parse_window("P1DT12H") == timedelta(days=1, hours=12)
    for bad in ("P", "PT", "P1M", "P1Y", "PT30S", "daily ", "6h"):
        with pytest.raises(ValueError, match="window"):
            parse_window(bad)
    now = datetime(2026, 11, 25, 13, 47, 5, tzinfo=UTC)
    assert window_start(now, timedelta(days=1)) == datetime(2026, 11, 25, tzinfo=UTC)
    assert window_start(now, timedelta(hours=6)) == datetime(2026, 11, 25, 12, tzinfo=UTC)
    assert window_start(now, timedelta(weeks=1)).weekday() == 0
    assert window_label(datetime(2026, 11, 24, tzinfo=UTC), timedelta(days=1)) == "2026-11-24"
    assert (
        window_label(datetime(2026, 11, 24, 6, tzinfo=UTC), timedelta(hours=6))
        == "2026-11-24T06:00:00Z"
    )


# -- journal and lock ----------------------------------------------------------------


def _result(target: str, outcome: Outcome = Outcome.OK) -> Result:
    return Result("dep-0000", "trigger", target, outcome, status=200, data={"dag_run_id": "r"})


def test_journal_tolerates_a_torn_last_line_and_resumes_on_a_new_line(tmp_path: Path) -> None:
    """A crash mid-write leaves half a line: it is ignored, and the next record is intact."""
    path = tmp_path / "run.jsonl"
    journal = Journal(path, {"started_at": "x", "planned": 3}, resume=False)
    journal.record(1, _result("a"))
    journal.close()
    with open(path, "a", encoding="utf-8") as file:
        file.write('{"type": "call", "step": 1, "key": "dep-0000|trigger|b", "res')
    run = read_run(path)
    assert run is not None
    assert set(run.done(1)) == {"dep-0000|trigger|a"}
    assert run.status == "killed"
    resumed = Journal(path, {"pid": 1}, resume=True)
    resumed.record(1, _result("b"))
    resumed.record(1, _result("c", Outcome.FAILED))
    resumed.finish({"interrupted": False})
    resumed.close()
    run = read_run(path)
    assert run is not None
    assert set(run.done(1)) == {"dep-0000|trigger|a", "dep-0000|trigger|b"}
    assert run.resumes == 1
    assert run.counts() == {"ok": 2, "failed": 1, "skipped": 0, "missing": 0}
    assert run.finished
    assert not run.complete
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    """Two holders of one job lock: the second gets a UsageError naming pid and host."""
    path = tmp_path / "lock"
    with JobLock(path, "nightly"):
        holder = lock_holder(path)
        assert holder is not None
        assert holder["pid"] == os.getpid()
        with pytest.raises(UsageError, match=rf"already running \(pid {os.getpid()} on "):
            JobLock(path, "nightly").__enter__()
    assert lock_holder(path) is None


def test_lock_of_a_killed_process_is_not_stale(tmp_path: Path) -> None:
    """SIGKILL the holder: the kernel drops its flock, so the next run takes the lock."""
    path = tmp_path / "lock"
    code = (
        "import sys, time; from pathlib import Path; from airfleet.jobs.lock import JobLock\n"
        f"lock = JobLock(Path({str(path)!r}), 'j').__enter__()\n"
        "print('held', flush=True); time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "held"
        holder = lock_holder(path)
        assert holder is not None
        assert holder["pid"] == proc.pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert lock_holder(path) is None
    with JobLock(path, "j"):
        pass


def test_concurrent_run_is_refused_with_exit_2(sim: SimThread, fleet: Path, tmp_path: Path) -> None:
    """While one run holds the job's lock, another exits 2 naming the holder; nothing is sent."""
    job = write_job(tmp_path, "version: 1\nname: busy\nfleet: fleet.yaml\nsteps:\n  - health: {}\n")
    state = tmp_path / "state"
    before = sim.stats()["requests_total"]
    with JobLock(state / "busy" / "lock", "busy"):
        out, _ = run_job(sim, job, state)
    assert out.returncode == 2
    assert f"job 'busy' is already running (pid {os.getpid()}" in out.stderr
    assert "Traceback" not in out.stderr
    assert sim.stats()["requests_total"] == before
    assert not list((state / "busy").glob("*.jsonl"))


# -- running jobs against the simulator ------------------------------------------------------


def test_windowed_job_run_twice_triggers_once(sim: SimThread, fleet: Path, tmp_path: Path) -> None:
    """Same window, second run: every trigger answers 409 -> ok, already_existed; no new run."""
    job = write_job(
        tmp_path,
        "version: 1\nname: win-twice\nfleet: fleet.yaml\nwindow: P3650D\nsteps:\n"
        "  - trigger: {id: load, dags: [refresh_dims, nightly_load], conf: {full: true}}\n"
        "  - unpause: {dags: [hello]}\n",
    )
    state = tmp_path / "state"
    first, report = run_job(sim, job, state)
    assert first.returncode == 0, first.stderr
    assert report["summary"]["operation"] == "job"
    assert report["summary"]["ok"] == 8 * 2 + 8
    assert {r["operation"] for r in report["results"]} == {"trigger", "unpause"}
    start = window_start(datetime.now(UTC), timedelta(days=3650))
    run_id = f"airfleet__win-twice__{start:%Y-%m-%d}__load"
    assert {r["data"]["dag_run_id"] for r in report["results"] if r["operation"] == "trigger"} == {
        run_id
    }
    assert len(runs_with(sim, run_id)) == 16
    refused = sim.stats()["duplicates_refused"]

    second, again = run_job(sim, job, state)
    assert second.returncode == 0, second.stderr
    triggers = [r for r in again["results"] if r["operation"] == "trigger"]
    assert len(triggers) == 16
    assert all(r["outcome"] == "ok" and r["status"] == 409 for r in triggers)
    assert all(r["data"]["already_existed"] is True for r in triggers)
    assert len(runs_with(sim, run_id)) == 16
    assert sim.stats()["duplicates_refused"] == refused + 16
    assert [r.status for r in read_runs(state / "win-twice")] == ["finished", "finished"]


def test_job_without_window_makes_fresh_run_ids_per_invocation(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """No window: each invocation triggers anew, with its own airfleet__<job>__... id."""
    job = write_job(
        tmp_path,
        "version: 1\nname: nowin\nfleet: fleet.yaml\nselect: tag:v2\nsteps:\n"
        "  - trigger: {dags: [hello]}\n",
    )
    ids = set()
    for _ in range(2):
        out, report = run_job(sim, job, tmp_path / "state")
        assert out.returncode == 0, out.stderr
        ids |= {r["data"]["dag_run_id"] for r in report["results"]}
        assert not any(r["data"].get("already_existed") for r in report["results"])
    assert len(ids) == 2
    assert all(i.startswith("airfleet__nowin__") and i.endswith("__step1") for i in ids)
    assert len(runs_with(sim, "airfleet__nowin__")) == 2 * 4


def test_failed_step_stops_the_job_and_skips_later_calls(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """A failing step: later calls are skipped with a reason, exit 1, nothing sent for them."""
    job = write_job(
        tmp_path,
        "version: 1\nname: stops\nfleet: fleet.yaml\nselect: 'name:dep-000[0-3]'\nsteps:\n"
        "  - trigger: {dags: [no_such_dag]}\n"
        "  - pause: {dags: [hello]}\n",
    )
    before = sim.stats()["requests_by_endpoint"]
    out, report = run_job(sim, job, tmp_path / "state")
    assert out.returncode == 1
    pauses = [r for r in report["results"] if r["operation"] == "pause"]
    assert len(pauses) == 4
    assert all(r["outcome"] == "skipped" for r in pauses)
    assert "not run: step 1 (trigger) failed (4 of 4 calls)" in pauses[0]["error"]
    after = sim.stats()["requests_by_endpoint"]
    assert {k: v for k, v in after.items() if "PATCH" in k} == {
        k: v for k, v in before.items() if "PATCH" in k
    }


def test_continue_on_failure_goes_on(sim: SimThread, fleet: Path, tmp_path: Path) -> None:
    """continue_on_failure: true on the failing step lets the next one run."""
    job = write_job(
        tmp_path,
        "version: 1\nname: goes-on\nfleet: fleet.yaml\nselect: 'name:dep-000[0-1]'\nsteps:\n"
        "  - trigger: {dags: [no_such_dag], continue_on_failure: true}\n"
        "  - unpause: {dags: [hello]}\n",
    )
    out, report = run_job(sim, job, tmp_path / "state")
    assert out.returncode == 1
    outcomes = {(r["operation"], r["outcome"]) for r in report["results"]}
    assert outcomes == {("trigger", "failed"), ("unpause", "ok")}


def run_with_step_limits(tmp_path: Path, steps: str) -> tuple[Any, dict[str, Any], Any]:
    """Run a job of ``steps`` on six slow deployments allowing 4 in flight each."""
    simulator = Simulator(deployments=6, api="v2", faults=Faults(latency_ms=20))
    with sim_in_thread(simulator) as own:
        own.write_fleet(
            tmp_path / "fleet.yaml", extra_defaults={"max_per_second": None, "max_in_flight": 4}
        )
        job = write_job(tmp_path, "version: 1\nname: shared\nfleet: fleet.yaml\nsteps:\n" + steps)
        out, report = run_job(own, job, tmp_path / "state")
        return out, report, own.stats()


def test_step_limits_apply_to_that_step(tmp_path: Path) -> None:
    """A step's limits (max_in_flight: 1) hold on the server for that step's calls."""
    out, report, stats = run_with_step_limits(
        tmp_path, "  - trigger: {dags: [hello, refresh_dims], limits: {max_in_flight: 1}}\n"
    )
    assert out.returncode == 0, out.stderr
    assert report["summary"]["ok"] == 12
    assert stats["max_in_flight"] == 1


def test_a_step_with_its_own_limits_shares_the_jobs_token(tmp_path: Path) -> None:
    """Two steps, the second with limits: one OAuth token for the job, the limits still hold."""
    # The first step is one call, so all the server sees in flight beyond
    # one request at a time is the second step's doing.
    out, report, stats = run_with_step_limits(
        tmp_path,
        "  - trigger: {dags: [hello], select: 'name:dep-0000'}\n"
        "  - trigger: {dags: [hello, refresh_dims], limits: {max_in_flight: 2}}\n",
    )
    state = tmp_path / "state"
    assert out.returncode == 0, out.stderr
    assert report["summary"]["ok"] == 1 + 12
    assert stats["token_fetches"]["oauth"] == 1
    assert report["summary"]["token_fetches"] == 1
    assert stats["max_in_flight"] == 2
    assert report["summary"]["requests"] == stats["requests_seen"]
    records = [
        json.loads(line)
        for path in (state / "shared").glob("*.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    ]
    # The journal's format is what `history` and --resume read back.
    header, end = records[0], records[-1]
    assert list(header) == [
        *("type", "job", "job_file", "fleet", "window", "window_start", "started_at", "pid"),
        *("fingerprint", "run_ids", "planned", "steps"),
    ]
    assert header["planned"] == 13
    assert [s["calls"] for s in header["steps"]] == [1, 12]
    assert list(end) == ["type", "at", "ok", "failed", "skipped", "interrupted", "duration_s"]
    assert (end["ok"], end["failed"], end["skipped"], end["interrupted"]) == (13, 0, 0, False)


def test_audit_step_with_apply_fixes_pools_then_finds_nothing(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """audit_pools with apply creates the missing pool; the next run sees no drift."""
    (tmp_path / "pools.yaml").write_text(
        "version: 1\npools:\n  jobs_pool: {slots: 3}\n", encoding="utf-8"
    )
    job = write_job(
        tmp_path,
        "version: 1\nname: pools\nfleet: fleet.yaml\nselect: 'name:dep-000[4-5]'\nsteps:\n"
        "  - audit_pools: {spec: pools.yaml, apply: true}\n",
    )
    out, report = run_job(sim, job, tmp_path / "state")
    assert out.returncode == 0, out.stderr
    assert all(r["data"]["applied"] for r in report["results"])
    pools = sim.stats()["pools"]
    assert pools["dep-0004"]["jobs_pool"]["slots"] == 3
    out, report = run_job(sim, job, tmp_path / "state")
    assert out.returncode == 0, out.stderr
    assert all(r["data"]["drift"] == [] for r in report["results"])


def test_history_lists_runs_and_job_reports_in_any_format(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """history shows each run's window, status and counts; -o/--report work for jobs."""
    job = write_job(
        tmp_path,
        "version: 1\nname: hist\nfleet: fleet.yaml\nwindow: hourly\nsteps:\n"
        "  - health: {}\n  - unpause: {dags: [hello], select: tag:prod}\n",
    )
    state = tmp_path / "state"
    junit = tmp_path / "job.xml"
    out = airfleet("run", str(job), "--state-dir", str(state), "-o", str(junit), env=sim.sim.env())
    assert out.returncode == 0, out.stderr
    assert junit.read_text(encoding="utf-8").count("<testcase") == 8 + 3
    assert_valid_junit(junit.read_text(encoding="utf-8"))
    out = airfleet(
        "run",
        str(job),
        "--report",
        "jsonl",
        env={"AIRFLEET_STATE_DIR": str(state), **sim.sim.env()},
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 8 + 3 + 1
    assert lines[-1]["summary"]["operation"] == "job"

    shown = airfleet("history", str(job), "--state-dir", str(state), "--report", "json")
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["job"] == "hist"
    assert len(data["runs"]) == 2
    for row in data["runs"]:
        assert row["status"] == "finished"
        assert (row["ok"], row["failed"], row["skipped"], row["missing"]) == (11, 0, 0, 0)
        assert row["window"] == "hourly"
        assert row["window_start"].endswith(":00:00+00:00")
    table = airfleet("history", "hist", "--state-dir", str(state), "--report", "table")
    assert "finished" in table.stdout
    assert "job hist: 2 run(s)" in table.stdout


def test_history_of_an_unknown_job_is_exit_2_naming_the_known_ones(tmp_path: Path) -> None:
    """A job name nothing has run under: exit 2, one line listing the jobs that have run."""
    state = tmp_path / "state"
    for name in ("nightly-refresh", "pools-every-6h"):
        header = {"started_at": "2026-11-24T02:00:00+00:00", "planned": 0, "window_start": None}
        Journal(state / name / "r.jsonl", header, resume=False).close()
    (state / "only-a-lock").mkdir()  # a run refused before its journal: not a known job
    typo = airfleet("history", "nightly-refrsh", "--state-dir", str(state))
    assert typo.returncode == 2
    (line,) = typo.stderr.strip().splitlines()
    assert line == (
        f"airfleet: error: no job 'nightly-refrsh' has run with state dir {state} "
        "(did you mean 'nightly-refresh'?); known jobs: nightly-refresh, pools-every-6h"
    )
    assert typo.stdout == ""
    nowhere = airfleet("history", "nightly-refresh", "--state-dir", str(tmp_path / "empty"))
    assert nowhere.returncode == 2
    assert "no job has run with state dir" in nowhere.stderr
    assert "--state-dir" in nowhere.stderr
    # A job file is a known job, run or not: no runs yet is an answer, not an error.
    job = write_job(tmp_path, "version: 1\nname: fresh\nsteps:\n  - health: {}\n")
    fresh = airfleet("history", str(job), "--state-dir", str(state), "--report", "json")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads(fresh.stdout)["runs"] == []


CRON_PAIR = (
    "version: 1\nname: cron-pair\nfleet: fleet.yaml\nwindow: daily\nsteps:\n"
    "  - health: {}\n  - unpause: {dags: [hello]}\n  - trigger: {id: load, dags: [refresh_dims]}\n"
)


def test_resume_after_a_run_that_finished_all_ok_sends_nothing(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """The README's cron pair, a run then a --resume: the second sends nothing, says
    so, exits 0 and reports the run's calls from its journal, in every form."""
    job = write_job(tmp_path, CRON_PAIR)
    state = tmp_path / "state"
    first, _ = run_job(sim, job, state)
    assert first.returncode == 0, first.stderr
    before = sim.stats()

    out, report = run_job(sim, job, state, "--resume")
    assert out.returncode == 0, out.stderr
    assert "finished with all 24 calls ok; nothing to resume, nothing sent" in out.stderr
    assert report["summary"]["ok"] == 24
    assert report["summary"]["requests"] == 0
    assert all(r["data"]["from_journal"] is True for r in report["results"])
    assert {r["step"] for r in report["results"]} == {"step1", "step2", "load"}
    junit = tmp_path / "resume.xml"
    again = airfleet(
        *("run", str(job), "--state-dir", str(state), "--resume", "-o", str(junit)),
        env=sim.sim.env(),
    )
    assert again.returncode == 0, again.stderr
    assert junit.read_text(encoding="utf-8").count("<testcase") == 24
    assert_valid_junit(junit.read_text(encoding="utf-8"))
    dry, plan = run_job(sim, job, state, "--resume", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert plan["requests"] == []

    after = sim.stats()
    assert after["requests_total"] == before["requests_total"]
    assert after["token_fetches"]["total"] == before["token_fetches"]["total"]
    (run,) = read_runs(state / "cron-pair")  # no new run, and none taken up
    assert (run.status, run.resumes) == ("finished", 0)


def test_resume_after_the_fleet_grew_sends_only_the_new_deployments_calls(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """A finished run, then a deployment added to the fleet: --resume does its calls
    alone; the others are taken from the journal and sent nothing."""
    full = fleet.read_text(encoding="utf-8")
    kept = full.split("- name: dep-0007")[0]
    fleet.write_text(kept, encoding="utf-8")
    job = write_job(tmp_path, CRON_PAIR.replace("cron-pair", "grown"))
    state = tmp_path / "state"
    first, _ = run_job(sim, job, state)
    assert first.returncode == 0, first.stderr
    fleet.write_text(full, encoding="utf-8")
    before = sim.stats()["requests_by_deployment"]

    out, report = run_job(sim, job, state, "--resume")
    assert out.returncode == 0, out.stderr
    assert "21 of 24 calls already done" in out.stderr
    fresh = [r for r in report["results"] if not r["data"].get("from_journal")]
    assert {r["deployment"] for r in fresh} == {"dep-0007"}
    assert len(fresh) == 3
    after = sim.stats()["requests_by_deployment"]
    assert {n: c for n, c in after.items() if after[n] != before.get(n)}.keys() == {"dep-0007"}


def test_resume_of_a_finished_run_whose_steps_changed_is_refused(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """Edited after a run that finished all ok: --resume cannot say what is left,
    so it exits 2 saying to run without it, and sends nothing."""
    job = write_job(tmp_path, CRON_PAIR.replace("cron-pair", "edited"))
    state = tmp_path / "state"
    first, _ = run_job(sim, job, state)
    assert first.returncode == 0, first.stderr
    job.write_text(CRON_PAIR.replace("cron-pair", "edited").replace("[hello]", "[other]"))
    before = sim.stats()["requests_total"]
    out, _ = run_job(sim, job, state, "--resume")
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "the steps of job 'edited' changed since it started" in line
    assert "run without --resume" in line
    assert sim.stats()["requests_total"] == before


def test_journal_and_report_hold_no_secret(sim: SimThread, fleet: Path, tmp_path: Path) -> None:
    """The journal and the report never hold the fleet's client secret, token or password."""
    job = write_job(
        tmp_path,
        "version: 1\nname: quiet\nfleet: fleet.yaml\nsteps:\n  - trigger: {dags: [hello]}\n",
    )
    state = tmp_path / "state"
    out, _ = run_job(sim, job, state)
    assert out.returncode == 0, out.stderr
    text = "".join(p.read_text(encoding="utf-8") for p in (state / "quiet").glob("*.jsonl"))
    text += out.stdout + out.stderr
    assert text
    for secret in sim.sim.env().values():
        assert secret not in text


def test_dry_run_prints_every_step_and_sends_nothing(
    sim: SimThread, fleet: Path, tmp_path: Path
) -> None:
    """run --dry-run: the requests of every step with their run ids; no request, no journal."""
    job = write_job(
        tmp_path,
        "version: 1\nname: dry\nfleet: fleet.yaml\nwindow: daily\nsteps:\n"
        "  - trigger: {id: load, dags: [hello], conf: {a: 1}}\n"
        "  - pause: {dags: [hello], select: tag:prod}\n  - health: {}\n",
    )
    before = sim.stats()["requests_total"]
    out, plan = run_job(sim, job, tmp_path / "state", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert plan["dry_run"] is True
    assert plan["operation"] == "job dry"
    methods = [r["method"] for r in plan["requests"]]
    assert methods == ["POST"] * 8 + ["PATCH"] * 3
    start = window_start(datetime.now(UTC), timedelta(days=1))
    assert plan["requests"][0]["body"]["dag_run_id"] == f"airfleet__dry__{start:%Y-%m-%d}__load"
    assert sim.stats()["requests_total"] == before
    assert not (tmp_path / "state").exists()


def test_resume_is_refused_when_the_steps_changed(tmp_path: Path) -> None:
    """A killed run of an edited job is not resumed: its journal describes other steps."""
    old = parse_job("version: 1\nname: j\nsteps:\n  - trigger: {dags: [a]}\n", base=tmp_path)
    new = parse_job("version: 1\nname: j\nsteps:\n  - trigger: {dags: [b]}\n", base=tmp_path)
    header = {"started_at": "t", "planned": 1, "window_start": None}
    Journal(tmp_path / "r.jsonl", {**header, "fingerprint": old.fingerprint}, resume=False).close()
    runs = read_runs(tmp_path)
    assert find_resumable(runs, old, None) is runs[0]
    with pytest.raises(UsageError, match="steps of job 'j' changed"):
        find_resumable(runs, new, None)
