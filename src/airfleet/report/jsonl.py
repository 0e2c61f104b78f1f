"""jsonl: one result per line as calls finish, the summary as the last line."""

from __future__ import annotations

import json
from typing import TextIO

from airfleet.results import Result, Summary


class JsonlWriter:
    """Streams results; each line is flushed so a reader sees it at once."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write_result(self, result: Result) -> None:
        self._out.write(json.dumps(result.to_dict(), default=str) + "\n")
        self._out.flush()

    def write_summary(self, summary: Summary) -> None:
        self._out.write(json.dumps({"summary": summary.to_dict()}, default=str) + "\n")
        self._out.flush()
