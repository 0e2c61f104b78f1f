"""The journal: every result of a job run, appended and fsync'd as it arrives.

One JSONL file per run under ``<state dir>/<job>/``. Records:
``{"type": "run", ...}`` first (job, window, run ids, planned calls), then one
``{"type": "call", "step", "key", "result"}`` per finished call, a
``{"type": "resume", ...}`` each time ``--resume`` continues the run, and
``{"type": "end", ...}`` when an invocation completes. A run without an end
record was killed; ``--resume`` continues it. A torn last line (a crash mid
write) is ignored on reading, and a resume first ends it with a newline so
the next record starts on a line of its own.

JSONL rather than SQLite: one append and one fsync per result, readable with
``tail -f`` and ``jq``, and a torn line costs at most the record being written.
Results carry no secrets (they are what the report shows), and the file is
created 0600 all the same.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from airfleet.errors import UsageError
from airfleet.plan import Call
from airfleet.results import Outcome, Result

__all__ = [
    "Journal",
    "JournalRun",
    "call_key",
    "read_run",
    "read_runs",
    "result_from_dict",
    "run_file_name",
]


def call_key(result_or_call: Result | Call) -> str:
    """What identifies a call within a step: deployment, operation and target."""
    if isinstance(result_or_call, Result):
        return f"{result_or_call.deployment}|{result_or_call.operation}|{result_or_call.target}"
    call = result_or_call
    return f"{call.deployment.name}|{call.operation}|{call.target}"


def result_from_dict(data: dict[str, Any]) -> Result:
    """A journaled result back as a :class:`Result` (the report's JSON shape)."""
    return Result(
        deployment=str(data["deployment"]),
        operation=str(data["operation"]),
        target=str(data["target"]),
        outcome=Outcome(data["outcome"]),
        status=data.get("status"),
        attempts=int(data.get("attempts") or 0),
        latency_ms=float(data.get("latency_ms") or 0.0),
        error=data.get("error"),
        data=dict(data.get("data") or {}),
        step=data.get("step"),
    )


@dataclass
class JournalRun:
    """What a journal file says about one run: its header, the last result of each call."""

    path: Path
    header: dict[str, Any]
    calls: dict[tuple[int, str], dict[str, Any]] = field(default_factory=dict)
    end: dict[str, Any] | None = None
    resumes: int = 0

    @property
    def finished(self) -> bool:
        """Ended, and not by an interruption."""
        return self.end is not None and not self.end.get("interrupted", False)

    @property
    def complete(self) -> bool:
        """Finished with every planned call ok: nothing left to resume."""
        planned = int(self.header.get("planned", 0))
        return self.finished and self.counts().get("ok", 0) >= planned

    @property
    def status(self) -> str:
        if self.end is None:
            return "killed"
        if self.end.get("interrupted"):
            return "interrupted"
        return "finished"

    def counts(self) -> dict[str, int]:
        """Outcomes of the last result of every call, plus ``missing`` (never recorded)."""
        out = {"ok": 0, "failed": 0, "skipped": 0}
        for result in self.calls.values():
            outcome = str(result.get("outcome"))
            out[outcome] = out.get(outcome, 0) + 1
        out["missing"] = max(0, int(self.header.get("planned", 0)) - len(self.calls))
        return out

    def done(self, step: int) -> dict[str, dict[str, Any]]:
        """Results of calls of ``step`` that ended ok, by key (a resume skips them)."""
        return {
            key: result
            for (s, key), result in self.calls.items()
            if s == step and result.get("outcome") == "ok"
        }


class Journal:
    """Appends records to one run's file; each is flushed and fsync'd before returning."""

    def __init__(self, path: Path, header: dict[str, Any], *, resume: bool) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            if resume and not created:
                _end_torn_line(path)
            self._file: TextIO = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
            os.chmod(path, 0o600)
            if created:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise UsageError(
                f"cannot write the job journal {path} ({exc.strerror}); "
                "pick a writable --state-dir or set $AIRFLEET_STATE_DIR"
            ) from exc
        if resume:
            self._write({"type": "resume", **header})
        else:
            self._write({"type": "run", **header})

    def _write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def record(self, step: int, result: Result) -> None:
        """One finished call, durable before this returns."""
        self._write(
            {"type": "call", "step": step, "key": call_key(result), "result": result.to_dict()}
        )

    def finish(self, record: dict[str, Any]) -> None:
        self._write({"type": "end", **record})

    def close(self) -> None:
        self._file.close()


def _end_torn_line(path: Path) -> None:
    with open(path, "rb+") as file:
        file.seek(0, os.SEEK_END)
        if file.tell() == 0:
            return
        file.seek(-1, os.SEEK_END)
        if file.read(1) != b"\n":
            file.write(b"\n")
            file.flush()
            os.fsync(file.fileno())


def _fsync_dir(directory: Path) -> None:
    # The new file's directory entry must survive a crash too.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def run_file_name(started_at: datetime, pid: int) -> str:
    """``20261124T000000.123456Z-4242.jsonl``: sorts by start time."""
    return f"{started_at.strftime('%Y%m%dT%H%M%S.%fZ')}-{pid}.jsonl"


def read_run(path: Path) -> JournalRun | None:
    """One run's file; None when it has no header (created, then killed at once)."""
    run: JournalRun | None = None
    for record in _records(path):
        kind = record.get("type")
        if kind == "run" and run is None:
            run = JournalRun(path, record)
        elif run is None:
            continue
        elif kind == "call":
            try:
                run.calls[(int(record["step"]), str(record["key"]))] = dict(record["result"])
            except (KeyError, TypeError, ValueError):
                continue
        elif kind == "resume":
            run.resumes += 1
            run.end = None  # a resumed run is unfinished again until its next end record
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
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            for line in file:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a torn line from a crash mid-write
                if isinstance(record, dict):
                    yield record
    except OSError:
        return
