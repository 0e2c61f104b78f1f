"""Read-only listings: every DAG and every pool of every selected deployment."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from airfleet.dialects.base import Dialect
from airfleet.inventory import Deployment
from airfleet.operations._common import paginate
from airfleet.plan import Call, Plan
from airfleet.protocol import Conversation, Request, Verdict
from airfleet.results import Outcome

__all__ = ["DagsSpec", "PoolsSpec", "plan_dags", "plan_pools"]


@dataclass(frozen=True, slots=True)
class DagsSpec:
    """All DAGs of one deployment, filtered by a glob and by paused state."""

    pattern: str | None = None
    paused: bool | None = None

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return ()

    def converse(self, dialect: Dialect) -> Conversation:
        dags, total = yield from paginate(dialect, dialect.list_dags, dialect.read_dags, "dag_id")
        if self.pattern is not None:
            dags = [d for d in dags if fnmatch.fnmatchcase(d["dag_id"], self.pattern)]
        if self.paused is not None:
            dags = [d for d in dags if d["is_paused"] is self.paused]
        return Verdict(Outcome.OK, data={"dags": dags, "total_entries": total}, status=200)


@dataclass(frozen=True, slots=True)
class PoolsSpec:
    """Every pool of one deployment, with its slot counts."""

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return ()

    def converse(self, dialect: Dialect) -> Conversation:
        rows, _ = yield from paginate(dialect, dialect.list_pools, dialect.read_pool_rows, "name")
        return Verdict(Outcome.OK, data={"pools": rows}, status=200)


def plan_dags(
    deployments: Sequence[Deployment], *, pattern: str | None = None, paused: bool | None = None
) -> Plan:
    """One call per deployment; its result holds all pages merged."""
    spec = DagsSpec(pattern, paused)
    return Plan("dags", tuple(Call(d, "dags", "", spec) for d in deployments))


def plan_pools(deployments: Sequence[Deployment]) -> Plan:
    """One call per deployment listing its pools."""
    spec = PoolsSpec()
    return Plan("pools", tuple(Call(d, "pools", "", spec) for d in deployments))
