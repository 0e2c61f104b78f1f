"""``airfleet demo``: a whole fleet job against a simulated fleet, no config, no network."""

from __future__ import annotations

import sys

import anyio
import click
from rich.console import Console

from airfleet._gc import DEFAULT_THRESHOLD
from airfleet.cli._context import CliContext
from airfleet.engine import Engine, RunReport
from airfleet.fleet_file import parse_fleet
from airfleet.logs import log_event
from airfleet.operations import plan_pools, plan_trigger
from airfleet.report import render
from airfleet.sim import Faults, Simulator

DEMO_DAG = "refresh_dims"


@click.command()
@click.option("--deployments", type=click.IntRange(min=1), default=25, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.pass_obj
def demo(obj: CliContext, deployments: int, seed: int) -> None:
    """Trigger a DAG on a simulated fleet of Airflow 2 and 3 deployments, wait, list pools.

    Starts the simulator in this process on a free loopback port, with light
    faults (latency, 429s, dropped connections, a commit-then-fail), and
    shows what airfleet does with them.
    """
    obj.configure_logs()
    console = Console()
    code = anyio.run(_demo, console, deployments, seed)
    raise SystemExit(code)


async def _demo(console: Console, count: int, seed: int) -> int:
    faults = Faults(
        latency_ms=30,
        latency_spread_ms=20,
        rate_limit_per_s=40,
        reset_rate=0.02,
        error_rate=0.0,
        commit_then_fail_rate=0.05,
    )
    sim = Simulator(deployments=count, api="mixed", faults=faults, seed=seed, run_duration_s=1.5)
    async with sim.running() as server:
        fleet = parse_fleet(
            sim.fleet_yaml(server.url, auth="oauth"), source="<demo fleet>", env=sim.env()
        )
        console.rule(f"[bold]airfleet demo[/]: {count} simulated deployments at {server.url}")
        async with Engine(
            fleet, listeners=[log_event], seed=seed, gc_threshold=DEFAULT_THRESHOLD
        ) as engine:
            console.print(
                f"[bold]1.[/] trigger [cyan]{DEMO_DAG}[/] everywhere and wait for the runs"
            )
            trigger = await engine.run(
                plan_trigger(fleet.deployments, [DEMO_DAG], wait=True, timeout_s=60, poll_s=1)
            )
            _show(console, trigger)
            console.print("[bold]2.[/] list every pool")
            pools = await engine.run(plan_pools(fleet.deployments))
            _show(console, pools)
        stats = sim.stats()
    runs = stats["runs_total"]
    console.rule("what the simulated servers saw")
    console.print(
        f"{stats['requests_total']} requests, {stats['token_fetches']['total']} token fetch(es), "
        f"{runs} runs created for {count} triggers, "
        f"{stats['duplicates_refused']} duplicate(s) refused, "
        f"faults injected: {_faults(stats['faults_injected'])}"
    )
    return max(trigger.summary.exit_code, pools.summary.exit_code)


def _show(console: Console, report: RunReport) -> None:
    render("table", summary=report.summary, results=report.results, out=sys.stdout, console=console)


def _faults(injected: dict[str, int]) -> str:
    parts = [f"{n} {name.replace('_', '-')}" for name, n in injected.items() if n]
    return ", ".join(parts) or "none"
