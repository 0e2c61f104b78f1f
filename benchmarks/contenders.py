"""The contenders, each run as a whole process: ``python contenders.py NAME CONFIG ...``.

Each lists pools (or triggers one DAG) on every deployment of the fleet file,
``--rounds`` times, then prints its own CPU time and peak RSS as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import child_usage


def deployments(config: str) -> tuple[list[str], str]:
    doc = yaml.safe_load(Path(config).read_text())
    urls = [d["url"] for d in doc["deployments"]]
    return urls, os.environ["AIRFLEET_SIM_TOKEN"]


async def bare_aiohttp(config: str, rounds: int, concurrency: int, operation: str) -> None:
    """The ceiling: one session, a semaphore, nothing else."""
    import aiohttp

    urls, token = deployments(config)
    headers = {"Authorization": f"Bearer {token}"}
    semaphore = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency + 8, limit_per_host=0)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(url: str, i: int) -> None:
            async with semaphore:
                if operation == "pools":
                    async with session.get(f"{url}/api/v2/pools") as resp:
                        await resp.read()
                else:
                    body = {"dag_run_id": f"bare-{i}", "logical_date": None, "conf": {}}
                    async with session.post(f"{url}/api/v2/dags/hello/dagRuns", json=body) as resp:
                        await resp.read()

        for r in range(rounds):
            await asyncio.gather(*(one(url, r) for url in urls))


async def airfleet_library(config: str, rounds: int, concurrency: int, operation: str) -> None:
    """airfleet's library API: load the fleet, run plans through the engine."""
    import airfleet

    fleet = airfleet.load_fleet(config)
    async with airfleet.Engine(fleet) as engine:
        for r in range(rounds):
            if operation == "pools":
                plan = airfleet.plan_pools(fleet.deployments)
            else:
                plan = airfleet.plan_trigger(fleet.deployments, ["hello"], run_id=f"lib-{r}")
            report = await engine.run(plan)
            assert report.summary.failed == 0, report.summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("contender", choices=["bare", "library"])
    parser.add_argument("config")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--operation", choices=["pools", "trigger"], default="pools")
    args = parser.parse_args()
    run = {"bare": bare_aiohttp, "library": airfleet_library}[args.contender]
    started = time.perf_counter()
    asyncio.run(run(args.config, args.rounds, args.concurrency, args.operation))
    print(child_usage(time.perf_counter() - started))


if __name__ == "__main__":
    main()
