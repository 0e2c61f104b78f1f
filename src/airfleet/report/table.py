"""The terminal table (rich), built from data, ending with a one-line summary.

Deployment names and step ids are never cut; a failed call's reason has its
own column; the table fits the console or is printed as one block per
result (:mod:`airfleet.report._layout`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from rich.console import Console
from rich.text import Text

from airfleet.report._layout import Column, Shape, print_fitted
from airfleet.report._rows import (
    KEYS,
    Row,
    columns_for,
    fleet_totals,
    has_steps,
    ordered,
    run_ids,
    shown,
    summary_line,
)
from airfleet.results import Outcome, Result, Summary

__all__ = ["FOLD_OVER", "render_table"]

# Past this many results, ok ones fold into per-deployment counts: a table of
# 10,000 rows helps nobody; the failures are what a person must see.
FOLD_OVER = 200
STYLE = {Outcome.OK: "green", Outcome.FAILED: "red", Outcome.SKIPPED: "yellow"}
# Where a narrow table puts the error: under what the result says.
_MERGE_INTO = ("note", "detail", "problems")


def _caption(operation: str, results: Sequence[Result]) -> str | None:
    """The run id and logical date a trigger gave every deployment, when there is one."""
    if operation != "trigger":
        return None
    ids = run_ids(results)
    dates = {r.data["logical_date"] for r in results if r.data.get("logical_date")}
    said = [f"run id: {ids[0]}"] if len(ids) == 1 else []
    said += [f"logical date: {next(iter(dates))}"] if len(dates) == 1 else []
    return "; ".join(said) or None


def _rows_of(
    names: Sequence[str], make: Callable[[Result], list[Row]], result: Result
) -> list[Row]:
    rows = make(result)
    if rows:
        return rows
    # A listing with nothing in it still shows its deployment.
    row = [
        result.deployment if name == "deployment" else (result.step or "") if name == "step" else ""
        for name in names
    ]
    row[next(i for i, name in enumerate(names) if name not in KEYS)] = "(none)"
    return [row]


def _styled(names: Sequence[str], cells: Sequence[str], result: Result) -> list[Text]:
    """The outcome, and a failed or skipped call's reason, in the outcome's colour."""
    texts = [Text(cell) for cell in cells]
    for name, text in zip(names, texts, strict=True):
        if name == "outcome" or (name == "error" and not result.ok):
            text.stylize(STYLE[result.outcome])
    return texts


def _shape(columns: Sequence[Column], blocks: Sequence[Sequence[Sequence[Text]]]) -> Shape:
    """Only the columns some row fills (identifiers always)."""
    rows = [[text.plain for text in row] for block in blocks for row in block]
    keep = shown([c.name for c in columns], rows)
    return Shape(
        [columns[i] for i in keep],
        [[[row[i] for i in keep] for row in block] for block in blocks],
    )


def _merged(columns: Sequence[Column], blocks: Sequence[Sequence[Sequence[Text]]]) -> Shape | None:
    """The same with the error under the note (or detail): one column fewer, for a
    narrow terminal."""
    names = [c.name for c in columns]
    into = next((names.index(n) for n in _MERGE_INTO if n in names), None)
    if into is None or "error" not in names:
        return None
    error = names.index("error")

    def merge(row: Sequence[Text]) -> list[Text]:
        cells = list(row)
        parts = [text for text in (cells[into], cells[error]) if text.plain]
        cells[into] = Text("\n").join(parts)
        del cells[error]
        return cells

    rest = [c for i, c in enumerate(columns) if i != error]
    return _shape(rest, [[merge(row) for row in block] for block in blocks])


def render_table(summary: Summary, results: Sequence[Result], *, console: Console) -> None:
    """Print the results as a table fitted to ``console``, then the summary line."""
    columns = columns_for(summary.operation, steps=has_steps(results))
    listed = ordered(results)
    folded: Counter[str] = Counter()
    if len(results) > FOLD_OVER:
        folded.update(r.deployment for r in listed if r.outcome is Outcome.OK)
        listed = [r for r in listed if r.outcome is not Outcome.OK]
    blocks = [
        [
            _styled(columns.names, row, result)
            for row in _rows_of(columns.names, columns.rows, result)
        ]
        for result in listed
    ]
    if blocks:
        layout = columns.layout()
        merged = _merged(layout, blocks)
        print_fitted(
            console,
            [_shape(layout, blocks), *([merged] if merged else [])],
            title=f"airfleet {summary.operation}",
            caption=_caption(summary.operation, results),
        )
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
