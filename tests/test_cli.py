"""Every command end to end, as a user runs it: a subprocess against the simulator."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _cli import run_airfleet
from _reports import assert_valid_junit
from _simthread import SimThread, sim_in_thread
from airfleet.sim import Faults, Simulator

airfleet = run_airfleet


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    faults = Faults(commit_then_fail_rate=0.05, latency_ms=2, latency_spread_ms=2)
    simulator = Simulator(
        deployments=200, api="mixed", faults=faults, seed=11, run_duration_s=0.3, run_queued_s=0.1
    )
    with sim_in_thread(simulator) as running:
        yield running


@pytest.fixture
def fleet(sim: SimThread, tmp_path: Path) -> Path:
    return sim.write_fleet(
        tmp_path / "fleet.yaml", extra_defaults={"max_per_second": None, "max_in_flight": 8}
    )


def env(sim: SimThread) -> dict[str, str]:
    return sim.sim.env()


def as_json(stdout: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(stdout)
    return data


def test_trigger_two_dags_on_200_deployments_makes_exactly_400_runs(
    sim: SimThread, fleet: Path
) -> None:
    """5% commit-then-fail: 400 ok results, 400 runs on the server, one per deployment and DAG."""
    before = sim.stats()
    out = airfleet(
        "-c",
        str(fleet),
        "trigger",
        "refresh_dims",
        "nightly_load",
        "--report",
        "json",
        env=env(sim),
    )
    assert out.returncode == 0, out.stderr
    report = as_json(out.stdout)
    assert report["summary"]["ok"] == 400
    assert report["summary"]["total"] == 400
    run_ids = {r["data"]["dag_run_id"] for r in report["results"]}
    assert len(run_ids) == 1
    assert run_ids.pop().startswith("airfleet__")
    after = sim.stats()
    assert after["runs_total"] - before["runs_total"] == 400
    assert (
        after["faults_injected"]["commit_then_fail"] > before["faults_injected"]["commit_then_fail"]
    )


def test_trigger_rerun_with_run_id_is_safe(sim: SimThread, fleet: Path) -> None:
    """Same --run-id twice: second run creates nothing and reports already_existed."""
    args = [
        "-c",
        str(fleet),
        "trigger",
        "hello",
        "-s",
        "tag:prod",
        "--run-id",
        "cli-rerun-1",
        "--report",
        "json",
    ]
    first = airfleet(*args, env=env(sim))
    before = sim.stats()["runs_total"]
    second = airfleet(*args, env=env(sim))
    assert first.returncode == 0
    assert second.returncode == 0
    results = as_json(second.stdout)["results"]
    assert results
    assert all(r["data"]["already_existed"] is True for r in results)
    assert sim.stats()["runs_total"] == before


def test_trigger_missing_dag_fails_those_calls_with_exit_1(sim: SimThread, fleet: Path) -> None:
    """A DAG missing on the deployments is each call's 404 failure, exit 1, not a crash."""
    out = airfleet(
        "-c",
        str(fleet),
        "trigger",
        "no_such_dag",
        "-s",
        "name:dep-000*",
        "--report",
        "json",
        env=env(sim),
    )
    assert out.returncode == 1
    results = as_json(out.stdout)["results"]
    assert {r["status"] for r in results} == {404}
    assert "Traceback" not in out.stderr


def test_trigger_wait_reports_final_states(sim: SimThread, fleet: Path) -> None:
    """--wait reports each run's final state and duration; a failed run is a failed result."""
    out = airfleet(
        "-c",
        str(fleet),
        "trigger",
        "hello",
        "always_fails",
        "-s",
        "name:dep-001*",
        "--wait",
        "--timeout",
        "30",
        "--poll",
        "0.5",
        "--report",
        "json",
        env=env(sim),
    )
    assert out.returncode == 1
    results = as_json(out.stdout)["results"]
    finals = {
        r["target"]: {x["data"]["final_state"] for x in results if x["target"] == r["target"]}
        for r in results
    }
    assert finals == {"hello": {"success"}, "always_fails": {"failed"}}
    assert all(r["data"]["duration_s"] > 0 for r in results)


def test_dry_run_prints_the_plan_and_sends_nothing(sim: SimThread, fleet: Path) -> None:
    """--dry-run shows method, path and body per deployment, and the server sees no request."""
    before = sim.stats()["requests_total"]
    out = airfleet(
        "-c",
        str(fleet),
        "trigger",
        "hello",
        "--conf",
        '{"a": 1}',
        "--dry-run",
        "--report",
        "json",
        env=env(sim),
    )
    assert out.returncode == 0, out.stderr
    plan = as_json(out.stdout)
    assert plan["dry_run"] is True
    assert len(plan["requests"]) == 200
    assert plan["requests"][0]["method"] == "POST"
    assert plan["requests"][0]["body"]["conf"] == {"a": 1}
    assert sim.stats()["requests_total"] == before
    assert "s3cret" not in out.stdout


def test_dags_lists_every_dag_per_deployment(sim: SimThread, fleet: Path) -> None:
    """dags gives one result per deployment holding all its DAGs; --pattern filters."""
    out = airfleet(
        "-c",
        str(fleet),
        "dags",
        "-s",
        "tag:prod",
        "--pattern",
        "*_etl",
        "--report",
        "json",
        env=env(sim),
    )
    assert out.returncode == 0, out.stderr
    for result in as_json(out.stdout)["results"]:
        assert [d["dag_id"] for d in result["data"]["dags"]] == ["example_etl"]


def test_dags_paused_and_active_each_keep_one_side_of_the_servers_state(
    sim: SimThread, fleet: Path
) -> None:
    """--paused lists exactly the DAGs the server holds paused, --active the rest."""
    selection = ["-s", "name:dep-0031"]
    paused = airfleet("-c", str(fleet), "pause", "hello", *selection, env=env(sim))
    assert paused.returncode == 0, paused.stderr
    state = sim.stats()["paused"]["dep-0031"]
    listed = {}
    for flag in ("--paused", "--active"):
        out = airfleet(
            *("-c", str(fleet), "dags", *selection, flag, "--report", "json"), env=env(sim)
        )
        assert out.returncode == 0, out.stderr
        (result,) = as_json(out.stdout)["results"]
        listed[flag] = {d["dag_id"] for d in result["data"]["dags"]}
    assert listed["--paused"] == {dag for dag, is_paused in state.items() if is_paused}
    assert listed["--active"] == {dag for dag, is_paused in state.items() if not is_paused}
    assert "hello" in listed["--paused"]
    assert listed["--active"]


def test_pause_then_unpause_changes_server_state(sim: SimThread, fleet: Path) -> None:
    """pause sets is_paused on the server; unpause clears it."""
    selection = ["-s", "name:dep-002*"]
    out = airfleet(
        "-c", str(fleet), "pause", "nightly_load", *selection, "--report", "json", env=env(sim)
    )
    assert out.returncode == 0, out.stderr
    paused = sim.stats()["paused"]
    assert all(paused[f"dep-002{i}"]["nightly_load"] for i in range(10))
    out = airfleet(
        "-c", str(fleet), "unpause", "nightly_load", *selection, "--report", "json", env=env(sim)
    )
    assert out.returncode == 0
    assert not any(sim.stats()["paused"][f"dep-002{i}"]["nightly_load"] for i in range(10))


def test_pools_as_csv(sim: SimThread, fleet: Path) -> None:
    """pools --report csv: one row per pool with slot counts."""
    out = airfleet(
        "-c", str(fleet), "pools", "-s", "name:dep-003*", "--report", "csv", env=env(sim)
    )
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) >= 10
    assert {r["deployment"] for r in rows} == {f"dep-003{i}" for i in range(10)}


def test_health_as_junit_file(sim: SimThread, fleet: Path, tmp_path: Path) -> None:
    """-o health.xml writes JUnit (format from the suffix) with one testcase per deployment."""
    target = tmp_path / "health.xml"
    out = airfleet("-c", str(fleet), "health", "-o", str(target), env=env(sim))
    assert out.returncode == 0, out.stderr
    root = assert_valid_junit(target.read_text(encoding="utf-8"))
    cases = root.findall(".//testcase")
    assert len(cases) == 200
    assert "report written to" in out.stderr


def test_jsonl_streams_results_then_summary(sim: SimThread, fleet: Path) -> None:
    """jsonl: one result per line as calls finish, the summary last."""
    out = airfleet(
        "-c", str(fleet), "pools", "-s", "name:dep-01*", "--report", "jsonl", env=env(sim)
    )
    lines = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(lines) == 101
    assert "summary" in lines[-1]
    assert all("deployment" in line for line in lines[:-1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trigger", "hello", "-s", "tag:nope"], "matches no deployment"),
        (["trigger", "hello", "-s", "color:red"], "tag:"),
        (["trigger", "hello", "--conf", "{not json"], "--conf is not valid JSON"),
        (["trigger", "hello", "--conf", "[1]"], "must be a JSON object"),
        (["trigger", "hello", "--logical-date", "yesterday"], "ISO-8601"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_sent(
    sim: SimThread, fleet: Path, args: list[str], message: str
) -> None:
    """Usage errors: one clear line on stderr, exit 2, no traceback, no request."""
    before = sim.stats()["requests_total"]
    out = airfleet("-c", str(fleet), *args, env=env(sim))
    assert out.returncode == 2
    assert message in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "Traceback" not in out.stderr
    assert sim.stats()["requests_total"] == before


def test_missing_config_names_the_file_and_the_fix(tmp_path: Path) -> None:
    """No fleet.yaml: exit 2 with a line that says where it looked and how to point elsewhere."""
    out = airfleet("pools", cwd=tmp_path)
    assert out.returncode == 2
    assert "fleet.yaml" in out.stderr
    assert "Traceback" not in out.stderr


def test_every_command_help_shows_examples() -> None:
    """--help of the group and of each command shows examples."""
    top = airfleet("--help")
    assert "Examples:" in top.stdout
    assert "AIRFLEET_CONFIG" in top.stdout
    for command in ("trigger", "dags", "pools", "pause", "unpause", "health", "sim", "audit pools"):
        out = airfleet(*command.split(), "--help")
        assert out.returncode == 0
        assert "Examples:" in out.stdout, command


def test_no_secret_reaches_any_output(tmp_path: Path) -> None:
    """-v, JSON logs, every auth kind: no secret or issued token in any output or file."""
    simulator = Simulator(deployments=4, api="mixed", seed=12, faults=Faults(token_ttl_s=30))
    with sim_in_thread(simulator) as running:
        creds = simulator.credentials
        secrets = [creds.client_secret, creds.api_token, creds.password]
        outputs = []
        for auth in ("oauth", "token", "password"):
            config = running.write_fleet(tmp_path / f"{auth}.yaml", auth=auth)
            report = tmp_path / f"{auth}.json"
            for args in (
                ["health"],
                ["trigger", "hello", "-o", str(report)],
                ["pools", "--report", "jsonl"],
                ["trigger", "nope", "--report", "junit"],
            ):
                out = airfleet(
                    "-v", "--log-format", "json", "-c", str(config), *args, env=env(running)
                )
                outputs += [out.stdout, out.stderr]
            outputs.append(report.read_text())
        # A wrong secret is refused, and the refusal does not echo it either.
        bad = running.write_fleet(tmp_path / "bad.yaml", auth="oauth")
        wrong = airfleet(
            "-v",
            "--log-format",
            "json",
            "-c",
            str(bad),
            "pools",
            env={**env(running), "AIRFLEET_SIM_CLIENT_SECRET": "wrong-secret-value"},
        )
        assert wrong.returncode == 1
        outputs += [wrong.stdout, wrong.stderr]
    blob = "\n".join(outputs)
    assert '"level": "debug"' in blob  # -v did log at debug
    for secret in [*secrets, "wrong-secret-value"]:
        assert secret not in blob
    assert "sim-oauth-" not in blob  # issued OAuth tokens
    assert "eyJ" not in blob  # issued JWTs
    assert "Authorization" not in blob


def test_log_lines_per_call_follow_the_level(sim: SimThread, fleet: Path) -> None:
    """-v logs one "call ok" line per call; without it only failed calls are logged."""

    def events(*args: str) -> list[dict[str, Any]]:
        out = airfleet(
            *args,
            "--log-format",
            "json",
            "-c",
            str(fleet),
            "trigger",
            "hello",
            "nope",
            "-s",
            "dep-000*",
            env=env(sim),
        )
        assert out.returncode == 1, out.stderr  # 'nope' fails everywhere
        return [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]

    verbose = events("-v")
    quiet = events()
    ok_lines = [e for e in verbose if e["event"] == "call ok"]
    assert len(ok_lines) == 10
    assert all(e["level"] == "info" and e["deployment"].startswith("dep-000") for e in ok_lines)
    assert not [e for e in quiet if e["event"] == "call ok"]
    failed = [e for e in quiet if e["event"] == "call failed"]
    assert len(failed) == 10
    assert all(e["level"] == "warning" and e["target"] == "nope" for e in failed)


def test_sigint_stops_new_calls_and_still_writes_the_report(tmp_path: Path) -> None:
    """SIGINT mid-run: exit 130, a report where unfinished calls are skipped."""
    import signal
    import time

    simulator = Simulator(deployments=30, api="v2", seed=13, run_queued_s=0.1, run_duration_s=60)
    with sim_in_thread(simulator) as running:
        config = running.write_fleet(tmp_path / "f.yaml", extra_defaults={"max_in_flight": 1})
        full_env = {**os.environ, **env(running)}
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airfleet",
                "-c",
                str(config),
                "trigger",
                "hello",
                "--wait",
                "--report",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=full_env,
        )
        time.sleep(2.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["summary"]["total"] == 30
    assert report["summary"]["interrupted"] is True
    assert report["summary"]["skipped"] == 30  # every run was still going when stopped
    assert "stopping" in err


def test_second_sigint_exits_at_once(tmp_path: Path) -> None:
    """A second SIGINT ends the process without waiting for the grace period."""
    import signal
    import time

    simulator = Simulator(deployments=5, api="v2", seed=14, run_duration_s=60)
    with sim_in_thread(simulator) as running:
        config = running.write_fleet(tmp_path / "f.yaml")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "airfleet",
                "-c",
                str(config),
                "trigger",
                "hello",
                "--wait",
                "--report",
                "json",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **env(running)},
        )
        time.sleep(2.0)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 5
    assert proc.returncode == 130
    assert "interrupted again" in err


def test_demo_runs_and_prints_a_fleet_report() -> None:
    """`airfleet demo` needs no config and ends with what the simulated servers saw."""
    out = airfleet("demo")
    assert out.returncode == 0, out.stderr
    assert "trigger: 25 ok, 0 failed" in out.stdout.replace("\n", " ")
    assert "what the simulated servers saw" in out.stdout
    assert "25 runs created for 25 triggers" in out.stdout.replace("\n", " ")


@pytest.mark.parametrize("astro", [False, True])
def test_sim_command_serves_and_writes_a_config(tmp_path: Path, astro: bool) -> None:
    """`airfleet sim` serves a fleet, writes fleet.yaml and prints the secrets' variables;
    with --astro, a fleet.yaml that discovers the fleet from its platform API."""
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "sim.yaml"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airfleet",
            "sim",
            "--deployments",
            "3",
            "--port",
            str(port),
            "--write-config",
            str(config),
            *(["--astro"] if astro else []),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        exports = dict(
            proc.stdout.readline().strip()[len("export ") :].split("=", 1) for _ in range(3)
        )
        for _ in range(50):
            if config.exists():
                break
            time.sleep(0.1)
        out = airfleet("-c", str(config), "health", "--report", "json", env=exports)
        assert out.returncode == 0, out.stderr
        assert as_json(out.stdout)["summary"]["ok"] == 3
        assert ("discovered 3 deployments" in out.stderr) is astro
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
