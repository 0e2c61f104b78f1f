"""airfleet against the tools users would otherwise use, at fleet scale, side by side (issue #9).

Usage: .venv/bin/python benchmarks/run.py [--quick] [--out DIR] [--sizes 100,1000]
       [--latencies 0,50] [--repeat N] [--airflowctl install|if-installed|no]

The simulator runs in its own process on loopback, at 0 ms and 50 ms of added
latency, with fleets of 10, 100, 1,000, 5,000 and 10,000 deployments. On each,
every contender, a whole process of its own, lists the pools of every
deployment, then triggers one DAG on every deployment:

  (a) cli         airfleet's CLI (``airfleet pools`` / ``airfleet trigger``), ``api: v2``
      cli-auto    the same fleet with ``api: auto`` (detection)
  (b) library     airfleet's library API (``Engine.run``), ``api: v2``
      library-auto  the same with ``api: auto``
  (c) bare        a bare aiohttp loop with a semaphore: the ceiling for Python here
  (d) official    apache-airflow-client with a thread pool of 16
  (e) airflowctl  the Airflow 3 CLI, one process per deployment: a shell loop
                  and ``xargs -P 16`` (100 and 1,000 deployments only)
  (f) requests    a sequential ``requests`` loop (10 and 100 deployments only)

airfleet and the bare loop keep 200 requests in flight. Requests are counted by
the simulator. Wall time is the whole process (start-up included); req/s is the
simulator's count over the contender's own work time (first request to last
answer; for airflowctl, the whole loop); CPU seconds and peak RSS come from the
process's rusage.

airflowctl runs from a virtual environment of its own, installed from PyPI on
first use (``_harness.ensure_airflowctl``). ``--airflowctl if-installed`` (the
default with ``--quick``) runs it only when that install exists, so a quick run
needs no network; ``no`` leaves it out.

A second table checks limits and tokens: with ``max_per_second`` set (fleet,
credential, deployment), the rate the simulator saw against the configured
rate, and the token fetches of the whole run.

Writes DIR/fleet.md, DIR/fleet.png and DIR/fleet.json (default
benchmarks/results). ``--quick`` runs small fleets only, as a smoke test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    AIRFLOWCTL_REQUIREMENT,
    Measured,
    SimProcess,
    airflowctl_installed,
    ensure_airflowctl,
    run_child,
    simulator,
)

HERE = Path(__file__).resolve().parent
CONTENDERS = HERE / "contenders.py"
ORDER = (
    "cli",
    "cli-auto",
    "library",
    "library-auto",
    "bare",
    "official",
    "airflowctl-loop",
    "airflowctl-xargs",
    "requests",
)
AIRFLOWCTL = ("airflowctl-loop", "airflowctl-xargs")
# The same fleet file, API declared or detected: the pair issue round 3 compares.
AUTO = {"cli-auto": "cli", "library-auto": "library"}
LABELS = {
    "cli": "airfleet CLI, api: v2",
    "cli-auto": "airfleet CLI, api: auto",
    "library": "airfleet library, api: v2",
    "library-auto": "airfleet library, api: auto",
    # airfleet with no rate limits at all, like the other contenders: the raw
    # speed issue #4 compares (its default per-deployment 10/s never binds at
    # one request per deployment, but pacing each deployment has a cost).
    "library-open": "airfleet library, no rates",
    "bare": "bare aiohttp",
    "official": "apache-airflow-client x16",
    "requests": "requests, sequential",
    "airflowctl-loop": "airflowctl, shell loop",
    "airflowctl-xargs": "airflowctl, xargs -P 16",
}
DAG_ID = "hello"
IN_FLIGHT = 200
OFFICIAL_THREADS = 16
AIRFLOWCTL_PROCESSES = 16  # xargs -P
AIRFLOWCTL_TIMEOUT_S = 6 * 3600.0  # 1,000 processes one after another on a busy machine


@dataclass(frozen=True)
class Plan:
    """What one invocation measures."""

    sizes: tuple[int, ...]
    latencies: tuple[float, ...]
    requests_max: int  # largest fleet the sequential loop runs on
    official_max: dict[float, int]  # largest fleet apache-airflow-client runs on, by latency
    rate: dict[str, Any]  # sizes and rates of the limit/token checks
    # The fleets airflowctl runs on, smallest and largest: one process per
    # deployment, about a second of CPU each, so hours at 10,000.
    airflowctl_sizes: tuple[int, int]
    # And the latencies: its cost is its processes' start-up (about 0.8 s
    # each), which the network's 50 ms barely changes.
    airflowctl_latencies: tuple[float, ...]


FULL = Plan(
    sizes=(10, 100, 1000, 5000, 10_000),
    latencies=(0.0, 50.0),
    requests_max=100,
    official_max={0.0: 10_000, 50.0: 5000},
    rate={"fleet": (1000, 400.0), "credential": (1000, 300.0), "deployment": (20, 10.0, 30)},
    airflowctl_sizes=(100, 1000),
    airflowctl_latencies=(50.0,),
)
QUICK = Plan(
    sizes=(10, 50),
    latencies=(0.0, 50.0),
    requests_max=50,
    official_max={0.0: 50, 50.0: 50},
    rate={"fleet": (20, 100.0), "credential": (20, 100.0), "deployment": (2, 10.0, 5)},
    airflowctl_sizes=(1, 10),
    airflowctl_latencies=(0.0, 50.0),
)
COLOURS = {
    "cli": "C0",
    "cli-auto": "C5",
    "library": "C1",
    "library-auto": "C6",
    "bare": "C2",
    "official": "C3",
    "requests": "C4",
    "airflowctl-loop": "C7",
    "airflowctl-xargs": "C8",
}


@dataclass
class Row:
    latency_ms: float
    deployments: int
    operation: str
    contender: str
    requests: int
    wall_s: float
    work_s: float
    cpu_s: float
    peak_rss_mb: float
    sim_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.work_s if self.work_s > 0 else float("nan")


# -- configs -------------------------------------------------------------------------


def airfleet_config(sim: SimProcess, *, api: str = "v2", **limits: Any) -> Path:
    """The simulator's fleet.yaml, API declared (the other contenders know it too)
    unless ``api="auto"``, ``IN_FLIGHT`` requests in flight fleet-wide;
    per-deployment limits stay at airfleet's defaults unless given."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(sim.config.read_text(), Loader=loader)  # noqa: S506 - a safe loader
    doc["limits"] = {"max_in_flight": IN_FLIGHT}
    doc["defaults"]["api"] = api
    for key, value in limits.items():
        scope, _, name = key.partition("__")
        if scope == "fleet":
            doc["limits"][name] = value
        elif scope == "defaults":
            doc["defaults"][name] = value
        else:  # the one auth profile
            next(iter(doc["auth"].values()))[name] = value
    path = sim.config.with_name(f"{sim.config.stem}-{uuid.uuid4().hex[:8]}.yaml")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    path.write_text(yaml.dump(doc, Dumper=dumper, sort_keys=False))
    return path


def cli_args(config: Path, operation: str, run_id: str) -> list[str]:
    # ``python -m airfleet``, through a shim that reports the peak RSS at exit.
    head = [sys.executable, str(HERE / "_cli.py"), "-c", str(config)]
    report = ["--report", "json", "-o", "{scratch}/report.json"]
    if operation == "pools":
        return [*head, "pools", *report]
    return [*head, "trigger", DAG_ID, "--run-id", run_id, *report]


def cli_work_s(output: dict[str, Any], scratch: Path) -> float:
    """The CLI's work time: the run's duration from its own JSON report."""
    report = json.loads((scratch / "report.json").read_text())
    summary = report["summary"]
    if summary["failed"]:
        raise RuntimeError(f"the CLI reported failures: {summary}")
    return float(summary["duration_s"])


def variant(config: Path, name: str) -> Path:
    """A sibling of ``config``: ``open`` (no rates) or ``auto`` (``api: auto``)."""
    return config.with_name(f"{config.stem}-{name}.yaml")


@dataclass(frozen=True)
class Airflowctl:
    """airflowctl set up for one simulator: its executable, an AIRFLOW_HOME with one
    airflowctl environment per deployment."""

    executable: Path
    home: Path


# What airflowctl's own models make of the simulator's answers, strictly: its
# ``pools list`` falls back to filling in missing fields when validation fails,
# which would hide a schema the simulator got wrong.
SCHEMA_CHECK = """
import sys
from datetime import datetime, timezone

from airflowctl.api.client import Client
from airflowctl.api.datamodels.generated import (
    DAGRunResponse,
    PoolCollectionResponse,
    TriggerDAGRunPostBody,
)

url, token, dag_id, run_id = sys.argv[1:]
with Client(base_url=url, token=token) as client:  # raises on any 4xx or 5xx
    pools = client.get("pools", params={"limit": 50})
    assert pools.status_code == 200, pools.status_code
    listed = PoolCollectionResponse.model_validate_json(pools.content)
    body = TriggerDAGRunPostBody(
        dag_run_id=run_id, logical_date=datetime.now(timezone.utc), conf={}
    )
    run = client.post(f"dags/{dag_id}/dagRuns", json=body.model_dump(mode="json"))
    assert run.status_code == 200, run.status_code
    triggered = DAGRunResponse.model_validate_json(run.content)
    assert triggered.dag_run_id == run_id, triggered
print(listed.total_entries, triggered.state.value)
"""


def airflowctl_setup(sim: SimProcess, workdir: Path, executable: Path) -> Airflowctl:
    """One airflowctl environment per deployment, named after it, as a user sets them up.

    ``airflowctl auth login --api-url URL --api-token T --env NAME --skip-keyring``
    writes ``$AIRFLOW_HOME/NAME.json``, ``{"api_url": URL}``, and nothing else (the
    token stays in ``$AIRFLOW_CLI_TOKEN``; without ``--skip-keyring`` it would go to
    a keyring, which a headless machine lacks). It is the only way to point airflowctl
    at a server: no flag or variable names the URL, and a command reads its
    environment from ``$AIRFLOW_CLI_ENVIRONMENT`` (the ``-e/--env`` flag of 0.1.5
    reaches ``auth login`` only; on other commands it is parsed and ignored, and
    the variable wins over it even there). The first deployment logs in for real; the others'
    files, identical but for the URL, are written directly: a login is a second of
    start-up per deployment, and setting up is not what is timed.

    Then airflowctl's own models check the simulator's answers (status and schema).
    """
    home = workdir / f"airflowctl-home-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(sim.config.read_text(), Loader=loader)  # noqa: S506 - a safe loader
    fleet = [(d["name"], d["url"]) for d in doc["deployments"]]
    token = sim.env["AIRFLEET_SIM_TOKEN"]
    # airflowctl's own variables, if the caller's shell has any, would redirect the
    # login (AIRFLOW_CLI_ENVIRONMENT wins over --env) or the token.
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CLI_")}
    env["AIRFLOW_HOME"] = str(home)
    name, url = fleet[0]
    login = [str(executable), "auth", "login", "--api-url", url, "--api-token", token]
    login += ["--env", name, "--skip-keyring"]
    done = subprocess.run(login, env=env, capture_output=True, text=True, timeout=300)
    written = home / f"{name}.json"
    if done.returncode != 0 or not written.exists():
        raise RuntimeError(f"airflowctl auth login failed: {done.stdout[-1000:]}{done.stderr}")
    if json.loads(written.read_text()) != {"api_url": url} or len(list(home.iterdir())) != 1:
        raise RuntimeError(f"airflowctl auth login wrote {sorted(home.iterdir())}")
    for name, url in fleet[1:]:
        (home / f"{name}.json").write_text(json.dumps({"api_url": url}))
    check = [str(executable.with_name("python")), "-c", SCHEMA_CHECK, fleet[-1][1], token]
    check += [DAG_ID, f"schema-check-{uuid.uuid4().hex[:8]}"]
    done = subprocess.run(check, env=env, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"the simulator's answers fail airflowctl's models: {done.stderr}")
    return Airflowctl(executable, home)


def run_contender(
    sim: SimProcess,
    contender: str,
    config: Path,
    operation: str,
    *,
    rounds: int = 1,
    airflowctl: Airflowctl | None = None,
) -> tuple[Measured, dict[str, Any], float]:
    """One whole process; its measurements, the simulator's stats and CPU seconds."""
    run_id = f"bench-{contender}-{uuid.uuid4().hex[:10]}"
    sim.reset()
    sim_cpu = sim.cpu_s()
    if contender == "library-open":
        contender, config = "library", variant(config, "open")
    elif contender in AUTO:
        contender, config = AUTO[contender], variant(config, "auto")
    if contender == "cli":
        measured = run_child(cli_args(config, operation, run_id), env=sim.env, work_s=cli_work_s)
    else:
        env, timeout = sim.env, 1800.0
        concurrency = {"official": OFFICIAL_THREADS}.get(contender, IN_FLIGHT)
        args = [sys.executable, str(CONTENDERS), contender, str(config)]
        if contender in AIRFLOWCTL:
            if airflowctl is None:
                raise ValueError(f"{contender} needs airflowctl set up")
            concurrency = AIRFLOWCTL_PROCESSES
            args += ["--airflowctl", str(airflowctl.executable)]
            env = {**env, "AIRFLOW_HOME": str(airflowctl.home)}
            timeout = AIRFLOWCTL_TIMEOUT_S
        args += ["--operation", operation, "--run-id", run_id, "--rounds", str(rounds)]
        args += ["--concurrency", str(concurrency)]
        measured = run_child(args, env=env, timeout=timeout)
        if measured.output.get("failed"):
            raise RuntimeError(f"{contender} {operation}: {measured.output}")
    sim_cpu = sim.cpu_s() - sim_cpu
    return measured, sim.stats(), sim_cpu


# -- the matrix ----------------------------------------------------------------------

AIRFLEET = ("cli", "cli-auto", "library", "library-auto", "library-open")


def requests_per_call(contender: str, operation: str) -> int:
    """What each call sends: airfleet's trigger also GETs the DAG (is it paused?).

    ``api: auto`` sends nothing more: on Airflow 3 the call's own answer settles
    the API (this checks it, row by row)."""
    return 2 if operation == "trigger" and contender in AIRFLEET else 1


def runs_airflowctl(plan: Plan, size: int, latency: float) -> bool:
    smallest, largest = plan.airflowctl_sizes
    return smallest <= size <= largest and latency in plan.airflowctl_latencies


def contenders_for(plan: Plan, latency: float, size: int, *, airflowctl: bool) -> Iterator[str]:
    for contender in ORDER:
        if contender == "requests" and size > plan.requests_max:
            continue
        if contender == "official" and size > plan.official_max.get(latency, 0):
            continue
        if contender in AIRFLOWCTL and not (airflowctl and runs_airflowctl(plan, size, latency)):
            continue
        yield contender
        if contender == "library" and latency == 0 and size == max(plan.sizes):
            yield "library-open"  # only where the 0.75x target is read


def matrix(
    plan: Plan,
    workdir: Path,
    log: Callable[[str], None],
    repeat: int,
    *,
    airflowctl: Path | None = None,
    airflowctl_repeat: int = 1,
) -> list[Row]:
    """Every cell ``repeat`` times, contenders interleaved; each keeps its fastest run.

    airflowctl (when given its executable) runs in the first ``airflowctl_repeat``
    rounds only: at 1,000 deployments one run is 1,000 processes, tens of minutes.
    """
    rows: list[Row] = []
    for latency in plan.latencies:
        for size in plan.sizes:
            with simulator(workdir, deployments=size, latency_ms=latency) as sim:
                config = airfleet_config(sim)
                # run_contender's "library-open" and "*-auto" read these.
                airfleet_config(sim, defaults__max_per_second=None).rename(variant(config, "open"))
                airfleet_config(sim, api="auto").rename(variant(config, "auto"))
                setup = None
                if airflowctl is not None and runs_airflowctl(plan, size, latency):
                    setup = airflowctl_setup(sim, workdir, airflowctl)
                for operation in ("pools", "trigger"):
                    best: dict[str, Row] = {}
                    for round_ in range(repeat):  # interleaved, so drift hits all alike
                        for contender in contenders_for(
                            plan,
                            latency,
                            size,
                            airflowctl=setup is not None and round_ < airflowctl_repeat,
                        ):
                            measured, stats, sim_cpu = run_contender(
                                sim, contender, config, operation, airflowctl=setup
                            )
                            row = Row(
                                latency,
                                size,
                                operation,
                                contender,
                                int(stats["requests_total"]),
                                measured.wall_s,
                                measured.work_s,
                                measured.cpu_s,
                                measured.peak_rss_mb,
                                sim_cpu,
                            )
                            if row.requests != size * requests_per_call(contender, operation):
                                raise RuntimeError(f"{row}: the simulator counted {row.requests}")
                            log(
                                f"{latency:>3.0f} ms {size:>6} {operation:<7} {contender:<16}"
                                f" wall {row.wall_s:7.2f} s  work {row.work_s:7.2f} s"
                                f"  {_n(row.rps):>8} req/s  cpu {row.cpu_s:7.2f} s"
                                f"  rss {row.peak_rss_mb:4.0f} MB"
                            )
                            if contender not in best or row.work_s < best[contender].work_s:
                                best[contender] = row
                    rows.extend(best.values())
    return rows


# -- limits and tokens ---------------------------------------------------------------


@dataclass
class RateRow:
    check: str
    deployments: int
    contender: str
    configured: float | None  # per second
    requests: int
    work_s: float
    peak_window: int  # most requests the simulator saw in any 1 s window, in scope
    token_fetches: int
    expected_fetches: int

    @property
    def mean_rate(self) -> float:
        # n requests spaced by the limiter span n - 1 gaps (the first goes at once).
        return (self.requests - 1) / self.work_s


def rate_checks(plan: Plan, workdir: Path, log: Callable[[str], None]) -> list[RateRow]:
    rows: list[RateRow] = []
    size, rate = plan.rate["fleet"]
    with simulator(workdir, deployments=size, auth="oauth") as sim:
        config = airfleet_config(sim, fleet__max_per_second=rate, defaults__max_per_second=None)
        for contender in ("cli", "library"):
            measured, stats, _ = run_contender(sim, contender, config, "pools")
            rows.append(
                RateRow(
                    "fleet max_per_second",
                    size,
                    contender,
                    rate,
                    stats["requests_total"],
                    measured.work_s,
                    stats["max_per_second"],
                    stats["token_fetches"]["total"],
                    1,
                )
            )
    size, rate = plan.rate["credential"]
    with simulator(workdir, deployments=size, auth="oauth") as sim:
        config = airfleet_config(sim, auth__max_per_second=rate, defaults__max_per_second=None)
        measured, stats, _ = run_contender(sim, "library", config, "pools", rounds=2)
        peak = max(stats["max_per_second_by_credential"].values(), default=0)
        rows.append(
            RateRow(
                "credential max_per_second (2 plans, one engine)",
                size,
                "library",
                rate,
                stats["requests_total"],
                measured.work_s,
                peak,
                stats["token_fetches"]["total"],
                1,
            )
        )
    size, rate, rounds = plan.rate["deployment"]
    with simulator(workdir, deployments=size, auth="oauth") as sim:
        config = airfleet_config(sim, defaults__max_per_second=rate)
        measured, stats, _ = run_contender(sim, "library", config, "pools", rounds=rounds)
        peak = max(stats["max_per_second_by_deployment"].values(), default=0)
        rows.append(
            RateRow(
                f"deployment max_per_second ({rounds} plans, one engine)",
                size,
                "library",
                rate,
                # The per-deployment rate is per deployment: one deployment's share.
                stats["requests_total"] // size,
                measured.work_s,
                peak,
                stats["token_fetches"]["total"],
                1,
            )
        )
    size = plan.rate["deployment"][0] * 5
    with simulator(workdir, deployments=size, auth="password") as sim:
        config = airfleet_config(sim, defaults__max_per_second=None)
        measured, stats, _ = run_contender(sim, "library", config, "pools", rounds=3)
        rows.append(
            RateRow(
                "password on Airflow 3: one JWT per API server (3 plans, one engine)",
                size,
                "library",
                None,
                stats["requests_total"],
                measured.work_s,
                stats["max_per_second"],
                stats["token_fetches"]["total"],
                size,
            )
        )
    for row in rows:
        log(
            f"{row.check}: {row.requests} requests, peak {row.peak_window}/s, "
            f"mean {row.mean_rate:.1f}/s (configured {row.configured}), "
            f"{row.token_fetches} token fetches (want {row.expected_fetches})"
        )
    return rows


# -- reporting -----------------------------------------------------------------------


def _find(rows: list[Row], row: Row, contender: str) -> Row | None:
    for other in rows:
        if (other.latency_ms, other.deployments, other.operation, other.contender) == (
            row.latency_ms,
            row.deployments,
            row.operation,
            contender,
        ):
            return other
    return None


def _ratio(row: Row, base: Row | None) -> str:
    if base is None:
        return ""
    ratio = row.rps / base.rps
    # airflowctl's rows are a thousandth of the others: two significant digits.
    return f"{ratio:.2f}" if ratio >= 0.1 else f"{ratio:.2g}"


def _n(value: float) -> str:
    """Thousands separated; below 10 (airflowctl's req/s), two significant digits."""
    return f"{value:,.0f}" if value >= 10 or value != value else f"{value:.2g}"


AIRFLOWCTL_WHY = "one process per deployment, about a second of CPU each (hours at 10,000)"


def matrix_table(rows: list[Row], airflowctl_plan: Plan | None = None) -> list[str]:
    """The matrix; with ``airflowctl_plan`` (when airflowctl ran), a row saying so
    for each fleet and latency airflowctl was not run on."""
    lines = []
    for latency in sorted({r.latency_ms for r in rows}):
        for operation in ("pools", "trigger"):
            what = "list pools on" if operation == "pools" else "trigger one DAG on"
            lines += [
                f"### {latency:.0f} ms latency: {what} every deployment",
                "",
                "| deployments | contender | wall s | work s | req/s | x bare aiohttp "
                "| x official | CPU s | peak RSS MB | simulator CPU s |",
                "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            ]
            cells = [r for r in rows if (r.latency_ms, r.operation) == (latency, operation)]
            for size in sorted({r.deployments for r in cells}):
                for row in (r for r in cells if r.deployments == size):
                    lines.append(
                        f"| {_n(row.deployments)} | {LABELS[row.contender]} | {row.wall_s:.2f} "
                        f"| {row.work_s:.2f} | {_n(row.rps)} "
                        f"| {_ratio(row, _find(rows, row, 'bare'))} "
                        f"| {_ratio(row, _find(rows, row, 'official'))} | {row.cpu_s:.2f} "
                        f"| {row.peak_rss_mb:.0f} | {row.sim_cpu_s:.2f} |"
                    )
                ran = any(r.contender in AIRFLOWCTL for r in cells if r.deployments == size)
                if airflowctl_plan and not ran:
                    smallest, largest = airflowctl_plan.airflowctl_sizes
                    at = ", ".join(f"{ms:.0f} ms" for ms in airflowctl_plan.airflowctl_latencies)
                    lines.append(
                        f"| {_n(size)} | airflowctl | not run: {AIRFLOWCTL_WHY} (run on "
                        f"{_n(smallest)} to {_n(largest)} deployments at {at}) | | | | | | | |"
                    )
            lines.append("")
    return lines


def _get(rows: list[Row], latency: float, size: int, contender: str, op: str) -> Row | None:
    for r in rows:
        if (r.latency_ms, r.deployments, r.contender, r.operation) == (
            latency,
            size,
            contender,
            op,
        ):
            return r
    return None


def targets(rows: list[Row]) -> list[str]:
    """The issue's targets, read off the table (never asserted on: the machine is shared)."""
    lines = ["| target | contender | figure | met? |", "| --- | --- | --- | --- |"]
    largest = max(r.deployments for r in rows)

    def get(latency: float, size: int, contender: str, op: str = "pools") -> Row | None:
        return _get(rows, latency, size, contender, op)

    for contender in ("library", "library-auto", "library-open", "cli", "cli-auto"):
        for op in ("pools", "trigger"):
            row, bare = get(0.0, largest, contender, op), get(0.0, largest, "bare", op)
            if row and bare:
                ratio = row.rps / bare.rps
                lines.append(
                    f"| >= 0.75x bare aiohttp req/s at 0 ms ({_n(largest)}, {op}) "
                    f"| {LABELS[contender]} | {ratio:.3f}x ({_n(row.rps)} vs {_n(bare.rps)}) "
                    f"| {'yes' if ratio >= 0.75 else 'no'} |"
                )
    bound = IN_FLIGHT / 0.050
    for contender in ("library", "library-auto", "cli", "cli-auto", "bare"):
        for op in ("pools", "trigger"):
            row = get(50.0, largest, contender, op)
            if row:
                frac = row.rps / bound
                lines.append(
                    f"| >= 0.90x the bound {IN_FLIGHT} / 50 ms = {_n(bound)} req/s "
                    f"({_n(largest)}, {op}) | {LABELS[contender]} | {frac:.3f}x ({_n(row.rps)}) "
                    f"| {'yes' if frac >= 0.90 else 'no'} |"
                )
    # The issue reads this one at 5,000 Airflow 3 deployments (earlier rounds at 1,000).
    present = {r.deployments for r in rows if r.latency_ms == 50.0 and r.contender == "official"}
    read_at = [n for n in (1000, 5000) if n in present] or sorted(present)[-1:]
    for size in read_at:
        for contender in ("library", "library-auto", "cli", "cli-auto"):
            for op in ("pools", "trigger"):
                row, official = get(50.0, size, contender, op), get(50.0, size, "official", op)
                if row and official:
                    ratio = row.rps / official.rps
                    lines.append(
                        f"| >= 10x apache-airflow-client x16 at 50 ms ({_n(size)}, {op}) "
                        f"| {LABELS[contender]} | {ratio:.1f}x | {'yes' if ratio >= 10 else 'no'} |"
                    )
    for contender, declared in AUTO.items():
        for latency in sorted({r.latency_ms for r in rows}):
            for op in ("pools", "trigger"):
                auto, v2 = get(latency, largest, contender, op), get(latency, largest, declared, op)
                if auto and v2:
                    ratio = auto.rps / v2.rps
                    lines.append(
                        f"| api: auto within 10% of api: v2 req/s ({_n(largest)}, "
                        f"{latency:.0f} ms, {op}) | {LABELS[contender]} | {ratio:.3f}x "
                        f"({_n(auto.rps)} vs {_n(v2.rps)}) | {'yes' if ratio >= 0.90 else 'no'} |"
                    )
    for contender in ("library", "cli"):
        peak = max(
            (r.peak_rss_mb for r in rows if r.deployments == largest and r.contender == contender),
            default=None,
        )
        if peak is not None:
            lines.append(
                f"| peak RSS < 200 MB at {_n(largest)} deployments | {LABELS[contender]} "
                f"| {peak:.0f} MB | {'yes' if peak < 200 else 'no'} |"
            )
    sizes = sorted({r.deployments for r in rows})
    if len(sizes) >= 2:
        small, big = sizes[-2], sizes[-1]
        for latency in sorted({r.latency_ms for r in rows}):
            for contender in ("library", "cli"):
                a, b = get(latency, small, contender), get(latency, big, contender)
                if a and b:
                    growth = (b.work_s / a.work_s) / (big / small)
                    lines.append(
                        f"| time grows linearly ({_n(small)} -> {_n(big)}, {latency:.0f} ms, "
                        f"pools) | {LABELS[contender]} | work time per deployment x{growth:.2f} "
                        f"(wall {a.wall_s:.2f} -> {b.wall_s:.2f} s) "
                        f"| {'yes' if growth <= 1.25 else 'no'} |"
                    )
    return lines


def _complete_cells(
    rows: list[Row], contenders: tuple[str, ...]
) -> Iterator[tuple[float, int, str, list[Row]]]:
    """(latency, size, operation, their rows) of every cell all of ``contenders`` ran in."""
    for latency, size, op in sorted({(r.latency_ms, r.deployments, r.operation) for r in rows}):
        found = [_get(rows, latency, size, c, op) for c in contenders]
        if all(found):
            yield latency, size, op, [row for row in found if row is not None]


def auto_table(rows: list[Row]) -> list[str]:
    """``api: auto`` against ``api: v2``, the same fleet, every cell both ran in."""
    lines = [
        "| latency | deployments | operation | library v2 req/s | library auto req/s "
        "| auto / v2 | CLI v2 req/s | CLI auto req/s | auto / v2 | CLI wall s v2 / auto |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for latency, size, op, found in _complete_cells(
        rows, ("library", "library-auto", "cli", "cli-auto")
    ):
        lib, lib_auto, cli, cli_auto = found
        lines.append(
            f"| {latency:.0f} ms | {_n(size)} | {op} | {_n(lib.rps)} | {_n(lib_auto.rps)} "
            f"| {lib_auto.rps / lib.rps:.2f} | {_n(cli.rps)} | {_n(cli_auto.rps)} "
            f"| {cli_auto.rps / cli.rps:.2f} | {cli.wall_s:.2f} / {cli_auto.wall_s:.2f} |"
        )
    return lines


def airflowctl_table(rows: list[Row]) -> list[str]:
    """airflowctl's two ways against airfleet's CLI with ``api: auto``: whole processes."""
    lines = [
        "| latency | deployments | operation | airflowctl loop wall s (per deployment) "
        f"| airflowctl xargs -P {AIRFLOWCTL_PROCESSES} wall s | airfleet CLI (auto) wall s "
        "| CLI faster than xargs | CLI faster than loop | CPU s: loop / xargs / CLI |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for latency, size, op, found in _complete_cells(
        rows, ("airflowctl-loop", "airflowctl-xargs", "cli-auto")
    ):
        loop, xargs, cli = found
        lines.append(
            f"| {latency:.0f} ms | {_n(size)} | {op} | {loop.wall_s:.1f} "
            f"({loop.work_s / size:.2f}) | {xargs.wall_s:.1f} "
            f"| {cli.wall_s:.2f} | {xargs.wall_s / cli.wall_s:.0f}x "
            f"| {loop.wall_s / cli.wall_s:.0f}x "
            f"| {loop.cpu_s:.0f} / {xargs.cpu_s:.0f} / {cli.cpu_s:.1f} |"
        )
    return lines


def rate_table(rows: list[RateRow]) -> list[str]:
    lines = [
        "| check | deployments | contender | configured /s | requests | peak 1 s window "
        "| peak / configured | mean rate / configured | token fetches (want) |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        if row.configured:
            peak = f"{row.peak_window / row.configured:.2f}"
            mean = f"{row.mean_rate / row.configured:.2f}"
            conf = f"{row.configured:g}"
        else:
            peak = mean = conf = "unlimited"
        lines.append(
            f"| {row.check} | {_n(row.deployments)} | {LABELS[row.contender]} | {conf} "
            f"| {_n(row.requests)} | {row.peak_window} | {peak} | {mean} "
            f"| {row.token_fetches} ({row.expected_fetches}) |"
        )
    return lines


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latencies = sorted({r.latency_ms for r in rows})
    fig, axes = plt.subplots(
        2, len(latencies), figsize=(6 * len(latencies), 10), squeeze=False, sharex=True
    )
    for col, latency in enumerate(latencies):
        for line, (metric, label) in enumerate((("wall_s", "wall time (s)"), ("rps", "req/s"))):
            ax = axes[line][col]
            for contender in ORDER:
                for operation, style in (("pools", "-o"), ("trigger", "--s")):
                    points = sorted(
                        (r.deployments, getattr(r, metric))
                        for r in rows
                        if (r.latency_ms, r.contender, r.operation)
                        == (latency, contender, operation)
                    )
                    if points:
                        xs, ys = zip(*points, strict=True)
                        ax.plot(
                            xs,
                            ys,
                            style,
                            color=COLOURS[contender],
                            label=f"{LABELS[contender]} ({operation})",
                        )
            ax.set_xscale("log")
            ax.set_yscale("log")
            sizes = sorted({r.deployments for r in rows})
            ax.set_xticks(sizes, [f"{size:,}" for size in sizes])
            ax.minorticks_off()
            ax.set_title(f"{latency:.0f} ms latency: {label}")
            ax.set_xlabel("deployments")
            ax.set_ylabel(label)
            ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8)
    fig.suptitle("airfleet vs alternatives on the simulator (wall time includes start-up)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine(airflowctl: Path | None = None) -> str:
    cores = os.cpu_count()
    text = (
        f"{platform.system()} {platform.machine()}, {cores} cores, Python "
        f"{platform.python_version()}, aiohttp {version('aiohttp')}, "
        f"apache-airflow-client {version('apache-airflow-client')}, "
        f"requests {version('requests')}"
    )
    if airflowctl is not None:
        python = airflowctl.with_name("python")
        done = subprocess.run(
            [str(python), "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=True,
        )
        text += f", {AIRFLOWCTL_REQUIREMENT} (own venv, Python {done.stdout.strip()})"
    return text


def resolve_airflowctl(mode: str, log: Callable[[str], None]) -> tuple[Path | None, str | None]:
    """airflowctl's executable, or None and why not."""
    if mode == "no":
        return None, "left out (--airflowctl no)"
    installed = airflowctl_installed()
    if installed is not None:
        return installed, None
    if mode == "if-installed":
        return None, (
            f"not installed (--airflowctl if-installed); `benchmarks/run.py --airflowctl "
            f"install` installs {AIRFLOWCTL_REQUIREMENT} once, from PyPI"
        )
    if shutil.which("xargs") is None:
        return None, "xargs is not on PATH"
    return ensure_airflowctl(log), None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small fleets only (smoke test)")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--sizes", help="fleet sizes, comma-separated (e.g. 10,100,5000)")
    parser.add_argument("--latencies", help="added latencies in ms, comma-separated (e.g. 0)")
    parser.add_argument(
        "--repeat", type=int, help="runs per cell, the fastest kept (default: 3; --quick: 1)"
    )
    parser.add_argument(
        "--airflowctl",
        choices=("install", "if-installed", "no"),
        help="run airflowctl, installing it into its own venv on first use (the default), "
        "only if that venv exists (the default with --quick: no network), or not at all",
    )
    parser.add_argument(
        "--airflowctl-repeat",
        type=int,
        default=1,
        help="runs per cell for airflowctl, the fastest kept (default 1: one run at "
        "1,000 deployments is 1,000 processes)",
    )
    args = parser.parse_args()
    plan = QUICK if args.quick else FULL
    repeat = args.repeat or (1 if args.quick else 3)
    if args.sizes:
        plan = replace(plan, sizes=tuple(int(n) for n in args.sizes.split(",")))
    if args.latencies:
        plan = replace(plan, latencies=tuple(float(n) for n in args.latencies.split(",")))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    def log(text: str) -> None:
        print(text, flush=True)

    mode = args.airflowctl or ("if-installed" if args.quick else "install")
    airflowctl, skipped = resolve_airflowctl(mode, log)
    if skipped:
        log(f"airflowctl: {skipped}")
    with tempfile.TemporaryDirectory() as tmp:
        rows = matrix(
            plan,
            Path(tmp),
            log,
            repeat,
            airflowctl=airflowctl,
            airflowctl_repeat=min(args.airflowctl_repeat, repeat),
        )
        rates = rate_checks(plan, Path(tmp), log)
    took = time.perf_counter() - started
    command = " ".join(["benchmarks/run.py", *sys.argv[1:]])
    ran_airflowctl = any(r.contender in AIRFLOWCTL for r in rows)
    smallest, largest = plan.airflowctl_sizes
    if ran_airflowctl:
        airflowctl_text = [
            "## airflowctl",
            "",
            f"The Airflow 3 CLI ({AIRFLOWCTL_REQUIREMENT}, its own virtual environment), one "
            "process per deployment, as a user runs it on many servers: a shell loop "
            f"(`for each deployment: airflowctl pools list`) and `xargs -P "
            f"{AIRFLOWCTL_PROCESSES}`. Each deployment is an airflowctl environment "
            "(`auth login --api-url URL --env NAME --skip-keyring`, chosen by "
            "`AIRFLOW_CLI_ENVIRONMENT`), the token comes from `AIRFLOW_CLI_TOKEN`. Work time "
            "is the whole loop, every process's start-up included; CPU s is every process's; "
            "peak RSS is the largest one process reached (xargs holds "
            f"{AIRFLOWCTL_PROCESSES} at once). Fastest of "
            f"{min(args.airflowctl_repeat, repeat)} run(s) per cell. Run on {_n(smallest)} to "
            f"{_n(largest)} deployments only: {AIRFLOWCTL_WHY}; and at "
            f"{', '.join(f'{ms:.0f} ms' for ms in plan.airflowctl_latencies)} only: a "
            "process's start-up, not the network, sets its pace.",
            "",
            *airflowctl_table(rows),
            "",
        ]
    else:
        airflowctl_text = [f"airflowctl: {skipped or 'not run on these fleet sizes'}.", ""]
    lines = [
        "# airfleet vs the alternatives, at fleet scale",
        "",
        f"`.venv/bin/python {command}`, {when}, {took / 60:.1f} min; {machine(airflowctl)}.",
        "",
        f"Each cell is the fastest of {repeat} runs, contenders interleaved. "
        "The simulator runs in its own process on loopback; each contender is a whole "
        "process. airfleet and the bare loop keep "
        f"{IN_FLIGHT} requests in flight, apache-airflow-client uses {OFFICIAL_THREADS} threads, "
        "requests goes one at a time. Requests are counted by the simulator. *wall s*: the "
        "whole process, start-up included; *work s*: first request to last answer, as the "
        "contender timed it (the CLI: its report's duration); *req/s*: requests / work s; "
        "*CPU s*: the process's rusage; *peak RSS*: its VmHWM at exit; *simulator CPU s*: "
        "what serving it cost the simulator. airfleet's rows run one fleet file twice: "
        "`api: v2` declared and `api: auto` (detection). The machine is shared: read the "
        "ratios of one run, not the absolute figures.",
        "",
        "## Targets",
        "",
        *targets(rows),
        "",
        "## api: auto against api: v2",
        "",
        *auto_table(rows),
        "",
        *airflowctl_text,
        "## Fleet matrix",
        "",
        *matrix_table(rows, plan if ran_airflowctl else None),
        "## Limits and tokens",
        "",
        "*peak 1 s window*: the most requests the simulator saw in any one-second window, "
        "in the limit's scope (fleet, credential, busiest deployment); it must never exceed "
        "the configured rate. *mean rate*: requests over the work time (per deployment for "
        "the deployment limit); want >= 0.95 of the configured rate.",
        "",
        *rate_table(rates),
        "",
    ]
    (args.out / "fleet.md").write_text("\n".join(lines))
    (args.out / "fleet.json").write_text(
        json.dumps(
            {
                "when": when,
                "machine": machine(airflowctl),
                "command": command,
                "airflowctl": {
                    "requirement": AIRFLOWCTL_REQUIREMENT,
                    "executable": str(airflowctl) if airflowctl else None,
                    "skipped": skipped,
                    "sizes": list(plan.airflowctl_sizes),
                    "latencies_ms": list(plan.airflowctl_latencies),
                },
                "rows": [asdict(r) | {"rps": r.rps} for r in rows],
                "rates": [asdict(r) | {"mean_rate": r.mean_rate} for r in rates],
            },
            indent=1,
        )
        + "\n"
    )
    plot(rows, args.out / "fleet.png")
    log(f"wrote {args.out / 'fleet.md'}, fleet.png and fleet.json in {took:.0f} s")


if __name__ == "__main__":
    main()
