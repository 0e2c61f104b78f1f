"""Plans: the list of calls an operation makes.

A :class:`Call` is one unit of work on one deployment (deployment x operation x
target) and yields exactly one result. Its ``spec`` drives a *conversation*
(see :mod:`airfleet.protocol`): the engine does all the I/O; specs and
dialects never touch the network, so every operation can be tested by feeding
it answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from airfleet.dialects.base import Dialect
from airfleet.inventory import Deployment
from airfleet.protocol import Conversation, Request
from airfleet.results import Outcome, Result

__all__ = ["Call", "Plan", "PlannedRequest", "Spec"]


class Spec(Protocol):
    """The operation-specific part of a call: how to talk to a deployment about it."""

    def converse(self, dialect: Dialect) -> Conversation:
        """Yield requests and pauses; return the verdict."""
        ...

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        """The mutating requests a dry run shows (no I/O, no secrets)."""
        ...


@dataclass(frozen=True, slots=True)
class Call:
    """One planned unit of work: deployment x operation x target, one result."""

    deployment: Deployment
    operation: str
    target: str
    spec: Spec

    def __repr__(self) -> str:
        return f"Call({self.deployment.name!r}, {self.operation!r}, {self.target!r})"

    def skipped(self, reason: str, *, interrupted: bool = False) -> Result:
        """This call's result when it is not run (interrupted, or an earlier step failed).

        ``interrupted``: the run was stopped before the call started; the
        result's ``data.interrupted`` says so, for reports that tell an
        interruption from a planned skip (JUnit's errors). A discovered
        deployment's platform status is in ``data.deployment_status``.
        """
        data: dict[str, Any] = {"interrupted": True} if interrupted else {}
        if self.deployment.status is not None:
            data["deployment_status"] = self.deployment.status
        return Result(
            deployment=self.deployment.name,
            operation=self.operation,
            target=self.target,
            outcome=Outcome.SKIPPED,
            error=reason,
            data=data,
        )


@dataclass(frozen=True, slots=True)
class PlannedRequest:
    """One row of ``--dry-run`` output."""

    deployment: str
    api: str
    method: str
    path: str
    body: Any


@dataclass(frozen=True, slots=True)
class Plan:
    """An operation's calls, in order. The engine records one result for each."""

    operation: str
    calls: tuple[Call, ...]
    mutating: bool = False

    def __len__(self) -> int:
        return len(self.calls)

    def __repr__(self) -> str:
        return f"Plan({self.operation!r}, {len(self.calls)} calls)"
