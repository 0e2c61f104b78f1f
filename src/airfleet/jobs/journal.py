"""The journal: every result of a job run, appended and fsync'd before it is reported.

One JSONL file per run under ``<state dir>/<job>/``. Records:
``{"type": "run", ...}`` first (job, window, run ids, planned calls), then one
``{"type": "call", "step", "key", "result"}`` per finished call, a
``{"type": "resume", ...}`` each time ``--resume`` continues the run, and
``{"type": "end", ...}`` when an invocation completes. A run without an end
record was killed; ``--resume`` continues it. A torn last line (a crash mid
write) is ignored on reading, and a resume first ends it with a newline so
the next record starts on a line of its own.

JSONL rather than SQLite: appends and fsyncs, readable with ``tail -f`` and
``jq``, and a torn line costs at most the records being written. Results carry
no secrets (they are what the report shows), and the file is created 0600 all
the same.

During a run, records leave the event loop (:meth:`Journal.group_commit`): a
task takes every record queued so far, writes them and fsyncs them once, on
a worker thread, then hands their results on, in order. An fsync costs
hundreds of microseconds (milliseconds on a busy disk); one per record
capped a job at a few thousand results a second and stalled the loop for
each. A result is still reported only once its record is on disk, so after a
``kill -9`` at any moment the journal holds every result anyone was told of.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import anyio
import orjson
from anyio.streams.memory import MemoryObjectReceiveStream

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

# The most records one fsync commits: far more than a busy run queues in one
# fsync's time. The bound keeps a burst (a skipped step's every call) from
# holding the GIL for long while serialised, or the loop while handed on.
_BATCH_MAX = 500

# A line means what json.dumps(record, default=str) would write: datetimes
# and dataclasses go through str() as they would there, not orjson's own
# forms. Compact, UTF-8 (not \u-escaped): every reader parses JSON.
_ORJSON_OPTIONS = (
    orjson.OPT_APPEND_NEWLINE
    | orjson.OPT_NON_STR_KEYS
    | orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
)
# For what orjson refuses (an integer beyond 64 bits, a lone surrogate).
_ENCODER = json.JSONEncoder(default=str)


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
    """Appends records to one run's file; a record counts as written once it is fsync'd.

    :meth:`record` and :meth:`finish` block until their record is on disk:
    for code off the event loop (the header, the end record, tools). A run
    journals through :meth:`group_commit`, which keeps the loop free.
    """

    def __init__(self, path: Path, header: dict[str, Any], *, resume: bool) -> None:
        self.path = path
        # A batch is written on a worker thread while the loop runs on: the
        # lock keeps a blocking record() from interleaving with it.
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            if resume and not created:
                _end_torn_line(path)
            self._file: BinaryIO = open(path, "ab")  # noqa: SIM115 - held for the run
            os.chmod(path, 0o600)
            if created:
                _fsync_dir(path.parent)
        except OSError as exc:
            raise UsageError(
                f"cannot write the job journal {path} ({exc.strerror}); "
                "pick a writable --state-dir or set $AIRFLEET_STATE_DIR"
            ) from exc
        if resume:
            self._append([_line({"type": "resume", **header})])
        else:
            self._append([_line({"type": "run", **header})])

    def _append(self, lines: Sequence[bytes]) -> None:
        """Write ``lines`` and fsync them once: durable when this returns (it blocks)."""
        with self._lock:
            self._file.write(b"".join(lines))
            self._file.flush()
            self._fsync(self._file.fileno())

    def _fsync(self, fd: int) -> None:
        # One place for the fsync, so a test can make it slow and see that
        # nothing is reported before it returns.
        os.fsync(fd)

    def record(self, step: int, result: Result) -> None:
        """One finished call, durable before this returns."""
        self._append([_call_line(step, result)])

    @asynccontextmanager
    async def group_commit(
        self, step: int, on_durable: Callable[[Result], None]
    ) -> AsyncIterator[Callable[[Result], None]]:
        """``record(result)`` for the event loop, for the calls of ``step``.

        ``record`` queues the result and returns at once (the engine calls
        it from its collector). A task takes whatever has queued; a worker
        thread serialises, writes and fsyncs it once; then the task calls
        ``on_durable`` with each result of that batch, in the order
        recorded; while one batch is on its way to disk the next gathers.
        Leaving the block waits until every result recorded in it has been
        handed on, so a step's results are all reported before the next
        step starts.

        An exception of the block, or of the writer (a full disk), comes
        out as itself, not in an exception group, so callers catch what
        they would without a journal.
        """
        send, receive = anyio.create_memory_object_stream[Result](math.inf)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._commit, step, receive, on_durable)
                with send:
                    yield send.send_nowait
        except BaseExceptionGroup as errors:
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0] from None
            raise

    async def _commit(
        self,
        step: int,
        receive: MemoryObjectReceiveStream[Result],
        on_durable: Callable[[Result], None],
    ) -> None:
        with receive:
            async for first in receive:
                batch = [first]
                while len(batch) < _BATCH_MAX:
                    try:
                        batch.append(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                # Not abandoned if cancelled: the block must not end (and
                # close() come) while the thread is still writing the file.
                await anyio.to_thread.run_sync(self._append_calls, step, batch)
                for result in batch:
                    on_durable(result)

    def _append_calls(self, step: int, results: Sequence[Result]) -> None:
        # Serialised here, on the worker thread, a batch at a time: measured
        # at about half the CPU per record of serialising each one on the
        # loop as it is recorded (benchmarks/results/round3-journal.md).
        self._append([_call_line(step, result) for result in results])

    def finish(self, record: dict[str, Any]) -> None:
        """The end record, durable before this returns."""
        self._append([_line({"type": "end", **record})])

    def close(self) -> None:
        self._file.close()


def _line(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record, default=str, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return (_ENCODER.encode(record) + "\n").encode()  # ASCII: json escapes the rest


def _call_line(step: int, result: Result) -> bytes:
    return _line(
        {"type": "call", "step": step, "key": call_key(result), "result": result.to_dict()}
    )


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
