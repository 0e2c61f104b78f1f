"""Reports: one summary and every result, as a table, JSON, JSONL, JUnit, Markdown or CSV."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TextIO

from rich.console import Console

from airfleet.report.csvfmt import render_csv
from airfleet.report.jsonfmt import render_json
from airfleet.report.jsonl import JsonlWriter
from airfleet.report.junit import render_junit
from airfleet.report.markdown import render_markdown
from airfleet.report.table import render_table
from airfleet.results import Result, Summary

__all__ = ["FORMATS", "JsonlWriter", "ReportFormat", "default_format", "render"]

ReportFormat = Literal["table", "json", "jsonl", "junit", "markdown", "csv"]
FORMATS: tuple[ReportFormat, ...] = ("table", "json", "jsonl", "junit", "markdown", "csv")


def default_format(*, is_terminal: bool) -> ReportFormat:
    """A table for people at a terminal; JSON for pipes and files."""
    return "table" if is_terminal else "json"


def render(
    fmt: ReportFormat,
    *,
    summary: Summary,
    results: Sequence[Result],
    out: TextIO,
    console: Console | None = None,
) -> None:
    """Write the whole report in ``fmt``."""
    if fmt == "table":
        render_table(summary, results, console=console or Console(file=out))
    elif fmt == "json":
        render_json(summary, results, out)
    elif fmt == "jsonl":
        writer = JsonlWriter(out)
        for result in results:
            writer.write_result(result)
        writer.write_summary(summary)
    elif fmt == "junit":
        render_junit(summary, results, out)
    elif fmt == "markdown":
        render_markdown(summary, results, out)
    elif fmt == "csv":
        render_csv(summary, results, out)
    else:  # pragma: no cover - click restricts the choice
        raise ValueError(f"unknown report format {fmt!r}")
