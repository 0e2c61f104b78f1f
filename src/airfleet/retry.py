"""Retry policy: what is safe to retry, and how long to wait (pure functions).

Bounded by attempts (``retries`` + 1) and by total time; backoff is
exponential with full jitter; a ``Retry-After`` from the server wins when it
asks for longer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["RETRY_STATUSES", "RetryPolicy", "parse_retry_after"]

# 500 is left out on purpose: it usually means a bug on the server that a
# second identical request will meet again.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# Statuses after which an earlier attempt may still have acted on the server.
UNCERTAIN_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many times and how long to retry one request.

    ``sleep=False`` is the test switch: delays are computed but not slept.
    """

    retries: int = 4
    base_s: float = 0.25
    cap_s: float = 8.0
    max_retry_after_s: float = 60.0
    total_s: float = 120.0
    sleep: bool = True

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full-jitter delay before attempt ``attempt + 1`` (``attempt`` counts from 1)."""
        ceiling = min(self.cap_s, self.base_s * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)

    def delay(
        self,
        attempt: int,
        rng: random.Random,
        *,
        retry_after: float | None = None,
    ) -> float:
        """The wait before the next attempt: jittered backoff, or the server's ask if longer."""
        wait = self.backoff(attempt, rng)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after_s))
        return wait


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN check
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now or datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())
