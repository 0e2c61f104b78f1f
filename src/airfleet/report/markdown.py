"""Markdown: a heading, the summary and the results, fit for a CI step summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from airfleet.report._rows import columns_for, has_steps, ordered, shown, summary_line
from airfleet.results import Result, Summary


def _cell(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _table(names: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(n) for n in names) + " |"]
    lines.append("|" + "|".join(" --- " for _ in names) + "|")
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def render_markdown(summary: Summary, results: Sequence[Result], out: TextIO) -> None:
    """Write the heading, the summary table and the results (a step column for a job)."""
    s = summary
    verdict = "all ok" if s.failed == 0 else f"{s.failed} failed"
    lines = [f"## airfleet {s.operation}: {verdict}", "", summary_line(s), ""]
    lines += _table(
        ("total", "ok", "failed", "skipped", "requests", "retries", "duration (s)"),
        [
            [
                str(s.total),
                str(s.ok),
                str(s.failed),
                str(s.skipped),
                str(s.requests),
                str(s.retries),
                f"{s.duration_s:.2f}",
            ]
        ],
    )
    columns = columns_for(s.operation, steps=has_steps(results))
    rows = [row for result in ordered(results) for row in columns.rows(result)]
    # Columns no row fills (no call failed: no error column) are left out.
    keep = shown(columns.names, rows)
    names = [columns.names[i] for i in keep]
    lines += ["", *_table(names, [[row[i] for i in keep] for row in rows])] if rows else []
    out.write("\n".join(lines) + "\n")
