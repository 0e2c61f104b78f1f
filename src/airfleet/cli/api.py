"""``airfleet api``: any Airflow API endpoint on every selected deployment, as ``gh api`` does."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from airfleet.cli._context import CliContext, report_options, run_options, select_option
from airfleet.cli._dry_run import print_plan
from airfleet.cli._flags import check_dry_run_output
from airfleet.errors import UsageError
from airfleet.operations import plan_api
from airfleet.operations.api import METHODS, place_fields

if TYPE_CHECKING:
    from airfleet.report import ReportFormat

EPILOG = """\b
Examples:
  airfleet api /version
  airfleet api /dags -f only_active=true --paginate -s tag:prod
  airfleet api /dags/nightly_load/dagRuns -f state=failed -f limit=5
  airfleet api -X PATCH /pools/etl -F slots=16 -f update_mask=slots -s tag:dev --yes
  airfleet api -X POST /variables --input variable.json -s 'name:prod-*' --yes --dry-run
PATH is relative to the API root: each deployment's /api/v1 or /api/v2 is added.
"""


@click.command(epilog=EPILOG)
@click.argument("path")
@click.option(
    "-X",
    "--method",
    type=click.Choice(METHODS, case_sensitive=False),
    default="GET",
    show_default=True,
)
@click.option("-f", "--field", "fields", multiple=True, metavar="KEY=VALUE", help="A string field.")
@click.option(
    "-F",
    "--typed-field",
    "typed_fields",
    multiple=True,
    metavar="KEY=VALUE",
    help='A typed field: VALUE as JSON when it parses (true, 3, null, {"a": 1}).',
)
@click.option(
    "--input",
    "input_file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The JSON body, from FILE or - (stdin); fields then go in the query.",
)
@click.option("--paginate", is_flag=True, help="Follow offset/limit to the end; merge the list.")
@click.option("--yes", is_flag=True, help="Send a method other than GET to several deployments.")
@select_option
@run_options
@report_options
@click.pass_obj
def api(
    obj: CliContext,
    path: str,
    method: str,
    fields: tuple[str, ...],
    typed_fields: tuple[str, ...],
    input_file: str | None,
    paginate: bool,
    yes: bool,
    selectors: tuple[str, ...],
    dry_run: bool,
    report_format: ReportFormat | None,
    output: str | None,
) -> None:
    """Send one request to PATH on every selected deployment; each answer is its result.

    For GET, fields are query parameters; otherwise they make the JSON body.
    A non-2xx answer is a failed result with the server's message. POSTs are
    sent once (a lost answer is not resent) unless the body names what it
    makes to an endpoint that refuses a second one: dag_run_id to
    /dags/ID/dagRuns, name to /pools, key to /variables, connection_id to
    /connections.
    """
    method = method.upper()
    check_dry_run_output(dry_run=dry_run, report_format=report_format, output=output)
    pairs: list[tuple[str, Any]] = list(map(_pair, fields))
    pairs += [(k, _typed(v)) for k, v in map(_pair, typed_fields)]
    body: Any = None
    if input_file is not None:
        if method == "GET":
            raise UsageError("--input is a request body: it goes with -X POST, PATCH or PUT")
        body = _read_body(input_file)
    params, body = place_fields(method, pairs, body)
    fleet = obj.fleet()
    plan = plan_api(
        obj.selected(fleet, selectors),
        method,
        path,
        params=params,
        body=body,
        paginate=paginate,
    )
    if method != "GET" and len(plan.calls) > 1 and not yes and not dry_run:
        print_plan(plan, console=obj.stdout, as_json=not obj.stdout.is_terminal)
        raise UsageError(
            f"{method} to {len(plan.calls)} deployments changes each of them: check the "
            "plan above, then add --yes (or narrow the selection with -s)"
        )
    code = obj.execute(fleet, plan, report_format=report_format, output=output, dry_run=dry_run)
    raise SystemExit(code)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise UsageError(f"field {text!r}: write it as KEY=VALUE")
    return key, value


def _typed(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value  # not JSON: the string itself, as gh api reads it


def _read_body(source: str) -> Any:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--input {source}: cannot read it: {exc.strerror or exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"--input {source}: not JSON ({exc})") from None
