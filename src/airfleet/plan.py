"""Plans: the list of calls an operation makes, and the sans-I/O protocol they speak.

A :class:`Call` is one unit of work on one deployment (deployment x operation x
target) and yields exactly one result. Its ``spec`` drives a *conversation*: a
generator that yields what it needs (:class:`Request`, a tuple of requests to
send concurrently, or a :class:`Pause`) and receives the answers. The engine
does all the I/O; specs and dialects never touch the network, so every
operation can be tested by feeding it answers.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from airfleet.inventory import Deployment
from airfleet.results import Outcome, Result

if TYPE_CHECKING:
    from airfleet.dialects.base import Dialect

__all__ = [
    "Call",
    "Conversation",
    "Pause",
    "Plan",
    "PlannedRequest",
    "Request",
    "Response",
    "Spec",
    "Verdict",
]


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request, relative to the deployment URL (``path`` starts with ``/``).

    ``idempotent`` says whether the engine may resend it after an attempt that
    got no answer: reads and PATCHes are; a trigger POST is because it always
    carries its own ``dag_run_id``.
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    json: Any = None
    idempotent: bool = True
    auth: bool = True

    def __repr__(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"Request({self.method} {self.path}{'?' + query if query else ''})"


# Response and Verdict are messages made once per request and per call on the
# hot path: plain slotted classes (treat them as read-only), since a frozen
# dataclass's __init__ costs about three times as much.
@dataclass(slots=True)
class Response:
    """The final answer to one :class:`Request`, after the engine's retries.

    ``uncertain_before`` is true when an earlier attempt may have reached the
    server without us seeing its answer (no answer, a reset, a 502/503/504), so
    a 409 now may be our own earlier attempt. ``at`` is the engine clock's time
    of the answer, for operations that keep deadlines.
    """

    status: int
    body: Any
    text: str = ""
    attempts: int = 1
    uncertain_before: bool = False
    at: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True, slots=True)
class Pause:
    """Sleep without holding any slot (between polls of ``--wait``)."""

    seconds: float


@dataclass(slots=True)
class Verdict:
    """What a conversation concluded: the outcome and the report's ``data``."""

    outcome: Outcome
    data: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    status: int | None = None


Step = Request | tuple[Request, ...] | Pause
Answer = Response | tuple[Response, ...] | None
Conversation = Generator[Step, Answer, Verdict]


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

    def skipped(self, reason: str) -> Result:
        """This call's result when it is not run (interrupted, or an earlier step failed)."""
        return Result(
            deployment=self.deployment.name,
            operation=self.operation,
            target=self.target,
            outcome=Outcome.SKIPPED,
            error=reason,
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
