"""What every command shares: loading the fleet, selecting, running, reporting.

The CLI owns its process, so it, not the library, paces CPython's garbage
collector (see :mod:`airfleet._gc`): while a fleet file is loaded and while
its engine runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO, TypeVar

import anyio
import click
from rich.console import Console

from airfleet._gc import DEFAULT_THRESHOLD, first_threshold_at_least
from airfleet.cli._dry_run import print_plan
from airfleet.cli._progress import ProgressListener
from airfleet.discovery import discover
from airfleet.engine import Engine, RunReport
from airfleet.errors import UsageError
from airfleet.fleet_file import load_fleet
from airfleet.inventory import Deployment, Fleet
from airfleet.logs import log_event, warn_unverified_tls
from airfleet.plan import Plan
from airfleet.report import FORMATS, JsonlWriter, ReportFormat, default_format, render
from airfleet.report.output import output_to
from airfleet.results import Result
from airfleet.selection import select

__all__ = ["CliContext", "report_options", "run_options", "select_option"]

F = TypeVar("F", bound=Callable[..., Any])
OnResult = Callable[[Result], None]
Body = Callable[[Engine, anyio.Event, OnResult | None], Awaitable[RunReport | int]]

_SUFFIX_FORMATS: dict[str, ReportFormat] = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".xml": "junit",
    ".md": "markdown",
    ".csv": "csv",
    ".txt": "table",
}


def select_option(func: F) -> F:
    return click.option(
        "-s",
        "--select",
        "selectors",
        multiple=True,
        metavar="SELECT",
        help="tag:prod, name:prod-*; comma = or, repeat -s = and. Default: every deployment.",
    )(func)


def report_options(func: F) -> F:
    func = click.option(
        "-o",
        "--output",
        type=click.Path(dir_okay=False, writable=True),
        help="Write the report to FILE (format from its suffix unless --report).",
    )(func)
    return click.option(
        "--report",
        "report_format",
        type=click.Choice(FORMATS),
        help="Report format (default: table on a terminal, json otherwise).",
    )(func)


def run_options(func: F) -> F:
    return click.option(
        "--dry-run", is_flag=True, help="Print the requests this would send; send nothing."
    )(func)


@dataclass
class CliContext:
    """Per-invocation state: the config path, verbosity and the consoles."""

    config_path: str
    verbose: bool = False
    stdout: Console = field(default_factory=lambda: Console(soft_wrap=False))
    stderr: Console = field(default_factory=lambda: Console(stderr=True))

    def fleet(self, path: str | None = None) -> Fleet:
        """The fleet file at ``path`` (default: ``-c``/``$AIRFLEET_CONFIG``), validated,
        with the deployments its ``discover:`` sources list (asked once, now)."""
        # A large fleet file makes objects that all live until it is
        # validated: paced, the collector walks them 46 times instead of
        # 649 for 10,000 deployments.
        with first_threshold_at_least(DEFAULT_THRESHOLD):
            fleet = load_fleet(self.config_path if path is None else path)
        if fleet.discovery:
            fleet = self.discovered(fleet)
        return fleet

    def discovered(self, fleet: Fleet) -> Fleet:
        """``fleet`` with its sources' deployments; one line on stderr says what was found."""
        sources = fleet.discovery
        static = len(fleet.deployments)
        found = anyio.run(lambda: discover(fleet, listeners=[log_event]))
        new = found.deployments[static:]
        asleep = sum(1 for d in new if d.unavailable is not None)
        organizations = ", ".join(sorted({s.organization for s in sources}))
        click.echo(
            f"discovered {len(new)} deployments in Astro organization {organizations}"
            + (f" ({asleep} unavailable: their calls are skipped)" if asleep else ""),
            err=True,
        )
        return found

    def selected(self, fleet: Fleet, selectors: Sequence[str]) -> tuple[Deployment, ...]:
        return select(fleet.deployments, selectors)

    def execute(
        self,
        fleet: Fleet,
        plan: Plan,
        *,
        report_format: ReportFormat | None,
        output: str | None,
        dry_run: bool = False,
        announce: str | None = None,
    ) -> int:
        """Run (or dry-run) a plan, write its report, return the exit code.

        ``announce``: a line for stderr once the inputs are checked, before
        anything is sent (a real run only).
        """
        if not plan.calls:
            raise UsageError("nothing to do: the plan has no calls")
        if dry_run:
            fmt = self.format_for(report_format, output)
            print_plan(plan, console=self.stdout, as_json=fmt not in ("table", "markdown"))
            return 0

        async def body(
            engine: Engine, stop: anyio.Event, on_result: OnResult | None
        ) -> RunReport | int:
            return await engine.run(plan, on_result=on_result, stop=stop)

        return self.run_body(
            fleet,
            body,
            total=len(plan),
            operation=plan.operation,
            report_format=report_format,
            output=output,
            announce=announce,
        )

    def run_body(
        self,
        fleet: Fleet,
        body: Body,
        *,
        total: int,
        operation: str,
        report_format: ReportFormat | None,
        output: str | None,
        streams: bool = True,
        announce: str | None = None,
    ) -> int:
        """Run ``body`` on an engine with signals, progress and logs; write its report.

        ``streams``: the body passes results to ``on_result`` as they finish,
        so jsonl can stream them; otherwise they are written at the end. A
        body that returns an exit code has written its own output.
        """
        fmt = self.format_for(report_format, output)
        with output_to(output) as out:  # a file that cannot be written: before anything is sent
            if announce is not None:
                click.echo(announce, err=True)
            return anyio.run(self._run, fleet, body, total, operation, fmt, out, output, streams)

    def format_for(self, report_format: ReportFormat | None, output: str | None) -> ReportFormat:
        if report_format is not None:
            return report_format
        if output is not None:
            return _SUFFIX_FORMATS.get(Path(output).suffix.lower(), "json")
        return default_format(is_terminal=self.stdout.is_terminal)

    async def _run(
        self,
        fleet: Fleet,
        body: Body,
        total: int,
        operation: str,
        fmt: ReportFormat,
        out: TextIO,
        output: str | None,
        streams: bool,
    ) -> int:
        stop = anyio.Event()
        warn_unverified_tls(fleet)
        jsonl = JsonlWriter(out) if fmt == "jsonl" and streams else None
        progress = ProgressListener(self.stderr, total=total, operation=operation)
        async with (
            Engine(
                fleet, listeners=[log_event, progress], gc_threshold=DEFAULT_THRESHOLD
            ) as engine,
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
            console = self.stdout if out is sys.stdout else None
            render(fmt, summary=report.summary, results=report.results, out=out, console=console)
        if output:
            s = report.summary
            self.stderr.print(
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
                # is fsync'd record by record, so nothing written is lost.
                os._exit(130)
            sys.stderr.write(
                "airfleet: stopping: no new calls; finishing those in flight "
                "(interrupt again to exit at once)\n"
            )
            sys.stderr.flush()
            stop.set()


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
