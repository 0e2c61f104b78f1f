"""Flag combinations that contradict each other or mean nothing: usage errors, never ignored.

Each check runs before the fleet is loaded, so a bad combination is one line,
exit 2, and nothing sent. The message names both flags and what to write
instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click
from click.core import ParameterSource

from airfleet.errors import UsageError

__all__ = [
    "check_dry_run_output",
    "check_explicit_config_unused",
    "check_listed_once",
]

# The two forms a plan prints in; the other report formats are for results.
_PLAN_FORMATS = ("table", "json")


def check_dry_run_output(*, dry_run: bool, report_format: str | None, output: str | None) -> None:
    """With ``--dry-run``: no ``-o`` (no report is made) and a format a plan prints in."""
    if not dry_run:
        return
    if output is not None:
        raise UsageError(
            "--dry-run makes no report, so -o would write nothing: drop -o, "
            "or redirect the plan (> FILE)"
        )
    if report_format is not None and report_format not in _PLAN_FORMATS:
        raise UsageError(
            f"--dry-run prints its plan as a table or as json, not as {report_format}: "
            "use --report table or --report json"
        )


def check_listed_once(values: Sequence[str], *, what: str) -> None:
    """The same DAG id twice would make two calls for one change, and two results."""
    twice = sorted({v for v in values if values.count(v) > 1})
    if twice:
        raise UsageError(f"{what} {twice[0]!r} is given twice; give each once")


def check_explicit_config_unused(ctx: click.Context, fleet: str | None, *, job_file: str) -> None:
    """A ``-c`` on the command line that a job's own ``fleet:`` would silently override."""
    root = ctx.find_root()
    # $AIRFLEET_CONFIG is a standing default, and a job's fleet: is more
    # specific than it; only a -c typed for this invocation contradicts.
    if fleet is None or root.get_parameter_source("config") is not ParameterSource.COMMANDLINE:
        return
    config = str(root.params["config"])
    if Path(config).resolve() != Path(fleet).resolve():
        raise UsageError(
            f"-c {config} is not the fleet {job_file} names (fleet: {fleet}); drop -c, "
            "or change the job's fleet key"
        )
