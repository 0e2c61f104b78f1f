"""The one retry policy: for API requests and token fetches alike (pure).

As stamina defines retries: bounded by attempts (``retries`` + 1) and by total
time; exponential backoff plus a random jitter (stamina's form: each wait is at
least the exponential, so a short outage is waited out rather than raced
through by unlucky draws); a ``Retry-After`` from the server wins when it asks
for longer; the last failure is what the caller sees.
:meth:`RetryPolicy.delay` is the whole decision: the wait before the next
attempt, or None when there is to be no next attempt.

What is transient:

* no answer, when the transport says a retry can help (a reset, a refused
  connection, a timeout) and either the request is idempotent or nothing was
  sent; a certificate that does not verify, a name that does not resolve or a
  malformed answer is final;
* 429, 502, 503 and 504 (500 is not: it usually means a bug on the server
  that the same request meets again, and retrying it hides the bug behind
  "gave up after 5 attempts"). 502-504 may have acted, so only an idempotent
  request is resent after one.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from airfleet.errors import TransportError
from airfleet.protocol import UNCERTAIN_STATUSES

__all__ = ["RETRY_STATUSES", "UNCERTAIN_STATUSES", "RetryPolicy", "parse_retry_after"]

RETRY_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long one request is tried.

    ``timeout_s`` is the per-attempt timeout (the transport enforces it); the
    total time, backoff included, is at most ``(retries + 1) * timeout_s``:
    what every attempt timing out would take.
    """

    retries: int = 4
    timeout_s: float = 30.0
    base_s: float = 0.25
    jitter_s: float = 0.25
    cap_s: float = 8.0
    max_retry_after_s: float = 60.0

    def __post_init__(self) -> None:
        if self.retries < 0:
            raise ValueError("retries must be >= 0")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("need 0 < base_s <= cap_s")
        if self.jitter_s < 0:
            raise ValueError("jitter_s must be >= 0")

    @property
    def max_attempts(self) -> int:
        return self.retries + 1

    @property
    def total_s(self) -> float:
        return self.max_attempts * self.timeout_s

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """The wait after attempt ``attempt`` (counted from 1):
        ``min(cap, base * 2**(attempt - 1) + uniform(0, jitter))``."""
        exponential = self.base_s * 2.0 ** min(attempt - 1, 60)
        return min(self.cap_s, exponential + rng.uniform(0, self.jitter_s))

    def delay(
        self,
        failure: TransportError | int,
        *,
        attempt: int,
        elapsed_s: float,
        idempotent: bool,
        rng: random.Random,
        headers: Mapping[str, str] | None = None,
    ) -> float | None:
        """The wait before attempt ``attempt + 1``, or None: ``failure`` is final.

        ``failure`` is the transport's error, or the status of an answer that
        was not success (``headers`` its headers, for ``Retry-After``).
        ``elapsed_s`` is the time since the first attempt started.
        """
        if attempt > self.retries:
            return None
        if isinstance(failure, TransportError):
            if not failure.transient or (failure.may_have_acted and not idempotent):
                return None
            wait = self.backoff(attempt, rng)
        else:
            if failure not in RETRY_STATUSES or (failure in UNCERTAIN_STATUSES and not idempotent):
                return None
            wait = self.backoff(attempt, rng)
            asked = parse_retry_after(headers.get("retry-after") if headers else None)
            if asked is not None:
                wait = max(wait, min(asked, self.max_retry_after_s))
        if elapsed_s + wait >= self.total_s:
            return None
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
