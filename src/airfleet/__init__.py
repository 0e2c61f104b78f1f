"""airfleet: asynchronous bulk orchestration for the Airflow REST API.

The library in five lines::

    fleet = airfleet.load_fleet("fleet.yaml")
    plan = airfleet.plan_trigger(airfleet.select(fleet.deployments, ["tag:prod"]), ["refresh_dims"])
    async with airfleet.Engine(fleet) as engine:
        report = await engine.run(plan)
    print(report.summary.ok, report.summary.failed)
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from airfleet.discovery import discover
from airfleet.engine import Engine, RunReport
from airfleet.errors import (
    AirfleetError,
    ApiError,
    AuthError,
    ConfigError,
    ConnectError,
    DiscoveryError,
    TimeoutError,  # noqa: A004 - ours, a TransportError; exported on purpose
    TransportError,
    UsageError,
)
from airfleet.fleet_file import load_fleet, parse_fleet
from airfleet.inventory import (
    AstroSource,
    ClientCredentialsAuth,
    Deployment,
    Fleet,
    FleetLimits,
    PasswordAuth,
    Secret,
    TokenAuth,
)
from airfleet.operations import (
    make_run_id,
    plan_dags,
    plan_health,
    plan_pause,
    plan_pools,
    plan_trigger,
)
from airfleet.plan import Call, Plan
from airfleet.results import Outcome, Result, Summary
from airfleet.selection import select

try:
    __version__ = version("airfleet")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0+unknown"

__all__ = [
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
]
