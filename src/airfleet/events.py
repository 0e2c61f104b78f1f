"""Engine events: what happened, for whoever listens (logs, progress bar, tests).

The engine calls every listener synchronously with each event; a listener must
be quick and must not raise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from airfleet.plan import Call
from airfleet.results import Result

__all__ = [
    "AttemptFinished",
    "CallFinished",
    "CallStarted",
    "DialectDetected",
    "Event",
    "Listener",
    "ReAuthenticating",
    "RunFinished",
    "RunStarted",
    "TokenFetched",
]


@dataclass(frozen=True, slots=True)
class RunStarted:
    operation: str
    total: int


@dataclass(frozen=True, slots=True)
class CallStarted:
    call: Call


@dataclass(frozen=True, slots=True)
class AttemptFinished:
    """One attempt of one request ended (every request the servers see, token
    fetches and detection included).

    ``status`` is the answer's, or None when there was none (``reason`` says
    why); ``delay_s`` is the wait before the next attempt, None when the
    request is not retried. ``deployment`` is None for a token service's
    request, and ``path`` never holds a query string or a secret.
    """

    deployment: str | None
    method: str
    path: str
    attempt: int
    status: int | None
    reason: str | None
    delay_s: float | None

    @property
    def retrying(self) -> bool:
        return self.delay_s is not None


@dataclass(frozen=True, slots=True)
class ReAuthenticating:
    """``deployment`` refused credential ``key`` (HTTP ``status``): one more try, fresh."""

    deployment: str
    key: str
    status: int


@dataclass(frozen=True, slots=True)
class DialectDetected:
    """Detection settled which API ``deployment`` speaks (``error`` if it could not)."""

    deployment: str
    api: str | None
    version: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class CallFinished:
    call: Call
    result: Result


@dataclass(frozen=True, slots=True)
class TokenFetched:
    """A token was fetched for credential ``key`` (never the token itself)."""

    key: str
    duration_s: float


@dataclass(frozen=True, slots=True)
class RunFinished:
    operation: str
    ok: int
    failed: int
    skipped: int
    duration_s: float


Event = (
    RunStarted
    | CallStarted
    | AttemptFinished
    | ReAuthenticating
    | DialectDetected
    | CallFinished
    | TokenFetched
    | RunFinished
)
Listener = Callable[[Event], None]
