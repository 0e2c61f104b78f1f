"""What every command shares: loading the fleet, selecting, running, reporting.

The CLI owns its process, so it, not the library, paces CPython's garbage
collector (see :mod:`airfleet._gc`): while a fleet file is loaded and while
its engine runs.

Every command imports this module, its --help too, and most commands' first
step is to check a fleet file: the engine, aiohttp, anyio, rich and structlog
are imported once a command gets past that, by the methods that send, print
or log (the engine's run itself is ``_running.py``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from airfleet._gc import DEFAULT_THRESHOLD, first_threshold_at_least
from airfleet.errors import UsageError
from airfleet.fleet_file import load_fleet
from airfleet.inventory import Deployment, Fleet
from airfleet.selection import select

if TYPE_CHECKING:
    import anyio
    from rich.console import Console

    from airfleet.cli._running import Body, OnResult
    from airfleet.engine import Engine, RunReport
    from airfleet.logs import LogFormat
    from airfleet.plan import Plan
    from airfleet.report import ReportFormat

__all__ = ["REPORT_FORMATS", "CliContext", "report_options", "run_options", "select_option"]

F = TypeVar("F", bound=Callable[..., Any])

# airfleet.report's FORMATS, which tests/test_startup.py holds equal: importing
# airfleet.report would import rich for every command's --help and every bad
# fleet file.
REPORT_FORMATS = ("table", "json", "jsonl", "junit", "markdown", "csv")

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
        type=click.Choice(REPORT_FORMATS),
        help="Report format (default: table on a terminal, json otherwise).",
    )(func)


def run_options(func: F) -> F:
    return click.option(
        "--dry-run", is_flag=True, help="Print the requests this would send; send nothing."
    )(func)


class CliContext:
    """Per-invocation state: the config path, verbosity, logging and the consoles.

    ``owns_logging``: the context configures structlog (``log_format``,
    ``verbose``) before the first line anything logs (:meth:`configure_logs`),
    as the ``airfleet`` command does; otherwise structlog's configuration is
    left as it is (tests that capture logs build contexts so).
    ``stdout``/``stderr``: rich consoles, made when first used unless given.
    """

    def __init__(
        self,
        config_path: str,
        *,
        verbose: bool = False,
        log_format: LogFormat | None = None,
        owns_logging: bool = False,
        stdout: Console | None = None,
        stderr: Console | None = None,
    ) -> None:
        self.config_path = config_path
        self.verbose = verbose
        self.log_format = log_format
        self._logging_to_configure = owns_logging
        self._stdout = stdout
        self._stderr = stderr

    @property
    def stdout(self) -> Console:
        if self._stdout is None:
            from rich.console import Console

            self._stdout = Console(soft_wrap=False)
        return self._stdout

    @property
    def stderr(self) -> Console:
        if self._stderr is None:
            from rich.console import Console

            self._stderr = Console(stderr=True)
        return self._stderr

    def configure_logs(self) -> None:
        """Configure structlog as the command line asked, once, before the first line."""
        if self._logging_to_configure:
            from airfleet.logs import configure_logging

            configure_logging(fmt=self.log_format, verbose=self.verbose)
            self._logging_to_configure = False

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
        from airfleet.cli._running import discover_now
        from airfleet.logs import log_event

        self.configure_logs()
        sources = fleet.discovery
        static = len(fleet.deployments)
        found = discover_now(fleet, log=log_event)
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
            from airfleet.cli._dry_run import print_plan

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
        import anyio

        from airfleet.cli._running import run_engine
        from airfleet.logs import log_event, warn_unverified_tls
        from airfleet.report.output import output_to

        fmt = self.format_for(report_format, output)
        self.configure_logs()
        with output_to(output) as out:  # a file that cannot be written: before anything is sent
            if announce is not None:
                click.echo(announce, err=True)
            warn_unverified_tls(fleet)
            return anyio.run(
                lambda: run_engine(
                    fleet,
                    body,
                    total=total,
                    operation=operation,
                    fmt=fmt,
                    out=out,
                    output=output,
                    streams=streams,
                    log=log_event,
                    stdout=self.stdout,
                    stderr=self.stderr,
                )
            )

    def format_for(self, report_format: ReportFormat | None, output: str | None) -> ReportFormat:
        if report_format is not None:
            return report_format
        if output is not None:
            return _SUFFIX_FORMATS.get(Path(output).suffix.lower(), "json")
        from airfleet.report import default_format

        return default_format(is_terminal=self.stdout.is_terminal)


def dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, default=str)
