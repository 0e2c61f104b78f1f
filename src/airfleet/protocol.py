"""The request/answer protocol a call's conversation speaks with the engine (sans-I/O).

A conversation is a generator: it yields what it needs (a :class:`Request`, a
tuple of requests to send at once, or a :class:`Pause`), receives the answers
(:class:`Response`), and returns a :class:`Verdict`. Dialects build requests
and read answers in these terms; the plan and the engine carry them. Nothing
here does I/O.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from airfleet.results import Outcome

__all__ = [
    "UNCERTAIN_STATUSES",
    "Answer",
    "CallInterrupted",
    "Conversation",
    "Pause",
    "Request",
    "Response",
    "Step",
    "Verdict",
]

# Answers after which the request may still have acted on the server (a
# gateway timed out waiting for it, say): the retry policy and the trigger's
# reading of its answer both go by this.
UNCERTAIN_STATUSES = frozenset({502, 503, 504})


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
    truncated: bool = False  # the body was cut at the transport's size cap

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


class CallInterrupted(Exception):
    """Thrown into a conversation whose call is cancelled (a stop's grace ran out).

    A conversation that knows what already happened (a trigger whose run was
    made, now being waited for) catches it and returns its verdict at once,
    without yielding again; one that does not lets it pass, and the call is
    recorded as interrupted with its effect unknown. Not an
    ``AirfleetError``, so handlers of request failures never take it for one.
    """
