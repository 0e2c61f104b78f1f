"""Pause or unpause DAGs fleet-wide (PATCH ``is_paused``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from airfleet.dialects.base import Dialect
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, failed, read
from airfleet.plan import Call, Plan
from airfleet.protocol import Conversation, Request, Verdict
from airfleet.results import Outcome

__all__ = ["PauseSpec", "plan_pause"]


@dataclass(frozen=True, slots=True)
class PauseSpec:
    """Set one DAG's paused flag (idempotent: setting it twice is harmless)."""

    dag_id: str
    paused: bool

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return (dialect.set_paused(self.dag_id, paused=self.paused),)

    def converse(self, dialect: Dialect) -> Conversation:
        answer = yield from ask(dialect.set_paused(self.dag_id, paused=self.paused))
        if not answer.ok:
            return failed(dialect, answer)
        dag = read(dialect.read_dag, answer)
        return Verdict(Outcome.OK, data={"is_paused": dag["is_paused"]}, status=answer.status)


def plan_pause(deployments: Sequence[Deployment], dag_ids: Sequence[str], *, paused: bool) -> Plan:
    """One call per deployment and DAG."""
    operation = "pause" if paused else "unpause"
    calls = tuple(
        Call(d, operation, dag_id, PauseSpec(dag_id, paused))
        for d in deployments
        for dag_id in dag_ids
    )
    return Plan(operation, calls, mutating=True)
