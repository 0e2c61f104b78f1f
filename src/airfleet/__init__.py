"""airfleet: asynchronous bulk orchestration for the Airflow REST API.

The library in five lines::

    fleet = airfleet.load_fleet("fleet.yaml")
    plan = airfleet.plan_trigger(airfleet.select(fleet.deployments, ["tag:prod"]), ["refresh_dims"])
    async with airfleet.Engine(fleet) as engine:
        report = await engine.run(plan)
    print(report.summary.ok, report.summary.failed)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

    __version__: str

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

# Where each public name is defined. They are imported on first use (PEP 562),
# not here: the engine brings aiohttp, the fleet file pydantic, and the
# ``airfleet`` command, which imports this package first, answers --help
# without either (benchmarks/README.md, "Start-up").
_DEFINED_IN = {
    "AirfleetError": "airfleet.errors",
    "ApiError": "airfleet.errors",
    "AstroSource": "airfleet.inventory",
    "AuthError": "airfleet.errors",
    "Call": "airfleet.plan",
    "ClientCredentialsAuth": "airfleet.inventory",
    "ConfigError": "airfleet.errors",
    "ConnectError": "airfleet.errors",
    "Deployment": "airfleet.inventory",
    "DiscoveryError": "airfleet.errors",
    "Engine": "airfleet.engine",
    "Fleet": "airfleet.inventory",
    "FleetLimits": "airfleet.inventory",
    "Outcome": "airfleet.results",
    "PasswordAuth": "airfleet.inventory",
    "Plan": "airfleet.plan",
    "Result": "airfleet.results",
    "RunReport": "airfleet.engine",
    "Secret": "airfleet.inventory",
    "Summary": "airfleet.results",
    "TimeoutError": "airfleet.errors",
    "TokenAuth": "airfleet.inventory",
    "TransportError": "airfleet.errors",
    "UsageError": "airfleet.errors",
    "discover": "airfleet.discovery",
    "load_fleet": "airfleet.fleet_file",
    "make_run_id": "airfleet.operations",
    "parse_fleet": "airfleet.fleet_file",
    "plan_dags": "airfleet.operations",
    "plan_health": "airfleet.operations",
    "plan_pause": "airfleet.operations",
    "plan_pools": "airfleet.operations",
    "plan_trigger": "airfleet.operations",
    "select": "airfleet.selection",
}


def _version() -> str:
    """The installed distribution's version (importlib.metadata, itself a large import)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("airfleet")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


if not TYPE_CHECKING:
    # Outside type checking only: for mypy the names are the imports above, and
    # a misspelt ``airfleet.X`` stays an error instead of becoming Any.

    def __getattr__(name: str) -> Any:
        if name == "__version__":
            value = _version()
        elif name in _DEFINED_IN:
            value = getattr(importlib.import_module(_DEFINED_IN[name]), name)
        else:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        globals()[name] = value  # asked once: later lookups find it here
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
