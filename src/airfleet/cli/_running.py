"""A run in the CLI's process: the engine, signals, progress and the report.

Imported by ``CliContext`` (``_context.py``) once a command has
checked its inputs and is about to send requests, so that what is checked
before (a bad fleet file, a bad flag) is reported without loading the engine,
aiohttp or rich.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import TextIO

import anyio
from rich.console import Console

from airfleet._gc import DEFAULT_THRESHOLD
from airfleet.cli._progress import ProgressListener
from airfleet.discovery import discover
from airfleet.engine import Engine, RunReport
from airfleet.events import Listener
from airfleet.inventory import Fleet
from airfleet.report import JsonlWriter, ReportFormat, render
from airfleet.results import Result

__all__ = ["Body", "OnResult", "discover_now", "run_engine"]

OnResult = Callable[[Result], None]
Body = Callable[[Engine, anyio.Event, OnResult | None], Awaitable[RunReport | int]]


def discover_now(fleet: Fleet, *, log: Listener) -> Fleet:
    """``fleet`` with the deployments its ``discover:`` sources list, asked now."""
    return anyio.run(lambda: discover(fleet, listeners=[log]))


async def run_engine(
    fleet: Fleet,
    body: Body,
    *,
    total: int,
    operation: str,
    fmt: ReportFormat,
    out: TextIO,
    output: str | None,
    streams: bool,
    log: Listener,
    stdout: Console,
    stderr: Console,
) -> int:
    """Run ``body`` on an engine for ``fleet``; write its report to ``out``; the exit code."""
    stop = anyio.Event()
    jsonl = JsonlWriter(out) if fmt == "jsonl" and streams else None
    progress = ProgressListener(stderr, total=total, operation=operation)
    async with (
        Engine(fleet, listeners=[log, progress], gc_threshold=DEFAULT_THRESHOLD) as engine,
        anyio.create_task_group() as group,
    ):
        group.start_soon(_stop_on_signal, stop)
        group.start_soon(progress.run)
        try:
            report = await body(engine, stop, jsonl.write_result if jsonl else None)
        finally:
            progress.close()
            group.cancel_scope.cancel()
    if isinstance(report, int):
        return report
    if jsonl is not None:
        jsonl.write_summary(report.summary)
    else:
        console = stdout if out is sys.stdout else None
        render(fmt, summary=report.summary, results=report.results, out=out, console=console)
    if output:
        s = report.summary
        stderr.print(
            f"{s.operation}: {s.ok} ok, {s.failed} failed, {s.skipped} skipped "
            f"of {s.total}; report written to {output}"
        )
    return report.summary.exit_code


async def _stop_on_signal(stop: anyio.Event) -> None:
    """First SIGINT/SIGTERM: stop starting calls, finish the report. Second: exit now."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if stop.is_set():
                sys.stderr.write("airfleet: interrupted again, exiting without a report\n")
                sys.stderr.flush()
                with contextlib.suppress(OSError, ValueError):
                    sys.stdout.flush()  # what was streamed (jsonl) stays whole
                # At once, as promised: raising SystemExit here would unwind
                # every task (and print their tracebacks) first. The journal
                # reports a result only once it is on disk, so nothing
                # reported is lost.
                os._exit(130)
            sys.stderr.write(
                "airfleet: stopping: no new calls; finishing those in flight "
                "(interrupt again to exit at once)\n"
            )
            sys.stderr.flush()
            stop.set()
