"""The terminal table (rich), built from data, ending with a one-line summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from airfleet.report._rows import columns_for, fleet_totals, ordered, run_ids, summary_line
from airfleet.results import Outcome, Result, Summary

# Past this many results, ok ones fold into per-deployment counts: a table of
# 10,000 rows helps nobody; the failures are what a person must see.
FOLD_OVER = 200
STYLE = {Outcome.OK: "green", Outcome.FAILED: "red", Outcome.SKIPPED: "yellow"}


def render_table(summary: Summary, results: Sequence[Result], *, console: Console) -> None:
    columns = columns_for(summary.operation)
    shown = ordered(results)
    folded: Counter[str] = Counter()
    if len(results) > FOLD_OVER:
        folded.update(r.deployment for r in shown if r.outcome is Outcome.OK)
        shown = [r for r in shown if r.outcome is not Outcome.OK]
    ids = run_ids(results) if summary.operation == "trigger" else []
    caption = f"run id: {ids[0]}" if len(ids) == 1 else None
    table = Table(
        title=f"airfleet {summary.operation}",
        title_justify="left",
        caption=caption,
        caption_justify="left",
    )
    last = len(columns.names) - 1
    for index, name in enumerate(columns.names):
        # Identifiers stay whole; only the free-text last column wraps.
        if index == last:
            table.add_column(name, overflow="fold", ratio=1, min_width=8)
        else:
            table.add_column(name, no_wrap=True)
    generic = "outcome" in columns.names
    for result in shown:
        style = STYLE[result.outcome]
        for row in columns.rows(result):
            cells = [Text(cell) for cell in row]
            if generic:
                cells[2].stylize(style)
            elif result.outcome is not Outcome.OK:
                for cell in cells[1:]:
                    cell.stylize(style)
            table.add_row(*cells)
    if table.rows:
        console.print(table)
    if folded:
        console.print(
            f"{sum(folded.values())} ok calls on {len(folded)} deployments not listed "
            f"(more than {FOLD_OVER} results); use --report json or csv for every row"
        )
    totals = fleet_totals(summary.operation, results)
    if totals:
        console.print(totals)
    colour = "green" if summary.failed == 0 else "red"
    console.print(Text(summary_line(summary), style=f"bold {colour}"))
