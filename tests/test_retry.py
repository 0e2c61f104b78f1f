"""Retry policy: bounds on backoff and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet import errors
from airfleet.errors import ConnectError, TransportError
from airfleet.retry import RetryPolicy, parse_retry_after


@given(
    attempt=st.integers(min_value=1, max_value=60),
    seed=st.integers(),
    base=st.floats(min_value=0.01, max_value=2),
    cap_factor=st.floats(min_value=1, max_value=100),
)
def test_backoff_grows_with_jitter_and_never_passes_the_cap(
    attempt: int, seed: int, base: float, cap_factor: float
) -> None:
    """The exponential is a floor (up to the cap); jitter adds at most jitter_s."""
    policy = RetryPolicy(base_s=base, cap_s=base * cap_factor)
    delay = policy.backoff(attempt, random.Random(seed))
    floor = min(policy.cap_s, base * 2 ** (attempt - 1))
    assert floor <= delay <= min(policy.cap_s, floor + policy.jitter_s)


@given(retry_after=st.floats(min_value=0, max_value=1e9), seed=st.integers())
def test_retry_after_wins_when_longer_but_is_capped(retry_after: float, seed: int) -> None:
    """The server's Retry-After is honoured, never beyond max_retry_after_s."""
    policy = RetryPolicy(timeout_s=100)
    delay = policy.delay(
        429,
        attempt=1,
        elapsed_s=0,
        idempotent=True,
        rng=random.Random(seed),
        headers={"retry-after": repr(retry_after)},
    )
    assert delay is not None
    assert delay >= min(retry_after, policy.max_retry_after_s)
    assert delay <= max(policy.max_retry_after_s, policy.cap_s)


FAILURES: list[TransportError | int] = [
    ConnectError("refused", may_have_acted=False),
    ConnectError("reset"),
    errors.TimeoutError("slow"),
    ConnectError("certificate verify failed", transient=False, may_have_acted=False),
    ConnectError("malformed status line", transient=False),
    *range(400, 600),
]


@given(
    failure=st.sampled_from(FAILURES),
    idempotent=st.booleans(),
    attempt=st.integers(min_value=1, max_value=10),
    retries=st.integers(min_value=0, max_value=10),
    elapsed=st.floats(min_value=0, max_value=200),
)
def test_what_is_retried_for_every_failure(
    failure: TransportError | int, idempotent: bool, attempt: int, retries: int, elapsed: float
) -> None:
    """Retried only when transient, within attempts and total time, and never
    when a non-idempotent request may have acted."""
    policy = RetryPolicy(retries=retries, timeout_s=10)
    delay = policy.delay(
        failure, attempt=attempt, elapsed_s=elapsed, idempotent=idempotent, rng=random.Random(0)
    )
    if isinstance(failure, TransportError):
        transient = failure.transient and (idempotent or not failure.may_have_acted)
    else:
        transient = failure in {429, 502, 503, 504} and (idempotent or failure == 429)
    within = attempt <= retries
    if not (transient and within):
        assert delay is None
    elif delay is not None:
        assert elapsed + delay < policy.total_s
    else:
        assert elapsed + policy.backoff(attempt, random.Random(0)) >= policy.total_s


def test_parse_retry_after_seconds_and_http_date() -> None:
    """Retry-After is delta-seconds or an HTTP date; junk is ignored."""
    now = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
    later = now + timedelta(seconds=30)
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(later.strftime("%a, %d %b %Y %H:%M:%S GMT"), now=now) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("nan") is None


def test_policy_rejects_nonsense() -> None:
    """Negative retries, a non-positive timeout or an inverted cap are refused."""
    with pytest.raises(ValueError, match="timeout_s"):
        RetryPolicy(timeout_s=0)
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="base_s"):
        RetryPolicy(base_s=2, cap_s=1)
