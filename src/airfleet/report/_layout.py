"""Fitting a table to the terminal: every column readable, or one block per result.

rich, left to itself, shrinks every column of a table too wide for the
terminal, down to a letter or two: a deployment name cut to ``prod-…``, an
error one word a line. Here the widths are chosen first. Identifiers and
short values keep their natural width; free text wraps, but never narrower
than a readable minimum. When even that does not fit, the same cells are
printed as a stack of blocks (a heading line, then one ``name  value`` line
per field), which fits any width and cuts nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

__all__ = ["GAP", "TEXT_MIN", "Column", "Shape", "print_fitted", "widths"]

# Free text narrower than this is one short word a line: hard to read.
TEXT_MIN = 16
# Cells between two columns (the table draws no vertical lines).
GAP = 2

Kind = Literal["key", "short", "text"]
Row = Sequence[Text]
Block = Sequence[Row]


@dataclass(frozen=True, slots=True)
class Column:
    """One column of a terminal table.

    ``kind``: ``key``, an identifier (a deployment name) shown whole on one
    line and never cut; ``short``, a short value (an outcome, a count) on
    one line; ``text``, text that wraps within at least ``min_width``
    cells (its longest line, if that is shorter). ``prose``: a text column
    of sentences (an error), which gets room only after the other text
    columns (DAG ids, dates) have all they need, so a name is broken only
    when it must be.
    """

    name: str
    kind: Kind = "text"
    justify: Literal["left", "right"] = "left"
    min_width: int = TEXT_MIN
    prose: bool = False


def _natural(column: Column, rows: Sequence[Row], index: int) -> int:
    texts = [column.name, *(row[index].plain for row in rows)]
    return max(cell_len(line) for text in texts for line in text.split("\n"))


def widths(columns: Sequence[Column], rows: Sequence[Row], *, width: int) -> list[int] | None:
    """Each column's width so the table fits ``width`` cells, or None if it cannot.

    Keys and short values get their natural width; text columns get at
    least ``min_width`` (or all they need, if less), then share what room
    is left evenly, none past its natural width (water-filling): first the
    columns that are not prose, then the prose.
    """
    natural = [_natural(column, rows, i) for i, column in enumerate(columns)]
    out = [
        min(n, column.min_width) if column.kind == "text" else n
        for column, n in zip(columns, natural, strict=True)
    ]
    spare = width - GAP * (len(columns) - 1) - sum(out)
    if spare < 0:
        return None
    for prose in (False, True):
        wanting = [i for i, c in enumerate(columns) if c.kind == "text" and c.prose is prose]
        while spare > 0:
            wanting = [i for i in wanting if out[i] < natural[i]]
            if not wanting:
                break
            share = max(1, spare // len(wanting))
            for i in wanting:
                grant = min(share, natural[i] - out[i], spare)
                out[i] += grant
                spare -= grant
    return out


@dataclass(frozen=True, slots=True)
class Shape:
    """Columns and, for each result, its rows of cells."""

    columns: Sequence[Column]
    blocks: Sequence[Block]

    @property
    def rows(self) -> list[Row]:
        return [row for block in self.blocks for row in block]


def print_fitted(
    console: Console,
    shapes: Sequence[Shape],
    *,
    title: str | None = None,
    caption: str | None = None,
) -> None:
    """Print the first of ``shapes`` that fits ``console`` as a table; if none
    fits, the first one stacked, one block per result."""
    for shape in shapes:
        fitted = widths(shape.columns, shape.rows, width=console.width)
        if fitted is not None:
            _print_table(console, shape, fitted, title=title, caption=caption)
            return
    _print_stacked(console, shapes[0].columns, shapes[0].blocks, title=title, caption=caption)


def _print_table(
    console: Console,
    shape: Shape,
    fitted: Sequence[int],
    *,
    title: str | None,
    caption: str | None,
) -> None:
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for column, cells in zip(shape.columns, fitted, strict=True):
        table.add_column(
            column.name,
            width=cells,
            justify=column.justify,
            no_wrap=column.kind != "text",
            overflow="fold",
        )
    for row in shape.rows:
        table.add_row(*row)
    console.print(table)
    if caption:
        # Below the table, not as its caption: a caption wraps at the
        # table's width, which may be much less than the terminal's.
        console.print(caption, markup=False, highlight=False)


def _print_stacked(
    console: Console,
    columns: Sequence[Column],
    blocks: Sequence[Block],
    *,
    title: str | None,
    caption: str | None,
) -> None:
    keys = [i for i, column in enumerate(columns) if column.kind == "key"] or [0]
    fields = [i for i in range(len(columns)) if i not in keys]
    label = max((cell_len(columns[i].name) for i in fields), default=0)
    if title:
        console.print(Text(title, style="italic"), soft_wrap=True)
    for block in blocks:
        if not block:
            continue
        # soft_wrap: the heading is never folded, so a name longer than the
        # terminal is still one whole string (the terminal wraps it).
        console.print(Text("  ").join(block[0][i] for i in keys), soft_wrap=True)
        grid = Table.grid(padding=(0, GAP))
        grid.add_column(width=label, no_wrap=True)
        grid.add_column(overflow="fold")
        for n, row in enumerate(block):
            if n:
                grid.add_row("", "")  # the rows of one listing, apart
            for i in fields:
                if row[i].plain:
                    grid.add_row(Text(columns[i].name, style="dim"), row[i])
        if grid.rows:
            console.print(Padding(grid, (0, 0, 0, GAP)))
    if caption:
        console.print(caption, markup=False, highlight=False)
