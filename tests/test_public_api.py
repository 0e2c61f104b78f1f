"""The public surface: a short, sorted __all__, and every name importable."""

from __future__ import annotations

import subprocess
import sys

import airfleet


def test_all_is_sorted_and_importable() -> None:
    """__all__ is sorted, and each name in it exists on the package."""
    assert list(airfleet.__all__) == sorted(airfleet.__all__)
    for name in airfleet.__all__:
        assert hasattr(airfleet, name), name


def test_public_api_is_small_and_stable() -> None:
    """Growing the public API is a decision: this list changes with it."""
    assert set(airfleet.__all__) == {
        "AirfleetError",
        "ApiError",
        "AstroSource",
        "AuthError",
        "Call",
        "ClientCredentialsAuth",
        "ConfigError",
        "ConnectError",
        "Deployment",
        "DiscoveryError",
        "Engine",
        "Fleet",
        "FleetLimits",
        "Outcome",
        "PasswordAuth",
        "Plan",
        "Result",
        "RunReport",
        "Secret",
        "Summary",
        "TimeoutError",
        "TokenAuth",
        "TransportError",
        "UsageError",
        "__version__",
        "discover",
        "load_fleet",
        "make_run_id",
        "parse_fleet",
        "plan_dags",
        "plan_health",
        "plan_pause",
        "plan_pools",
        "plan_trigger",
        "select",
    }


def test_errors_share_one_root_with_exit_codes() -> None:
    """Every error is an AirfleetError; usage and config errors exit 2, the rest 1."""
    assert airfleet.ConfigError("x").exit_code == 2
    assert airfleet.UsageError("x").exit_code == 2
    for cls in (airfleet.AuthError, airfleet.ConnectError, airfleet.TimeoutError):
        assert issubclass(cls, airfleet.AirfleetError)
        assert cls("x").exit_code == 1
    assert issubclass(airfleet.TimeoutError, airfleet.TransportError)


def test_python_dash_m_runs_the_cli() -> None:
    """`python -m airfleet --help` works like the console script."""
    out = subprocess.run(
        [sys.executable, "-m", "airfleet", "--help"], capture_output=True, text=True, check=True
    )
    assert "airfleet demo" in out.stdout
