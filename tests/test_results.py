"""Results: frozen records, and a summary that counts each one once."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet.results import Collector, Outcome, Result


def test_a_result_is_frozen() -> None:
    """A recorded result cannot be changed after the fact."""
    made = Result("d", "pools", "", Outcome.OK, 200, 1, 1.0, None, {}, 1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.status = 500  # type: ignore[misc]


@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(Outcome), st.floats(0, 1e4)),
        max_size=40,
    )
)
def test_summary_counts_every_result_once(calls: list[tuple[str, Outcome, float]]) -> None:
    collector = Collector("pools")
    for name, outcome, latency in calls:
        collector.add(Result(name, "pools", "", outcome, 200, 1, latency))
    summary = collector.summary(duration_s=1.0)
    expected: dict[str, dict[str, int]] = {}
    for name, outcome, _ in calls:
        per = expected.setdefault(name, {})
        per[outcome.value] = per.get(outcome.value, 0) + 1
    assert summary.by_deployment == expected
    assert summary.to_dict()["by_deployment"] == expected
    assert (summary.ok, summary.failed, summary.skipped) == tuple(
        sum(o is want for _, o, _ in calls) for want in Outcome
    )
    assert summary.failed_deployments == tuple(
        sorted({n for n, o, _ in calls if o is Outcome.FAILED})
    )
    timed = [lat for _, o, lat in calls if o is not Outcome.SKIPPED]
    assert summary.latency_max_ms == (max(timed) if timed else 0.0)
