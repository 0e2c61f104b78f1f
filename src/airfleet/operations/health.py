"""Version, API dialect and health of each deployment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from airfleet.dialects.base import Dialect
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, failed
from airfleet.plan import Call, Plan
from airfleet.protocol import Conversation, Request, Verdict
from airfleet.results import Outcome

__all__ = ["HealthSpec", "plan_health"]

# The components whose failure makes a deployment unhealthy. Airflow 3 parses
# DAG files only in its separate DAG processor, so there it is required; on
# Airflow 2 the scheduler parses them unless a standalone processor is set
# up. The triggerer is optional everywhere and only reported.
REQUIRED = {
    "v1": ("metadatabase", "scheduler"),
    "v2": ("metadatabase", "scheduler", "dag_processor"),
}


@dataclass(frozen=True, slots=True)
class HealthSpec:
    """Ask the version and the health endpoint.

    Both are public on Airflow, but are sent with the deployment's
    credential: a gateway in front of Airflow (Astro's) refuses anonymous
    requests on every path.
    """

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return ()

    def converse(self, dialect: Dialect) -> Conversation:
        version_answer = yield from ask(dialect.version())
        version = None
        if version_answer.ok and isinstance(version_answer.body, dict):
            found = version_answer.body.get("version")
            version = found if isinstance(found, str) else None
        answer = yield from ask(dialect.health())
        if not answer.ok:
            return failed(dialect, answer, what="health check")
        if not isinstance(answer.body, dict):
            # An HTML page, an empty or cut body: say so, not "scheduler is None".
            return failed(dialect, answer, what="health check: not a JSON object")
        components = _components(answer.body)
        unhealthy = [name for name in REQUIRED[dialect.name] if components.get(name) != "healthy"]
        data = {
            "version": version,
            "api": dialect.name,
            "healthy": not unhealthy,
            "components": components,
        }
        if unhealthy:
            return Verdict(
                Outcome.FAILED,
                data=data,
                error="unhealthy: " + ", ".join(_state(n, components) for n in unhealthy),
                status=answer.status,
            )
        return Verdict(Outcome.OK, data=data, status=answer.status)


def _state(name: str, components: dict[str, str | None]) -> str:
    status = components.get(name)
    if status is None:
        # Airflow reports a component that never sent a heartbeat with a
        # null status: in practice, it is not running.
        return f"{name} is not reporting (not running?)"
    return f"{name} is {status}"


def _components(body: Any) -> dict[str, str | None]:
    if not isinstance(body, dict):
        return {}
    out: dict[str, str | None] = {}
    for name, value in body.items():
        if isinstance(value, dict):
            status = value.get("status")
            out[name] = status if isinstance(status, str) else None
    return out


def plan_health(deployments: Sequence[Deployment]) -> Plan:
    """One call per deployment."""
    spec = HealthSpec()
    return Plan("health", tuple(Call(d, "health", "", spec) for d in deployments))
