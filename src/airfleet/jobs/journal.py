"""The journal: every result of a job run, appended and fsync'd as it arrives.

One JSONL file per run under ``<state dir>/<job>/``. Records:
``{"type": "run", ...}`` first (run key, window, run ids), then one
``{"type": "call", "step", "key", "result"}`` per finished call, and
``{"type": "end", ...}`` when the run completes. A run without an end record
was interrupted; ``--resume`` continues it. A torn last line (a crash mid
write) is ignored on reading.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from airfleet.results import Result

__all__ = ["Journal", "JournalRun", "call_key", "read_runs"]


def call_key(result_or_call: Any) -> str:
    """What identifies a call across runs: deployment, operation and target."""
    if isinstance(result_or_call, Result):
        return f"{result_or_call.deployment}|{result_or_call.operation}|{result_or_call.target}"
    call = result_or_call
    return f"{call.deployment.name}|{call.operation}|{call.target}"


@dataclass
class JournalRun:
    """What a journal file says about one run."""

    path: Path
    header: dict[str, Any]
    calls: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    end: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self.end is not None

    def done(self, step: int) -> set[str]:
        """Keys of calls of ``step`` that ended ok (a resume skips them)."""
        return {key for (s, key), r in self.calls.items() if s == step and r["outcome"] == "ok"}


class Journal:
    """Appends records to one run's file; each is flushed and fsync'd before returning."""

    def __init__(self, path: Path, header: dict[str, Any], *, resume: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
        os.chmod(path, 0o600)
        if not resume:
            self._write({"type": "run", **header})
        else:
            self._write({"type": "resume", "pid": header.get("pid")})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def record(self, step: int, result: Result) -> None:
        self._write(
            {"type": "call", "step": step, "key": call_key(result), "result": result.to_dict()}
        )

    def finish(self, record: dict[str, Any]) -> None:
        self._write({"type": "end", **record})

    def close(self) -> None:
        self._file.close()


def read_run(path: Path) -> JournalRun | None:
    header: dict[str, Any] | None = None
    run: JournalRun | None = None
    for record in _records(path):
        kind = record.get("type")
        if kind == "run" and header is None:
            header = record
            run = JournalRun(path, header)
        elif run is None:
            continue
        elif kind == "call":
            run.calls[(int(record["step"]), str(record["key"]))] = record["result"]
        elif kind == "end":
            run.end = record
    return run


def read_runs(job_dir: Path) -> list[JournalRun]:
    """Every run of a job, oldest first."""
    if not job_dir.is_dir():
        return []
    runs = [read_run(p) for p in sorted(job_dir.glob("*.jsonl"))]
    return sorted((r for r in runs if r is not None), key=lambda r: str(r.header.get("started_at")))


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, encoding="utf-8") as file:
        for line in file:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line from a crash mid-write
            if isinstance(record, dict):
                yield record
