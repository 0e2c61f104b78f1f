"""No secret anywhere: every command, -v --log-format json, every output, report and state file.

The simulator runs in this process (a thread), so the test reads every token
it issued from its token book, not a guess at their shape: the OAuth access
tokens and each Airflow 3 deployment's JWTs, including the ones refreshed
because tokens live 2 s here.
"""

from __future__ import annotations

import base64
import stat
import subprocess
from pathlib import Path

from _cli import run_airfleet
from _reports import assert_valid_junit
from _simthread import sim_in_thread
from airfleet.sim import Faults, Simulator

SPEC = """\
version: 1
pools:
  default_pool: {slots: 64}
  etl: {slots: 8, description: ETL}
"""


def airfleet(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Every command as the issue asks: verbose, JSON logs."""
    return run_airfleet("-v", "--log-format", "json", *args, env=env)


def job_file(tmp_path: Path, fleet: Path, name: str) -> Path:
    job = tmp_path / f"{name}.job.yaml"
    job.write_text(
        f"version: 1\nname: {name}\nfleet: {fleet.name}\nsteps:\n"
        "  - health: {}\n"
        "  - trigger: {dags: [hello], wait: true, timeout_s: 30}\n"
        "  - pause: {dags: [nightly_load]}\n"
        "  - audit_pools: {spec: pools.yaml, apply: true}\n",
        encoding="utf-8",
    )
    return job


def commands(config: Path, out: Path, job: Path, state: Path) -> list[list[str]]:
    """Every command, each report format written once with -o and once to stdout."""
    c = ["-c", str(config)]
    spec = str(out.parent / "pools.yaml")
    return [
        [*c, "health", "-o", f"{out}-health.xml"],
        [*c, "health", "--report", "markdown"],
        [*c, "trigger", "hello", "-o", f"{out}-trigger.json"],
        [*c, "trigger", "hello", "--wait", "--poll", "0.2", "-o", f"{out}-wait.jsonl"],
        [*c, "trigger", "no_such_dag", "--report", "junit"],
        [*c, "dags", "-o", f"{out}-dags.csv"],
        [*c, "pools", "-o", f"{out}-pools.md"],
        [*c, "pools", "--report", "jsonl"],
        [*c, "pause", "hello", "-o", f"{out}-pause.txt"],
        [*c, "unpause", "hello", "--report", "csv"],
        [*c, "audit", "pools", "--spec", spec, "--apply", "-o", f"{out}-audit.json"],
        [*c, "audit", "pools", "--spec", spec, "--dry-run"],
        [*c, "trigger", "hello", "--dry-run", "--report", "json"],
        ["run", str(job), "--state-dir", str(state), "-o", f"{out}-run.json"],
        ["history", job.stem.split(".")[0], "--state-dir", str(state)],
    ]


def issued_tokens(sim: Simulator) -> list[str]:
    """Every bearer token the simulator handed out (read from its token book)."""
    return sim.tokens.issued()


def every_file(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_no_secret_or_issued_token_reaches_any_output_report_or_state_file(
    tmp_path: Path,
) -> None:
    """oauth, token and password fleets; all commands; stdout, stderr, reports, journals: clean."""
    faults = Faults(token_ttl_s=2.0)
    simulator = Simulator(
        deployments=4, api="mixed", seed=41, faults=faults, run_queued_s=0.1, run_duration_s=0.3
    )
    (tmp_path / "pools.yaml").write_text(SPEC, encoding="utf-8")
    blobs: list[str] = []
    state = tmp_path / "state"
    with sim_in_thread(simulator) as running:
        env = simulator.env()
        for auth in ("oauth", "token", "password"):
            config = running.write_fleet(tmp_path / f"{auth}.yaml", auth=auth)
            job = job_file(tmp_path, config, f"secrets-{auth}")
            for args in commands(config, tmp_path / auth, job, state):
                out = airfleet(args, env)
                assert out.returncode in (0, 1), (args, out.stderr[-2000:])
                assert "Traceback" not in out.stderr, args
                blobs += [out.stdout, out.stderr]
        wrong = airfleet(
            ["-c", str(tmp_path / "oauth.yaml"), "pools"],
            {**env, "AIRFLEET_SIM_CLIENT_SECRET": "wrong-secret-value-123"},
        )
        assert wrong.returncode == 1
        blobs += [wrong.stdout, wrong.stderr]
        tokens = issued_tokens(simulator)
        secrets = [*env.values(), "wrong-secret-value-123"]
        creds = simulator.credentials
    files = every_file(tmp_path)
    reports = [p for p in files if p.name.startswith(("oauth-", "token-", "password-"))]
    state_files = every_file(state)
    assert len(reports) >= 3 * 8
    assert state_files, "the job runs left no journal"
    blobs += [p.read_text(encoding="utf-8", errors="replace") for p in [*reports, *state_files]]
    for report in (p for p in reports if p.suffix == ".xml"):
        assert_valid_junit(report.read_text(encoding="utf-8"))
    everything = "\n".join(blobs)

    # The test can fail: it saw debug logs, several tokens of each kind, every command's output.
    assert '"level": "debug"' in everything
    assert sum(t.startswith("sim-oauth-") for t in tokens) >= 2
    assert sum(t.startswith("eyJ") for t in tokens) >= 2
    basic = base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
    for needle in [*secrets, *tokens, basic]:
        assert needle not in everything, f"a secret leaked: {needle[:12]}..."
        assert needle[-16:] not in everything, f"part of a secret leaked: ...{needle[-16:]}"
    assert "Authorization" not in everything
    assert "Bearer " not in everything

    # State files (journals, locks) are private to the user.
    for path in state_files:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is mode {mode:o}"
