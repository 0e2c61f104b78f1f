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

(airfleet's CLI is the fifth contender; the driver runs it directly.)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import report_peak_rss_at_exit

DAG_ID = "hello"
# Each returns (work seconds, calls failed); the clock runs from the first
# request to the last answer, inside the event loop where there is one.
Work = Callable[[list[str], str, int, int, str, str], tuple[float, int]]


def deployments(config: str) -> list[str]:
    # libyaml when present, as airfleet's own loader does: 10,000 deployments
    # take seconds to parse in pure Python, which would swamp the wall time.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    doc = yaml.load(Path(config).read_text(), Loader=loader)  # noqa: S506 - a safe loader
    return [d["url"] for d in doc["deployments"]]


def trigger_body(run_id: str) -> dict[str, object]:
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


CONTENDERS: dict[str, Work] = {"bare": bare, "official": official, "requests": sequential}
# Imported before the clock starts, as airfleet is by the library contender.
IMPORTS = {"bare": "aiohttp", "official": "airflow_client.client", "requests": "requests"}


def main() -> None:
    report_peak_rss_at_exit()
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=["library", *CONTENDERS])
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
    args = parser.parse_args()
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
