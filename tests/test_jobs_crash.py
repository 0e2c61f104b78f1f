"""kill -9 of `airfleet run` at several points, then --resume: every call done exactly once."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from _simthread import SimThread, sim_in_thread
from airfleet.jobs.journal import read_run
from airfleet.sim import Faults, Simulator

DEPLOYMENTS = 12
# Steps: trigger two DAGs, unpause one, trigger it: 24 + 12 + 12 calls, 36 of them triggers.
TRIGGERS = {"first": ("refresh_dims", "nightly_load"), "second": ("hello",)}
PLANNED = DEPLOYMENTS * 4


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    # Latency and a fleet-wide cap of 2 in flight stretch a run over about a
    # second, so there is time to kill it mid-way; commit-then-fail adds
    # triggers that landed but whose answer was lost.
    faults = Faults(latency_ms=40, commit_then_fail_rate=0.05)
    simulator = Simulator(deployments=DEPLOYMENTS, api="mixed", seed=7, faults=faults)
    with sim_in_thread(simulator) as running:
        yield running


def _env(sim: SimThread) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLEET_")}
    env.update(sim.sim.env())
    return env


def _write(sim: SimThread, tmp_path: Path, name: str, *, window: bool) -> Path:
    fleet = yaml.safe_load(sim.sim.fleet_yaml(sim.url, extra_defaults={"max_per_second": None}))
    fleet["limits"] = {"max_in_flight": 2}
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(fleet), encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(
        f"version: 1\nname: {name}\nfleet: fleet.yaml\n"
        + ("window: daily\n" if window else "")
        + "steps:\n"
        "  - trigger: {id: first, dags: [refresh_dims, nightly_load]}\n"
        "  - unpause: {dags: [hello]}\n"
        "  - trigger: {id: second, dags: [hello]}\n",
        encoding="utf-8",
    )
    return job


def _command(job: Path, state: Path) -> list[str]:
    return [sys.executable, "-m", "airfleet", "run", str(job), "--state-dir", str(state)]


def _call_lines(state: Path, name: str) -> tuple[int, bool]:
    """Call records in the job's journal so far, and whether its header is written."""
    files = list((state / name).glob("*.jsonl"))
    if not files:
        return 0, False
    records = []
    for line in files[0].read_text(encoding="utf-8", errors="replace").splitlines():
        with contextlib.suppress(ValueError):  # the line being written
            records.append(json.loads(line).get("type"))
    return records.count("call"), records[:1] == ["run"]


def _run_and_kill(job: Path, state: Path, name: str, env: dict[str, str], at: int) -> None:
    """Start `airfleet run [--resume]`, SIGKILL it once the journal holds ``at`` calls;
    then every result it had reported (jsonl, flushed line by line) is in the journal."""
    args = _command(job, state)
    if (state / name).exists():
        args.append("--resume")
    reported = state.parent / f"reported-{at}.jsonl"
    with reported.open("w", encoding="utf-8") as stdout:
        proc = subprocess.Popen(
            [*args, "--report", "jsonl"], stdout=stdout, stderr=subprocess.DEVNULL, env=env
        )
    try:
        while proc.poll() is None:
            calls, header = _call_lines(state, name)
            if header and calls >= at:
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the run ended before the kill point: slow the simulator"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    _assert_reported_were_journaled(reported, state / name)


def _assert_reported_were_journaled(reported: Path, job_dir: Path) -> None:
    """A result is reported only once its record is on disk, so a kill at any moment
    leaves every result the process reported (from this run or the journal) journaled."""
    (path,) = job_dir.glob("*.jsonl")
    run = read_run(path)
    assert run is not None
    index = {str(s["id"]): int(s["index"]) for s in run.header["steps"]}
    journaled: set[tuple[int, str, str]] = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the torn line the kill left
        if record.get("type") == "call":
            journaled.add((record["step"], record["key"], record["result"]["outcome"]))
    for line in reported.read_text(encoding="utf-8").splitlines():
        try:
            result = json.loads(line)
        except ValueError:
            continue  # the kill cut this line short: it was never reported whole
        if "summary" in result:
            continue
        key = f"{result['deployment']}|{result['operation']}|{result['target']}"
        assert (index[result["step"]], key, result["outcome"]) in journaled, line


def _created(sim: SimThread, run_ids: dict[str, str]) -> Counter[tuple[str, str, str]]:
    """Runs on the server with our run ids: (deployment, dag, run id) -> how many."""
    found: Counter[tuple[str, str, str]] = Counter()
    ours = set(run_ids.values())
    for deployment, per_dag in sim.stats()["run_ids"].items():
        for dag, ids in per_dag.items():
            for run_id in ids:
                if run_id in ours:
                    found[(deployment, dag, run_id)] += 1
    return found


@pytest.mark.parametrize(
    ("name", "window", "kills"),
    [
        ("crash-header", True, [0]),  # killed right after the journal header
        ("crash-early", False, [5]),  # no window: resume must reuse the journaled run ids
        ("crash-twice", True, [14, 34]),  # killed, resumed, killed again, resumed
        ("crash-late", False, [41]),  # killed in the last step
    ],
)
def test_kill_9_then_resume_does_every_call_exactly_once(
    sim: SimThread, tmp_path: Path, name: str, window: bool, kills: list[int]
) -> None:
    """SIGKILL at any point + --resume: runs created == planned triggers, one ok per call."""
    job = _write(sim, tmp_path, name, window=window)
    state = tmp_path / "state"
    env = _env(sim)
    before = sim.stats()
    for at in kills:
        _run_and_kill(job, state, name, env, at)
    (path,) = (state / name).glob("*.jsonl")
    killed = read_run(path)
    assert killed is not None
    assert killed.status == "killed"
    done_before = killed.counts()["ok"]
    trigger_steps = {1: "first", 3: "second"}
    resent = sum(
        1
        for index in trigger_steps
        for key in (
            f"{d}|trigger|{dag}" for d in sim.sim.names for dag in TRIGGERS[trigger_steps[index]]
        )
        if key not in killed.done(index)
    )

    out = subprocess.run(
        [*_command(job, state), "--resume", "--report", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "resuming run" in out.stderr
    report: dict[str, Any] = json.loads(out.stdout)
    assert report["summary"]["total"] == PLANNED
    assert report["summary"]["ok"] == PLANNED
    from_journal = [r for r in report["results"] if r["data"].get("from_journal")]
    assert len(from_journal) == done_before

    # The server: each planned trigger made exactly one run, with the journaled run id.
    run_ids = killed.header["run_ids"]
    created = _created(sim, run_ids)
    assert len(created) == DEPLOYMENTS * 3
    assert set(created.values()) == {1}
    after = sim.stats()
    assert after["runs_total"] - before["runs_total"] == DEPLOYMENTS * 3
    # Duplicates were only refused 409s: re-sent triggers, and retries after lost answers.
    faults = (
        after["faults_injected"]["commit_then_fail"] - before["faults_injected"]["commit_then_fail"]
    )
    refused = after["duplicates_refused"] - before["duplicates_refused"]
    assert refused <= resent + faults
    for result in report["results"]:
        if result["operation"] == "trigger" and result["status"] == 409:
            assert result["outcome"] == "ok"
            assert (
                result["data"]["dag_run_id"]
                == run_ids["first" if result["target"] != "hello" else "second"]
            )

    # The journal: exactly one ok record per planned call, across every invocation.
    oks: Counter[tuple[int, str]] = Counter()
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue  # the torn line the kill left
        if record.get("type") == "call" and record["result"]["outcome"] == "ok":
            oks[(record["step"], record["key"])] += 1
    assert len(oks) == PLANNED
    assert set(oks.values()) == {1}
    finished = read_run(path)
    assert finished is not None
    assert finished.status == "finished"
    assert finished.complete
    assert finished.resumes == len(kills)


def test_resume_after_a_complete_run_sends_nothing_and_starts_no_run(
    sim: SimThread, tmp_path: Path
) -> None:
    """--resume after a run that finished all ok: no request, no new journal, exit 0."""
    job = _write(sim, tmp_path, "crash-none", window=True)
    state = tmp_path / "state"
    args = _command(job, state)
    first = subprocess.run(
        [*args, "--report", "json"], capture_output=True, text=True, env=_env(sim), check=False
    )
    assert first.returncode == 0, first.stderr
    requests = sim.stats()["requests_total"]
    again = subprocess.run(
        [*args, "--resume", "--report", "json"],
        capture_output=True,
        text=True,
        env=_env(sim),
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert f"finished with all {PLANNED} calls ok; nothing to resume" in again.stderr
    assert json.loads(again.stdout)["summary"]["ok"] == PLANNED
    assert sim.stats()["requests_total"] == requests
    assert len(list((state / "crash-none").glob("*.jsonl"))) == 1


def test_ctrl_c_reports_interrupted_and_resume_finishes(sim: SimThread, tmp_path: Path) -> None:
    """SIGINT: exit 130 with a report, history says interrupted, --resume does the rest once."""
    name = "crash-sigint"
    job = _write(sim, tmp_path, name, window=False)
    state = tmp_path / "state"
    env = _env(sim)
    proc = subprocess.Popen(
        [*_command(job, state), "--report", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        while proc.poll() is None and _call_lines(state, name)[0] < 5:
            time.sleep(0.002)
        assert proc.poll() is None, "the run ended before the interrupt: slow the simulator"
        proc.send_signal(signal.SIGINT)
        stdout, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)
    assert proc.returncode == 130
    summary = json.loads(stdout)["summary"]
    assert summary["interrupted"] is True
    assert summary["total"] == PLANNED
    assert summary["skipped"] > 0
    shown = subprocess.run(
        [sys.executable, "-m", "airfleet", "history", name, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    (row,) = json.loads(shown.stdout)["runs"]
    assert row["status"] == "interrupted"
    assert row["skipped"] > 0

    out = subprocess.run(
        [*_command(job, state), "--resume", "--report", "json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["summary"]["ok"] == PLANNED
    (path,) = (state / name).glob("*.jsonl")
    run = read_run(path)
    assert run is not None
    assert run.complete
    created = _created(sim, run.header["run_ids"])
    assert len(created) == DEPLOYMENTS * 3
    assert set(created.values()) == {1}
