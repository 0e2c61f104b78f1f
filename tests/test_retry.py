"""Retry policy: bounds on backoff and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet.retry import RetryPolicy, parse_retry_after


@given(
    attempt=st.integers(min_value=1, max_value=60),
    seed=st.integers(),
    base=st.floats(min_value=0.01, max_value=2),
    cap_factor=st.floats(min_value=1, max_value=100),
)
def test_backoff_is_within_zero_and_the_capped_exponential(
    attempt: int, seed: int, base: float, cap_factor: float
) -> None:
    """Full jitter: 0 <= delay <= min(cap, base * 2**(attempt-1)), for every attempt."""
    policy = RetryPolicy(base_s=base, cap_s=base * cap_factor)
    delay = policy.backoff(attempt, random.Random(seed))
    assert 0 <= delay <= min(policy.cap_s, base * 2 ** (attempt - 1))


@given(retry_after=st.floats(min_value=0, max_value=1e9), seed=st.integers())
def test_retry_after_wins_when_longer_but_is_capped(retry_after: float, seed: int) -> None:
    """The server's Retry-After is honoured, never beyond max_retry_after_s."""
    policy = RetryPolicy()
    delay = policy.delay(1, random.Random(seed), retry_after=retry_after)
    assert delay >= min(retry_after, policy.max_retry_after_s)
    assert delay <= max(policy.max_retry_after_s, policy.cap_s)


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
    """Negative retries or an inverted cap are refused at construction."""
    with pytest.raises(ValueError, match="retries"):
        RetryPolicy(retries=-1)
    with pytest.raises(ValueError, match="base_s"):
        RetryPolicy(base_s=2, cap_s=1)
