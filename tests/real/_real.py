"""Helpers for the real-server tests: the script, the servers, fleet.yaml, the CLI.

The servers are installed into a cache outside the project (reused when
complete), started on free loopback ports with schedulers, and stopped when
the session ends, also after a failure. If they cannot be installed or
started, every test here FAILS with the reason: they never skip, so CI cannot
pass without having proven airfleet against real servers. Deselect them
explicitly with ``-m 'not real_airflow'`` where no package registry is reachable.

One fleet.yaml names each server ten times (``af3-00`` .. ``af3-09`` on Airflow 3,
``af2-00`` .. ``af2-09`` on Airflow 2), so fan-out, token sharing and limits
meet real servers.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import _cli

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "real_airflow.py"
NAMES_PER_SERVER = 10
PASSWORD_VAR = "AIRFLEET_REAL_PASSWORD"
SHORT_JWT_S = 3


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("real_airflow", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["real_airflow"] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


ra = _load_script()


@dataclass(frozen=True)
class RealAirflow:
    """The running servers and the one password they share (as a fleet's admin user would)."""

    af3: Any  # real_airflow.Server: Airflow 3 with a scheduler and a DAG processor
    af2: Any  # real_airflow.Server: Airflow 2 with a scheduler
    af3_short: Any  # a second Airflow 3 API server on af3's database; JWTs live 3 s
    password: str
    root: Path
    timings: dict[str, float]

    def env(self, password: str | None = None) -> dict[str, str]:
        return {PASSWORD_VAR: self.password if password is None else password}


def fleet_yaml(
    servers: list[tuple[str, Any]], *, names_per_server: int = NAMES_PER_SERVER, **limits: Any
) -> str:
    """A fleet.yaml naming each server ``names_per_server`` times, ``api: auto``, password auth.

    Each entry sets ``allow_duplicate_url: true``: airfleet refuses one server
    under two names otherwise.
    """
    fleet_limits = {"max_in_flight": 16, "max_per_second": 50, **limits}
    lines = [
        "version: 1",
        f"limits: {json.dumps(fleet_limits)}",
        "defaults: {auth: local, api: auto, max_in_flight: 2, max_per_second: 10, "
        "retries: 3, timeout_s: 30}",
        "auth:",
        "  local:",
        "    kind: password",
        "    username: admin",
        f"    password: ${{{PASSWORD_VAR}}}",
        "deployments:",
    ]
    # Naming one server many times is the point here, so each name says so.
    lines.extend(
        f"  - {{name: {prefix}-{i:02d}, url: '{server.url}', tags: [{prefix}, real], "
        "allow_duplicate_url: true}"
        for prefix, server in servers
        for i in range(names_per_server)
    )
    return "\n".join(lines) + "\n"


def run_airfleet(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout_s: float = 240
) -> subprocess.CompletedProcess[str]:
    """The airfleet CLI in a subprocess, with the real servers' longer timeout."""
    return _cli.run_airfleet(*args, env=env, cwd=cwd, timeout_s=timeout_s)


def report(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON report on stdout, or a failure that shows stderr."""
    try:
        data: dict[str, Any] = json.loads(out.stdout)
    except ValueError:
        pytest.fail(f"no JSON report (exit {out.returncode}); stderr:\n{out.stderr[-3000:]}")
    return data


def server_of(real: RealAirflow, deployment: str) -> Any:
    return real.af3 if deployment.startswith("af3") else real.af2
