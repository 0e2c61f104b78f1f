"""SIGTERM and SIGINT mid-run, as a service manager or a user sends them: report, journal, 130."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _cli import cli_env
from _simthread import SimThread, sim_in_thread
from airfleet.sim import Simulator


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "airfleet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(env),
    )


def wait_for_runs(running: SimThread, count: int, *, within_s: float = 30) -> None:
    """Until the server has made ``count`` runs (the calls are then in flight)."""
    deadline = time.monotonic() + within_s
    while running.stats()["runs_total"] < count:
        assert time.monotonic() < deadline, "the runs never started"
        time.sleep(0.1)


def test_sigterm_mid_run_writes_the_report_file_and_exits_130(tmp_path: Path) -> None:
    """SIGTERM during trigger --wait: exit 130, -o report parseable, every call accounted for."""
    simulator = Simulator(deployments=12, api="mixed", seed=31, run_queued_s=0.1, run_duration_s=60)
    with sim_in_thread(simulator) as running:
        config = running.write_fleet(tmp_path / "f.yaml", extra_defaults={"max_in_flight": 1})
        report = tmp_path / "report.json"
        proc = start(
            ["-c", str(config), "trigger", "hello", "--wait", "--poll", "0.5", "-o", str(report)],
            simulator.env(),
        )
        wait_for_runs(running, 12)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        made = running.stats()["runs_total"]
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "stopping" in err
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    summary = data["summary"]
    assert summary["interrupted"] is True
    assert summary["total"] == len(data["results"]) == 12
    assert summary["skipped"] == 12  # every run was still going: none finished, none lost
    assert made == 12  # and each was triggered once
    assert all("interrupted" in r["error"] for r in data["results"])
    # What is known is kept: each run was made, so its id and its state at the
    # interruption are in the report, to wait again with the same --run-id.
    run_ids = {r["data"]["dag_run_id"] for r in data["results"]}
    assert len(run_ids) == 1
    (run_id,) = run_ids
    assert all(r["data"]["interrupted"] is True for r in data["results"])
    assert {r["data"]["state_at_interruption"] for r in data["results"]} <= {"queued", "running"}
    assert all(f"--run-id {run_id} --wait" in r["error"] for r in data["results"])
    assert f"run id: {run_id}" in err.splitlines()  # printed whatever the report


@pytest.mark.parametrize(
    ("first", "second"),
    [(signal.SIGTERM, signal.SIGTERM), (signal.SIGTERM, signal.SIGINT)],
    ids=["term-term", "term-int"],
)
def test_a_second_signal_exits_at_once(
    tmp_path: Path, first: signal.Signals, second: signal.Signals
) -> None:
    """After a first SIGTERM, a second signal ends the process without the 10 s grace."""
    simulator = Simulator(deployments=4, api="v2", seed=32, run_duration_s=60)
    with sim_in_thread(simulator) as running:
        config = running.write_fleet(tmp_path / "f.yaml")
        proc = start(
            ["-c", str(config), "trigger", "hello", "--wait", "--report", "json"],
            simulator.env(),
        )
        wait_for_runs(running, 4)
        proc.send_signal(first)
        time.sleep(0.3)
        sent = time.monotonic()
        proc.send_signal(second)
        _, err = proc.communicate(timeout=30)
        took = time.monotonic() - sent
    assert proc.returncode == 130, err
    assert took < 5
    assert "interrupted again" in err
    assert "Traceback" not in err


def test_sigterm_during_a_job_keeps_the_journal_consistent_and_resume_finishes_once(
    tmp_path: Path,
) -> None:
    """airfleet run + SIGTERM: 130, report and journal agree call by call; --resume adds no run."""
    simulator = Simulator(deployments=6, api="mixed", seed=33, run_queued_s=0.1, run_duration_s=3)
    with sim_in_thread(simulator) as running:
        running.write_fleet(tmp_path / "fleet.yaml")
        job = tmp_path / "job.yaml"
        job.write_text(
            "version: 1\nname: sigterm-job\nfleet: fleet.yaml\nsteps:\n"
            "  - trigger: {id: t, dags: [hello], wait: true, timeout_s: 60}\n"
            "  - health: {}\n",
            encoding="utf-8",
        )
        state = tmp_path / "state"
        report = tmp_path / "report.json"
        args = ["run", str(job), "--state-dir", str(state)]
        proc = start([*args, "-o", str(report)], simulator.env())
        wait_for_runs(running, 6)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        (journal,) = (state / "sigterm-job").glob("*.jsonl")
        lines = journal.read_text(encoding="utf-8").splitlines()
        resumed = start([*args, "--resume", "--report", "json"], simulator.env())
        resumed_out, resumed_err = resumed.communicate(timeout=60)
        stats = running.stats()
    assert "Traceback" not in err
    results = json.loads(report.read_text(encoding="utf-8"))["results"]
    records = [json.loads(line) for line in lines]
    assert records[0]["type"] == "run"
    assert records[-1]["type"] == "end"
    assert records[-1].get("interrupted") is True
    calls = [r for r in records if r["type"] == "call"]
    keys = [(r["step"], r["key"]) for r in calls]
    assert len(keys) == len(set(keys)), "a call was journaled twice"
    # The triggers in flight had their grace period: journaled as finished, like the report.
    reported = {(r["deployment"], r["operation"], r["target"]): r["outcome"] for r in results}
    for record in calls:
        result = record["result"]
        assert (
            reported[(result["deployment"], result["operation"], result["target"])]
            == (result["outcome"])
        )
    journaled_ok = [r for r in calls if r["result"]["outcome"] == "ok"]
    assert len(journaled_ok) == 6
    assert any(outcome == "skipped" for outcome in reported.values())  # health never started
    # Resume: exit 0, the health step done now, and still one run per deployment.
    assert resumed.returncode == 0, resumed_err
    assert json.loads(resumed_out)["summary"]["failed"] == 0
    assert stats["runs_total"] == 6
    assert all(n == 1 for per_dag in stats["runs"].values() for n in per_dag.values())
