"""The ``airfleet`` command: a thin layer that parses, plans, runs and reports.

Each subcommand lives in its own module, imported when it is used; this one
holds the group, the global options and the error mapping (one line, exit 2,
no traceback unless -v).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from airfleet.cli._lazy import LazyGroup, Subcommand
from airfleet.errors import AirfleetError

if TYPE_CHECKING:
    from airfleet.logs import LogFormat

__all__ = ["cli", "main"]

EPILOG = """\b
Examples:
  airfleet demo
  airfleet -c fleet.yaml health
  airfleet trigger refresh_dims -s tag:prod -s tag:eu --wait
  airfleet pools -s 'name:prod-*' --report markdown -o pools.md
  airfleet runs --state failed --since 24h
  airfleet import-errors -s tag:prod
  airfleet api /dags -f only_active=true --paginate
  airfleet audit pools --spec pools.yaml --apply --dry-run
  airfleet run configs/jobs/nightly.yaml --resume
  airfleet discover -o fleet.frozen.yaml
"""


def _lazy(module: str, summary: str, *, attribute: str = "") -> Subcommand:
    return Subcommand(f"airfleet.cli.{module}", attribute or module, summary)


# Each command's module, and the first sentence of its help: what --help lists.
SUBCOMMANDS = {
    "api": _lazy(
        "api", "Send one request to PATH on every selected deployment; each answer is its result."
    ),
    "audit": _lazy("audit", "Compare the fleet with a desired state."),
    "dags": _lazy(
        "dags", "List the DAGs of every selected deployment (all pages, fetched concurrently)."
    ),
    "demo": _lazy(
        "demo",
        "Trigger a DAG on a simulated fleet of Airflow 2 and 3 deployments, wait, list pools.",
    ),
    "discover": _lazy(
        "discover",
        "Ask the platforms in the fleet file's discover: section for their deployments, "
        "and write them, with the file's static ones, as a static fleet.yaml.",
    ),
    "health": _lazy("health", "Show each deployment's Airflow version, API (v1/v2) and health."),
    "history": _lazy(
        "history",
        "List past runs of JOB (a job name, or a job file): when, which window, how many "
        "calls ended ok, failed or skipped, and whether it finished.",
    ),
    "import-errors": _lazy(
        "import_errors",
        "List the import errors of every selected deployment (the whole trace in json).",
    ),
    "pause": _lazy("pause", "Pause DAG_ID... on every selected deployment."),
    "pools": _lazy(
        "pools", "List pools (slots, occupied, queued, open) on every selected deployment."
    ),
    "run": _lazy("run", "Run the steps of JOB.yaml in order (see configs/jobs/nightly.yaml)."),
    "runs": _lazy(
        "runs",
        "List the DAG runs of every selected deployment (all DAGs unless DAG_IDs), newest first.",
    ),
    "sim": _lazy(
        "sim", "Serve a simulated fleet of Airflow 2 and 3 deployments until interrupted."
    ),
    "trigger": _lazy("trigger", "Trigger DAG_ID... on every selected deployment."),
    "unpause": _lazy(
        "pause", "Unpause DAG_ID... on every selected deployment.", attribute="unpause"
    ),
}


@click.group(
    cls=LazyGroup,
    subcommands=SUBCOMMANDS,
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option(
    "-c",
    "--config",
    "config",
    envvar="AIRFLEET_CONFIG",
    show_envvar=True,
    default="fleet.yaml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The fleet inventory.",
)
@click.option(
    "--log-format",
    type=click.Choice(["console", "json"]),
    envvar="AIRFLEET_LOG_FORMAT",
    show_envvar=True,
    default=None,
    help="Log format on stderr (default: console on a terminal, json otherwise).",
)
@click.option("-v", "--verbose", is_flag=True, help="Debug logs, and tracebacks on errors.")
@click.version_option(package_name="airfleet")
@click.pass_context
def cli(ctx: click.Context, config: str, log_format: LogFormat | None, verbose: bool) -> None:
    """Run Airflow REST API operations across a fleet of deployments at once.

    Airflow 2 (/api/v1) and 3 (/api/v2), Astro and self-hosted: one shared
    token per credential, fleet-wide and per-deployment limits, safe retries,
    one result per call, and a report.
    """
    # Here, not above: the context loads fleet files (pydantic, yaml), which
    # --help and --version, answered before this runs, have no use for.
    from airfleet.cli._context import CliContext

    # structlog is configured before the first line a command logs, not here:
    # a bad fleet file is reported before structlog would have been imported.
    ctx.obj = CliContext(config, verbose=verbose, log_format=log_format, owns_logging=True)


def main() -> None:
    """Console-script entry point: maps errors to exit codes."""
    verbose = "-v" in sys.argv[1:] or "--verbose" in sys.argv[1:]
    try:
        code = cli.main(standalone_mode=False)
    except AirfleetError as exc:
        if verbose:
            raise
        click.echo(f"airfleet: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("airfleet: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        # One line, like every other error: what was wrong and where to look.
        where = exc.ctx.command_path if exc.ctx is not None else "airfleet"
        click.echo(f"airfleet: error: {exc.format_message()} (see '{where} --help')", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"airfleet: error: {exc.format_message()}", err=True)
        sys.exit(2 if exc.exit_code == 1 else exc.exit_code)
    except KeyboardInterrupt:
        click.echo("airfleet: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
