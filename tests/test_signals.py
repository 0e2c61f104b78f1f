"""SIGTERM and SIGINT mid-run, as a service manager or a user sends them: report, journal, 130."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from _simthread import SimThread, sim_in_thread
from airfleet.sim import Simulator


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    full_env = {**os.environ, **env}
    full_env.pop("AIRFLEET_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "airfleet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
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
