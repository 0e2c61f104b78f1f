"""CSV: one row per result, with the operation's own columns flattened in."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from typing import TextIO

from airfleet.report._rows import GENERIC, columns_for
from airfleet.results import Result, Summary

BASE = ("deployment", "operation", "target", "outcome", "status", "attempts", "latency_ms", "error")


def render_csv(summary: Summary, results: Sequence[Result], out: TextIO) -> None:
    columns = columns_for(summary.operation)
    extra = tuple(n for n in columns.names if n != "deployment") if columns is not GENERIC else ()
    # RFC 4180 line ends: fields holding \r or \n then get quoted.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(BASE + extra)
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
        ]
        if not extra:
            writer.writerow(base)
            continue
        rows = columns.rows(result) if result.outcome.value == "ok" else []
        for row in rows or [[result.deployment] + [""] * len(extra)]:
            writer.writerow(base + row[1:])
