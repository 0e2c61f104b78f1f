"""The contenders, each run as a whole process: ``python contenders.py NAME CONFIG ...``.

Each lists pools (or triggers one DAG) on every deployment of the fleet file,
``--rounds`` times, then prints one JSON line: ``work_s``, the time from its
first request to its last answer (interpreter start-up, imports and reading the
fleet file are left out; the driver times the whole process separately), and
``failed``, the calls that did not succeed. CPU time (rusage) and peak RSS
(VmHWM, written at exit) are taken the same way for every contender.

* ``bare``: one aiohttp session and a semaphore; reads each body, parses
  nothing. The ceiling for Python on this machine.
* ``library``: airfleet's library API (``Engine.run`` on a plan).
  It runs with ``Engine(gc_threshold=20_000)``, as the CLI does (a process
  owner may pace CPython's collector; the library does not by default);
  ``--no-gc-pacing`` runs it with the library's default.
* ``official``: apache-airflow-client, a ``ThreadPoolExecutor`` of 16 threads,
  one ``ApiClient`` per deployment, as a user would write it today.
* ``requests``: a sequential ``requests.Session`` loop (the seed's example).
* ``airflowctl-loop`` and ``airflowctl-xargs``: the Airflow 3 CLI, one
  ``airflowctl`` process per deployment, as a user runs it on many servers: a
  shell loop, or ``xargs -P 16`` (``--concurrency``). ``--airflowctl`` names the
  executable (its own virtual environment); ``$AIRFLOW_HOME`` holds one
  airflowctl environment per deployment, named after it (what ``airflowctl
  auth login --api-url URL --env NAME --skip-keyring`` writes: the driver sets
  them up); the token is ``$AIRFLOW_CLI_TOKEN``. Work time is the whole loop,
  every process's start-up included: that is the cost of the approach. Peak
  RSS is the largest one airflowctl process reached.

(airfleet's CLI is the fifth contender; the driver runs it directly.)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import RSS_FILE, report_peak_rss_at_exit

DAG_ID = "hello"
# Each returns (work seconds, calls failed); the clock runs from the first
# request to the last answer, inside the event loop where there is one.
Work = Callable[[list[str], str, int, int, str, str], tuple[float, int]]


def named_deployments(config: str) -> list[tuple[str, str]]:
    """(name, url) of every deployment of the fleet file."""
    # libyaml when present, as airfleet's own loader does: 10,000 deployments
    # take seconds to parse in pure Python, which would swamp the wall time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(Path(config).read_text(), Loader=loader)  # noqa: S506 - a safe loader
    return [(d["name"], d["url"]) for d in doc["deployments"]]


def deployments(config: str) -> list[str]:
    return [url for _, url in named_deployments(config)]


def trigger_body(run_id: str) -> dict[str, Any]:
    # An Airflow 3 trigger body (airfleet sends an explicit instant; for the
    # simulator's throughput, null costs the same).
    return {"dag_run_id": run_id, "logical_date": None, "conf": {}}


def bare(
    urls: list[str], token: str, rounds: int, concurrency: int, op: str, run_id: str
) -> tuple[float, int]:
    """The ceiling: one session, a semaphore, nothing else."""
    import aiohttp

    async def main() -> tuple[float, int]:
        failed = 0
        headers = {"Authorization": f"Bearer {token}"}
        semaphore = asyncio.Semaphore(concurrency)
        connector = aiohttp.TCPConnector(limit=concurrency + 8, limit_per_host=0)
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def one(url: str, run: str) -> None:
                nonlocal failed
                async with semaphore:
                    if op == "pools":
                        request = session.get(f"{url}/api/v2/pools")
                    else:
                        request = session.post(
                            f"{url}/api/v2/dags/{DAG_ID}/dagRuns", json=trigger_body(run)
                        )
                    async with request as resp:
                        await resp.read()
                        failed += resp.status >= 300

            started = time.perf_counter()
            for r in range(rounds):
                await asyncio.gather(*(one(url, f"{run_id}-{r}") for url in urls))
            work_s = time.perf_counter() - started
        return work_s, failed

    return asyncio.run(main())


def library(
    config: str, rounds: int, op: str, run_id: str, *, gc_pacing: bool = True
) -> tuple[float, int]:
    """airfleet's library API: load the fleet, run plans through one engine."""
    import airfleet

    fleet = airfleet.load_fleet(config)
    # Only the runs are timed: the other contenders' clocks also start after
    # their imports and after reading the fleet file.

    async def main() -> tuple[float, int]:
        failed = 0
        # A benchmark owns its process, as the CLI does, and so may pace the
        # collector; without it, the library's default leaves it alone.
        options: dict[str, Any] = {"gc_threshold": 20_000} if gc_pacing else {}
        async with airfleet.Engine(fleet, **options) as engine:
            started = time.perf_counter()
            for r in range(rounds):
                if op == "pools":
                    plan = airfleet.plan_pools(fleet.deployments)
                else:
                    plan = airfleet.plan_trigger(
                        fleet.deployments, [DAG_ID], run_id=f"{run_id}-{r}"
                    )
                report = await engine.run(plan)
                failed += report.summary.failed
            work_s = time.perf_counter() - started
        return work_s, failed

    return asyncio.run(main())


def official(
    urls: list[str], token: str, rounds: int, concurrency: int, op: str, run_id: str
) -> tuple[float, int]:
    """apache-airflow-client in a thread pool, one ApiClient per deployment."""
    from concurrent.futures import ThreadPoolExecutor

    from airflow_client import client as af

    def one(url: str, run: str) -> bool:
        config = af.Configuration(host=url, access_token=token)
        with af.ApiClient(config) as api:
            try:
                if op == "pools":
                    af.PoolApi(api).get_pools()
                else:
                    body = af.TriggerDAGRunPostBody(dag_run_id=run, logical_date=None, conf={})
                    af.DagRunApi(api).trigger_dag_run(DAG_ID, body)
            except af.ApiException:
                return False
        return True

    failed = 0
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        for r in range(rounds):
            runs = [f"{run_id}-{r}"] * len(urls)
            failed += sum(not ok for ok in pool.map(one, urls, runs))
    return time.perf_counter() - started, failed


def sequential(
    urls: list[str], token: str, rounds: int, concurrency: int, op: str, run_id: str
) -> tuple[float, int]:
    """One requests.Session, one deployment after the other."""
    import requests

    failed = 0
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {token}"
        started = time.perf_counter()
        for r in range(rounds):
            for url in urls:
                if op == "pools":
                    resp = session.get(f"{url}/api/v2/pools", timeout=30)
                else:
                    resp = session.post(
                        f"{url}/api/v2/dags/{DAG_ID}/dagRuns",
                        json=trigger_body(f"{run_id}-{r}"),
                        timeout=30,
                    )
                resp.json()
                failed += not resp.ok
        return time.perf_counter() - started, failed


def airflowctl_command(airflowctl: str, op: str, run_id: str) -> list[str]:
    """What a user types for one deployment (the environment, the token: from env vars)."""
    if op == "pools":
        return [airflowctl, "pools", "list"]
    return [airflowctl, "dags", "trigger", DAG_ID, "--dag-run-id", run_id]


def per_deployment(command: str) -> Callable[[str], str]:
    """The shell line for one deployment, its name read from a shell word (``$name``)."""

    def one(name: str) -> str:
        return (
            f'AIRFLOW_CLI_ENVIRONMENT="{name}" {command} > "$OUT/{name}.json" '
            f'2>> "$OUT/stderr" || echo "{name}" >> "$OUT/failed"'
        )

    return one


def airflowctl_fleet(
    names: list[str], airflowctl: str, rounds: int, concurrency: int, op: str, run_id: str, how: str
) -> tuple[float, int]:
    """One airflowctl process per deployment: a shell loop, or ``xargs -P concurrency``.

    Each process's answer goes to a file of its own, its failure to a shared
    list; afterwards (the clock stopped) every answer is read back: the pools
    listed, or the run triggered under the run id asked for.
    """
    failed = 0
    work_s = 0.0
    for r in range(rounds):
        run = f"{run_id}-{r}"
        command = " ".join(shlex.quote(arg) for arg in airflowctl_command(airflowctl, op, run))

        with tempfile.TemporaryDirectory() as out:
            one = per_deployment(command)
            Path(out, "names").write_text("".join(f"{name}\n" for name in names))
            if how == "loop":
                # for each deployment: airflowctl ...
                args = [
                    "sh",
                    "-c",
                    f'while IFS= read -r name; do {one("$name")}; done < "$OUT/names"',
                ]
            else:
                # xargs -P 16 -n 1: 16 processes at a time, one deployment each.
                args = ["xargs", "-P", str(concurrency), "-n", "1", "sh", "-c", one("$1"), "sh"]
            with Path(out, "names").open() as stdin:
                started = time.perf_counter()
                done = subprocess.run(args, stdin=stdin, env={**os.environ, "OUT": out})
                work_s += time.perf_counter() - started
            if done.returncode != 0:
                raise RuntimeError(f"{args[0]} exited {done.returncode}")
            for name in names:
                try:
                    answer = json.loads(Path(out, f"{name}.json").read_text())
                except (OSError, ValueError):
                    failed += 1
                    continue
                # pools list: [pool, ...]; dags trigger: [the run]
                good = bool(answer) if op == "pools" else answer[0].get("dag_run_id") == run
                failed += not good
            failures = Path(out, "failed")
            if failures.exists():
                # Counted above too (an empty or partial answer); keep the larger count.
                failed = max(failed, len(failures.read_text().split()))
                print(Path(out, "stderr").read_text()[-2000:], file=sys.stderr)
    return work_s, failed


CONTENDERS: dict[str, Work] = {"bare": bare, "official": official, "requests": sequential}
# Imported before the clock starts, as airfleet is by the library contender.
IMPORTS = {"bare": "aiohttp", "official": "airflow_client.client", "requests": "requests"}


def main() -> None:
    parser = argparse.ArgumentParser()
    airflowctl = ["airflowctl-loop", "airflowctl-xargs"]
    parser.add_argument("contender", choices=["library", *CONTENDERS, *airflowctl])
    parser.add_argument("config")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--operation", choices=["pools", "trigger"], default="pools")
    parser.add_argument("--run-id", default="bench")
    parser.add_argument(
        "--no-gc-pacing",
        action="store_true",
        help="library: leave CPython's collector at its defaults during runs",
    )
    parser.add_argument("--airflowctl", help="airflowctl-*: the airflowctl executable")
    args = parser.parse_args()
    if args.contender in airflowctl:
        if not args.airflowctl:
            parser.error(f"{args.contender} needs --airflowctl")
        os.environ["AIRFLOW_CLI_TOKEN"] = os.environ["AIRFLEET_SIM_TOKEN"]
        names = [name for name, _ in named_deployments(args.config)]
        work_s, failed = airflowctl_fleet(
            names,
            args.airflowctl,
            args.rounds,
            args.concurrency,
            args.operation,
            args.run_id,
            args.contender.partition("-")[2],
        )
        # The largest airflowctl process (the processes' own peaks; this one,
        # small, only forked the shell).
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        rss_file = os.environ.get(RSS_FILE)
        if rss_file:
            Path(rss_file).write_text(str(peak_kb / 1024))
        print(json.dumps({"work_s": work_s, "failed": failed}))
        return
    report_peak_rss_at_exit()
    if args.contender == "library":
        # The engine's limits come from the fleet file, like a user's.
        work_s, failed = library(
            args.config,
            args.rounds,
            args.operation,
            args.run_id,
            gc_pacing=not args.no_gc_pacing,
        )
    else:
        urls = deployments(args.config)
        token = os.environ["AIRFLEET_SIM_TOKEN"]
        work = CONTENDERS[args.contender]
        importlib.import_module(IMPORTS[args.contender])
        work_s, failed = work(
            urls, token, args.rounds, args.concurrency, args.operation, args.run_id
        )
    print(json.dumps({"work_s": work_s, "failed": failed}))


if __name__ == "__main__":
    main()
