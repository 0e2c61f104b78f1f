"""The benchmark harness still runs end to end (tiny fleets; no timing is asserted)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AIRFLEET = ("cli", "cli-auto", "library", "library-auto", "library-open")


def airflowctl_installed() -> bool:
    """Whether run.py will find its pinned airflowctl installed (--airflowctl if-installed):
    asked of the harness itself, so the test and the run agree on where and which."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        harness = importlib.import_module("_harness")
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return harness.airflowctl_installed() is not None


def test_quick_run_writes_the_tables_and_the_plot(tmp_path: Path) -> None:
    """Every contender runs; the simulator counts one request per deployment and call.

    airflowctl runs when its venv exists (a quick run never installs it: no
    network), one process per deployment, both ways."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "run.py"),
            "--quick",
            "--sizes",
            "3",
            "--latencies",
            "0",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,  # a guard, not a timing: airflowctl adds 12 processes of ~1 s CPU each
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    table = (tmp_path / "fleet.md").read_text()
    assert "## Targets" in table
    assert "## Limits and tokens" in table
    assert "| 3 | apache-airflow-client x16 |" in table
    assert (tmp_path / "fleet.png").stat().st_size > 0
    data = json.loads((tmp_path / "fleet.json").read_text())
    contenders = {(row["contender"], row["operation"]) for row in data["rows"]}
    airflowctl = ("airflowctl-loop", "airflowctl-xargs") if airflowctl_installed() else ()
    assert contenders == {
        (name, op)
        for name in (*AIRFLEET, "bare", "official", "requests", *airflowctl)
        for op in ("pools", "trigger")
    }
    assert "| airfleet library, no rates |" in table
    assert "| airfleet library, api: auto |" in table
    assert "## api: auto against api: v2" in table
    if airflowctl:
        assert "| 3 | airflowctl, xargs -P 16 |" in table
        assert data["airflowctl"]["skipped"] is None
    else:
        assert "not installed" in data["airflowctl"]["skipped"]
    # Counted by the simulator, not the clients; airfleet's trigger also GETs the DAG
    # (api: auto included: on Airflow 3 detection costs no request).
    for row in data["rows"]:
        twice = row["operation"] == "trigger" and row["contender"] in AIRFLEET
        assert row["requests"] == (6 if twice else 3), row
    fetches = {rate["check"]: rate["token_fetches"] for rate in data["rates"]}
    assert all(count >= 1 for count in fetches.values())


def test_engine_alone_runs_warm_and_cold() -> None:
    """The engine-only benchmark completes both ways and reports a figure per call."""
    script = str(ROOT / "benchmarks" / "engine_alone.py")
    for extra in ([], ["--cold"], ["--cold", "--rate", "10"]):
        result = subprocess.run(
            [sys.executable, script, "--deployments", "20", "--runs", "2", *extra],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        figure = json.loads(result.stdout)
        assert figure["deployments"] == 20
        assert figure["cold"] is bool(extra)
        assert figure["us_per_call"] > 0


def test_the_shards_benchmark_counts_every_request_and_keeps_the_cap(tmp_path: Path) -> None:
    """Shards as processes: the simulator saw every request, none failed, and no round
    went over the shared in-flight cap (the script's own checks, which exit 1)."""
    out = tmp_path / "shards.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "shards.py"),
            *("--deployments", "20", "--steps", "1", "--shards", "1,2"),
            *("--bound-latency-ms", "5", "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["problems"] == []
    assert {(row["scenario"], row["shards"]) for row in data["rows"]} == {
        (scenario, n) for scenario in ("CPU-bound", "limit-bound") for n in (1, 2)
    }
