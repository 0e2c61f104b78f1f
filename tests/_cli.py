"""The airfleet CLI in a subprocess, as a user runs it, for end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

# The caller's own config or state directory must not leak into a test.
_UNSET = ("AIRFLEET_CONFIG", "AIRFLEET_STATE_DIR")


def cli_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without airfleet's own variables, plus ``env``."""
    full = {k: v for k, v in os.environ.items() if k not in _UNSET}
    full.update(env or {})
    return full


def run_airfleet(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout_s: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m airfleet ARGS`` to completion; never raises on its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "airfleet", *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=cwd,
        timeout=timeout_s,
        check=False,
    )
