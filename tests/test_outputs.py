"""Report files are replaced whole: a killed run leaves the last good report in place."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from _cli import cli_env, run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet.sim import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    with sim_in_thread(Simulator(deployments=2, api="v2", seed=61)) as running:
        yield running


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def fleet_file(sim: SimThread, tmp_path: Path, extra_url: str | None = None) -> Path:
    document = yaml.safe_load(sim.sim.fleet_yaml(sim.url, auth="token"))
    if extra_url is not None:
        document["deployments"].append({"name": "silent", "url": extra_url, "api": "v2"})
    path = tmp_path / "fleet.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return path


def test_a_report_killed_mid_run_leaves_the_last_good_one(
    sim: SimThread, tmp_path: Path, silent_port: int
) -> None:
    """kill -9 while a call hangs: report.json is still the last run's, whole; the
    next run that finishes replaces it whole."""
    report = tmp_path / "report.json"
    good = run_airfleet(
        "-c", str(fleet_file(sim, tmp_path)), "pools", "-o", str(report), env=sim.sim.env()
    )
    assert good.returncode == 0, good.stderr
    first = report.read_text(encoding="utf-8")
    assert json.loads(first)["summary"]["ok"] == 2

    config = fleet_file(sim, tmp_path, extra_url=f"http://127.0.0.1:{silent_port}")
    hung = subprocess.Popen(
        [sys.executable, "-m", "airfleet", "-c", str(config), "pools", "-o", str(report)],
        env=cli_env(sim.sim.env()),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        # Wait until the run is under way: its temporary report exists.
        while not list(tmp_path.glob(".report.json.*.tmp")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        assert hung.poll() is None, "the run should still be waiting for the silent deployment"
        hung.send_signal(signal.SIGKILL)
        hung.wait(timeout=10)
    finally:
        if hung.poll() is None:
            hung.kill()
    assert report.read_text(encoding="utf-8") == first
    stale = set(tmp_path.glob(".report.json.*"))  # what kill -9 left: the dead run's draft

    again = run_airfleet(
        "-c", str(fleet_file(sim, tmp_path)), "pools", "-o", str(report), env=sim.sim.env()
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(report.read_text(encoding="utf-8"))["summary"]["ok"] == 2
    umask = os.umask(0)
    os.umask(umask)
    assert report.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes
    assert set(tmp_path.glob(".report.json.*")) == stale  # a finished run leaves no draft
