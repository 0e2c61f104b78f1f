"""``airfleet discover``: the deployments the platform lists, frozen as a static fleet.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from airfleet._yaml import load_located
from airfleet.cli._context import CliContext
from airfleet.cli._output import output_to
from airfleet.errors import ConfigError, UsageError
from airfleet.fleet_file import load_fleet
from airfleet.fleet_freeze import freeze_fleet

EPILOG = """\b
Examples:
  airfleet -c fleet.yaml discover -o fleet.frozen.yaml
  airfleet -c fleet.frozen.yaml trigger refresh_dims -s tag:analytics
"""


@click.command(epilog=EPILOG)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the fleet.yaml to FILE (default: stdout); never left half-written.",
)
@click.pass_obj
def discover(obj: CliContext, output: str | None) -> None:
    """Ask the platforms in the fleet file's discover: section for their deployments, and
    write them, with the file's static ones, as a static fleet.yaml.

    Secrets stay ${VAR} references. Hibernating deployments are listed in a
    comment, not as entries. Nothing is sent to any deployment.
    """
    path = obj.config_path
    fleet = load_fleet(path)
    if not fleet.discovery:
        raise UsageError(
            f"{path} has no discover: section, so there is nothing to discover; "
            "add one (see the README's 'Discovery from Astro')"
        )
    # As written, before ${VAR}s are read: the frozen file keeps the references.
    try:
        located = load_located(Path(path).read_text(encoding="utf-8"), source=path)
    except OSError as exc:  # it was read a moment ago
        raise ConfigError(f"cannot read it: {exc}", file=path) from exc
    with output_to(output) as out:  # a file that cannot be written: before the platform is asked
        found = obj.discovered(fleet)
        frozen, warnings = freeze_fleet(located, fleet.discovery, found)
        for warning in warnings:
            click.echo(f"airfleet: warning: {warning}", err=True)
        out.write(frozen)
    if output is not None:
        click.echo(f"fleet written to {output}", err=True)
