"""The command answers at once: what --help, --version, completion and a bad fleet file import.

These assert on module names, never on times (benchmarks/startup.py measures
those): a module that is not imported costs nothing on any machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from _cli import cli_env
from airfleet.cli import SUBCOMMANDS, cli
from airfleet.cli._context import REPORT_FORMATS
from airfleet.report import FORMATS

ROOT = Path(__file__).resolve().parent.parent

# The console script's own steps, under the name "airfleet" (so that click
# reads $_AIRFLEET_COMPLETE), then the modules loaded by the time it exits.
_AIRFLEET_THEN_MODULES = """\
import atexit, json, sys

def write_modules(path=sys.argv.pop(1)):
    with open(path, "w") as out:
        json.dump(sorted(sys.modules), out)

atexit.register(write_modules)
sys.argv[0] = "airfleet"
from airfleet.cli import main
main()
"""

# What the whole engine brings, and what only running, printing or logging needs.
_HEAVY = ("aiohttp", "anyio", "rich", "structlog", "airfleet.engine", "airfleet.sim")
# A fleet file is read with these; nothing that answers before one is read needs them.
_FLEET_FILE = ("pydantic", "yaml", "airfleet.fleet_file")
# What a command needs only once its fleet is read: its operation, the logs, and TLS
# and proxy machinery (a fleet file without tls: or proxies needs neither).
_AFTER_READING = (
    "airfleet.operations",
    "airfleet.logs",
    "airfleet.dialects",
    "ssl",
    "urllib.request",
)

_BAD_FLEET = """\
version: 1
auth:
  local: {kind: token, token: not-a-secret}
deployments:
  - name: dev-a
    url: http://127.0.0.1:8080
    auth: local
    tagz: [dev]
"""


def _airfleet(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI in a subprocess; its result, and every module it had imported at exit."""
    modules = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", _AIRFLEET_THEN_MODULES, str(modules), *args],
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    return result, set(json.loads(modules.read_text(encoding="utf-8")))


def _imported(modules: set[str], names: tuple[str, ...]) -> list[str]:
    """Those of ``names`` (packages, with their submodules) that ``modules`` holds."""
    return sorted(n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules))


def _completion(words: str, cword: int, shell: str = "bash") -> dict[str, str]:
    return {
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "_AIRFLEET_COMPLETE": f"{shell}_complete",
    }


@pytest.mark.parametrize(
    ("args", "env", "expect"),
    [
        (["--help"], None, "Commands:"),
        (["-h"], None, "Commands:"),
        (["--version"], None, "airfleet, version"),
        ([], _completion("airfleet tr", 1), "plain,trigger"),
        ([], _completion("airfleet ", 1, "zsh"), "Trigger DAG_ID... on every selected"),
        ([], _completion("airfleet --log-format ", 2), "plain,json"),
    ],
    ids=["help", "h", "version", "complete-command", "complete-zsh-with-help", "complete-option"],
)
def test_help_version_and_completion_import_neither_the_engine_nor_a_fleet_file_s_tools(
    tmp_path: Path, args: list[str], env: dict[str, str] | None, expect: str
) -> None:
    """They answer from click and the command table alone: no aiohttp, pydantic, rich, yaml."""
    result, modules = _airfleet(tmp_path, *args, env=env)
    assert result.returncode == 0, result.stderr
    assert expect in result.stdout
    assert _imported(modules, _HEAVY + _FLEET_FILE) == []


def test_a_bad_fleet_file_is_reported_without_the_engine_rich_or_structlog(
    tmp_path: Path,
) -> None:
    """One line, exit 2, having imported only what reads the file (pydantic, yaml):
    not the engine, nor what the command would need next."""
    (tmp_path / "bad.yaml").write_text(_BAD_FLEET, encoding="utf-8")
    result, modules = _airfleet(tmp_path, "-c", "bad.yaml", "health")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "airfleet: error: bad.yaml:8: deployments[0].tagz: unknown key 'tagz' "
        "(did you mean 'tags'?)"
    ]
    assert _imported(modules, _HEAVY + _AFTER_READING) == []


def test_importing_the_package_imports_none_of_its_modules() -> None:
    """``import airfleet`` defers every public name to its first use (PEP 562)."""
    code = "import sys, airfleet; print(sorted(m for m in sys.modules if 'airfleet' in m))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['airfleet']"


def _eager_twin() -> click.Group:
    """The ``airfleet`` group as a plain click.Group holding every command, imported."""
    ctx = click.Context(cli)
    commands = {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}
    return click.Group(
        cli.name,
        commands={name: command for name, command in commands.items() if command is not None},
        params=cli.params,
        help=cli.help,
        epilog=cli.epilog,
        context_settings=cli.context_settings,
    )


def test_each_summary_is_the_first_sentence_of_its_command_s_help() -> None:
    """The table's summaries are what click would take from each command's docstring."""
    ctx = click.Context(cli)
    for name, entry in SUBCOMMANDS.items():
        command = cli.get_command(ctx, name)
        assert command is not None, name
        assert command.name == name
        assert not command.hidden
        assert entry.summary == command.get_short_help_str(limit=10_000), name


@pytest.mark.parametrize("width", [20, 60, 80, 120, 240])
def test_the_group_s_help_is_the_one_click_writes_with_every_command_imported(width: int) -> None:
    """At any terminal width, --help shortens each summary as click shortens the command's help."""
    runner = CliRunner()
    lazy = runner.invoke(cli, ["--help"], prog_name="airfleet", terminal_width=width)
    eager = runner.invoke(_eager_twin(), ["--help"], prog_name="airfleet", terminal_width=width)
    assert lazy.exit_code == eager.exit_code == 0
    assert lazy.output == eager.output


@pytest.mark.parametrize("incomplete", ["", "p", "run", "import", "x", "-", "--v"])
def test_completing_a_command_name_offers_what_click_offers_with_every_command_imported(
    incomplete: str,
) -> None:
    """The same names, with the same help, in the same order; options as before."""

    def offered(group: click.Group) -> list[tuple[str, str | None]]:
        # The context as click's completion makes it (with -h among the help options).
        ctx = group.make_context("airfleet", [], resilient_parsing=True)
        items = group.shell_complete(ctx, incomplete)
        return [(item.value, item.help) for item in items]

    assert offered(cli) == offered(_eager_twin())


def test_the_report_choices_are_the_report_formats() -> None:
    """``--report`` offers airfleet.report's formats (the CLI keeps a copy, free of rich)."""
    assert REPORT_FORMATS == FORMATS


def test_the_startup_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/startup.py runs every case and prints its table (no time is asserted)."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "startup.py"), "--repeat", "1"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    for case in ("bare python", "--help", "--version", "complete a command", "config error"):
        assert f"| {case} |" in result.stdout
