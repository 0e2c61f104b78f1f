"""The json report: ``{"summary": {...}, "results": [...]}`` (README, "Reports and exit codes")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TextIO

from airfleet.results import Result, Summary


def render_json(summary: Summary, results: Sequence[Result], out: TextIO) -> None:
    """Write the report as ``json.dumps(report, indent=2)`` would, one result at a time.

    Dumping the whole report at once holds every result as a dict and the
    text of all of them at the same time: at 10,000 deployments that was the
    CLI's peak memory. Written in pieces, only one result's text is alive.
    """
    out.write('{\n  "summary": ')
    out.write(_dumps(summary.to_dict(), level=1))
    out.write(',\n  "results": [')
    for index, result in enumerate(results):
        out.write(",\n    " if index else "\n    ")
        out.write(_dumps(result.to_dict(), level=2))
    out.write("\n  ]\n}\n" if results else "]\n}\n")


def _dumps(value: Any, *, level: int) -> str:
    # json never writes a raw newline inside a string (it escapes them), so
    # every newline in its text starts a line, to be indented by the level.
    text = json.dumps(value, indent=2, default=str)
    return text.replace("\n", "\n" + "  " * level)
