"""Fleet operations: each builds a plan of calls and reads the answers; none does I/O."""

from __future__ import annotations

from airfleet.operations.api import ApiSpec, plan_api
from airfleet.operations.health import HealthSpec, plan_health
from airfleet.operations.listing import DagsSpec, PoolsSpec, plan_dags, plan_pools
from airfleet.operations.pause import PauseSpec, plan_pause
from airfleet.operations.reads import (
    ImportErrorsSpec,
    RunsSpec,
    parse_since,
    plan_import_errors,
    plan_runs,
)
from airfleet.operations.trigger import (
    NO_LOGICAL_DATE,
    NoLogicalDate,
    TriggerSpec,
    check_run_id,
    make_run_id,
    plan_trigger,
)

__all__ = [
    "NO_LOGICAL_DATE",
    "ApiSpec",
    "DagsSpec",
    "HealthSpec",
    "ImportErrorsSpec",
    "NoLogicalDate",
    "PauseSpec",
    "PoolsSpec",
    "RunsSpec",
    "TriggerSpec",
    "check_run_id",
    "make_run_id",
    "parse_since",
    "plan_api",
    "plan_dags",
    "plan_health",
    "plan_import_errors",
    "plan_pause",
    "plan_pools",
    "plan_runs",
    "plan_trigger",
]
