"""CSV: one row per result, with the operation's own columns flattened in.

A job's report has a ``step`` column after the base columns (the step id
of each call); other reports have none, so their columns stay as they were.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import TextIO

from airfleet.report._rows import GENERIC, columns_for, has_steps
from airfleet.results import Result, Summary

BASE = ("deployment", "operation", "target", "outcome", "status", "attempts", "latency_ms", "error")


# Table columns that only restate a base column (the table's short names for
# target and latency_ms): CSV keeps one column per fact.
_RESTATED = frozenset(BASE) | {"dag", "ms"}


def render_csv(summary: Summary, results: Sequence[Result], out: TextIO) -> None:
    """Write a header and one row per result (per listed item, for listings)."""
    steps = has_steps(results)
    columns = columns_for(summary.operation)
    keep = (
        [i for i, n in enumerate(columns.names) if i > 0 and n not in _RESTATED]
        if columns is not GENERIC
        else []
    )
    extra = tuple(columns.names[i] for i in keep)
    # RFC 4180 line ends: fields holding \r or \n then get quoted.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BASE + (("step",) if steps else ()) + extra)
    for result in results:
        base = [
            result.deployment,
            result.operation,
            result.target,
            result.outcome.value,
            "" if result.status is None else str(result.status),
            str(result.attempts),
            f"{result.latency_ms:.1f}",
            result.error or "",
            *([result.step or ""] if steps else []),
        ]
        if not extra:
            writer.writerow(base)
            continue
        # A failed listing's row has blank data cells (its reason is the
        # error column), so every result's rows can be written.
        for row in columns.rows(result) or [[""] * len(columns.names)]:
            writer.writerow(base + [row[i] for i in keep])
