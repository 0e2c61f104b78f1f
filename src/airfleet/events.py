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
    "AttemptFailed",
    "CallFinished",
    "CallStarted",
    "Event",
    "Listener",
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
class AttemptFailed:
    """One request attempt failed and will be retried after ``delay_s``."""

    deployment: str
    method: str
    path: str
    attempt: int
    reason: str
    delay_s: float


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


Event = RunStarted | CallStarted | AttemptFailed | CallFinished | TokenFetched | RunFinished
Listener = Callable[[Event], None]
