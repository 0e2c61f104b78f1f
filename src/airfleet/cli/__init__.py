"""The ``airfleet`` command: a thin layer that parses, plans, runs and reports.

Each subcommand lives in its own module; this one holds the group, the global
options and the error mapping (one line, exit 2, no traceback unless -v).
"""

from __future__ import annotations

import sys

import click

from airfleet.cli._context import CliContext
from airfleet.cli.api import api
from airfleet.cli.audit import audit
from airfleet.cli.dags import dags
from airfleet.cli.demo import demo
from airfleet.cli.discover import discover
from airfleet.cli.health import health
from airfleet.cli.history import history
from airfleet.cli.import_errors import import_errors
from airfleet.cli.pause import pause, unpause
from airfleet.cli.pools import pools
from airfleet.cli.run import run
from airfleet.cli.runs import runs
from airfleet.cli.sim import sim
from airfleet.cli.trigger import trigger
from airfleet.errors import AirfleetError
from airfleet.logs import configure_logging

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


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
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
def cli(ctx: click.Context, config: str, log_format: str | None, verbose: bool) -> None:
    """Run Airflow REST API operations across a fleet of deployments at once.

    Airflow 2 (/api/v1) and 3 (/api/v2), Astro and self-hosted: one shared
    token per credential, fleet-wide and per-deployment limits, safe retries,
    one result per call, and a report.
    """
    configure_logging(fmt=log_format, verbose=verbose)  # type: ignore[arg-type]
    ctx.obj = CliContext(config_path=config, verbose=verbose)


for command in (
    trigger,
    dags,
    pools,
    pause,
    unpause,
    health,
    runs,
    import_errors,
    api,
    audit,
    run,
    history,
    discover,
    sim,
    demo,
):
    cli.add_command(command)


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
