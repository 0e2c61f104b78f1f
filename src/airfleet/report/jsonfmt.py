"""The json report: ``{"summary": {...}, "results": [...]}`` (README, "Reports and exit codes")."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TextIO

from airfleet.results import Result, Summary


def render_json(summary: Summary, results: Sequence[Result], out: TextIO) -> None:
    payload = {"summary": summary.to_dict(), "results": [r.to_dict() for r in results]}
    out.write(json.dumps(payload, indent=2, default=str) + "\n")
