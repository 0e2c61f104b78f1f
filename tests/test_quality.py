"""ruff and mypy --strict are clean over src/, scripts/ and tests/ (run by the test command)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    "command",
    [
        ("ruff", "check", "src", "tests", "benchmarks", "scripts"),
        ("ruff", "format", "--check", "src", "tests", "benchmarks", "scripts"),
        ("mypy", "--strict", "src/airfleet"),
        ("mypy", "--strict", "scripts/real_airflow.py"),
        ("mypy", "--strict", "tests"),
    ],
    ids=["ruff-check", "ruff-format", "mypy-strict", "mypy-strict-scripts", "mypy-strict-tests"],
)
def test_tool_is_clean(command: tuple[str, ...]) -> None:
    """The tool exits 0; its output is shown when it does not."""
    result = _run(*command)
    assert result.returncode == 0, result.stdout + result.stderr
