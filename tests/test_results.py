"""Results: the engine's fast constructor makes exactly what Result() makes."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet.results import Collector, Outcome, Result, new_result

text = st.text(max_size=20)


@given(
    st.tuples(
        text,
        text,
        text,
        st.sampled_from(Outcome),
        st.none() | st.integers(100, 599),
        st.integers(0, 10),
        st.floats(allow_nan=False),
        st.none() | text,
        st.dictionaries(text, st.integers(), max_size=3),
        st.integers(0, 10),
    )
)
def test_new_result_is_result_with_the_same_fields(values: tuple[Any, ...]) -> None:
    made = new_result(*values)
    assert type(made) is Result
    assert made == Result(*values)
    assert dataclasses.astuple(made) == dataclasses.astuple(Result(*values))


def test_a_result_made_fast_is_still_frozen() -> None:
    made = new_result("d", "pools", "", Outcome.OK, 200, 1, 1.0, None, {}, 1)
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
