"""``airfleet discover``: the deployments the platform lists, frozen as a static fleet.yaml."""

from __future__ import annotations

from pathlib import Path

import click

from airfleet._yaml import load_located
from airfleet.cli._context import CliContext
from airfleet.errors import UsageError
from airfleet.fleet_file import parse_fleet, read_fleet_text
from airfleet.fleet_freeze import freeze_fleet
from airfleet.report.output import output_to

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
    text = read_fleet_text(path)  # read once: the fleet and its frozen copy are of one text
    fleet = parse_fleet(text, source=path, base_dir=Path(path).parent)
    if not fleet.discovery:
        raise UsageError(
            f"{path} has no discover: section, so there is nothing to discover; "
            "add one (see the README's 'Discovery from Astro')"
        )
    # As written, before ${VAR}s are read: the frozen file keeps the references.
    located = load_located(text, source=path)
    with output_to(output) as out:  # a file that cannot be written: before the platform is asked
        found = obj.discovered(fleet)
        frozen, warnings = freeze_fleet(located, fleet.discovery, found)
        for warning in warnings:
            click.echo(f"airfleet: warning: {warning}", err=True)
        out.write(frozen)
    if output is not None:
        click.echo(f"fleet written to {output}", err=True)
