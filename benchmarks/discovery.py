"""How long discovery takes, and what the platform counts, against the simulator's Astro API.

    .venv/bin/python benchmarks/discovery.py [--sizes 250,10000] [--latencies 0,50]

For each organization size and platform latency, discovers every deployment
with airfleet's pacing (the engine's GCRA schedule, one request per token at
a time, and a guard over the answers of the last window) and, side by side
in the same run, with the schedule alone (departures paced, no guard).
Both read pages of 100 at the documented 25 GETs a second.
It prints wall time, requests, and the platform's own count of the most
requests in any one second (and its 429s) for each.

The simulator serves in this process, on its own thread and event loop,
plain http on loopback: it sleeps the latency, so it costs no CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

import anyio  # noqa: E402

import airfleet  # noqa: E402
from airfleet import discovery  # noqa: E402
from airfleet.fleet_file import parse_fleet  # noqa: E402
from airfleet.sim import Simulator  # noqa: E402


@contextmanager
def serving(sim: Simulator) -> Iterator[str]:
    ready = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        done = asyncio.Event()
        box["stop"] = (asyncio.get_running_loop(), done)
        async with sim.running(port=0) as server:
            box["url"] = server.url
            ready.set()
            await done.wait()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(30)
    try:
        yield box["url"]
    finally:
        loop, done = box["stop"]
        loop.call_soon_threadsafe(done.set)
        thread.join(30)


class _DeparturesOnly(discovery._Lane):
    """The engine's schedule alone: each request on its GCRA slot, no guard over answers."""

    async def depart(self) -> None:
        await self.pacer.book()

    def answered(self) -> None:
        pass


def one(size: int, latency_ms: float, mode: str) -> dict[str, Any]:
    sim = Simulator(deployments=size, api="mixed", seed=1, dags=("hello",))
    org = sim.enable_astro(page_max=100, workspace_names=True)
    org.latency_ms = latency_ms
    with serving(sim) as url:
        fleet = parse_fleet(sim.discovery_yaml(url), env=sim.env())
        lane = discovery._Lane
        if mode == "schedule alone":
            discovery._Lane = _DeparturesOnly  # type: ignore[misc]
        try:
            started = time.perf_counter()
            found = anyio.run(airfleet.discover, fleet)
            took = time.perf_counter() - started
        finally:
            discovery._Lane = lane  # type: ignore[misc]
        stats = sim.stats()["astro"]
    assert len(found.deployments) == size
    return {
        "size": size,
        "latency_ms": latency_ms,
        "mode": mode,
        "seconds": round(took, 3),
        "requests": stats["requests"],
        "platform_max_per_second": stats["max_per_second"],
        "rate_limited": stats["rate_limited"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="250,10000")
    parser.add_argument("--latencies", default="0,50")
    args = parser.parse_args()
    rows = []
    for size in map(int, args.sizes.split(",")):
        for latency in map(float, args.latencies.split(",")):
            for mode in ("airfleet", "schedule alone"):
                row = one(size, latency, mode)
                rows.append(row)
                print(json.dumps(row), flush=True)
    print()
    print(
        "| deployments | platform latency | pacing | wall s | requests | max/s (platform) | 429s |"
    )
    print("| ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(
            f"| {r['size']:,} | {r['latency_ms']:g} ms | {r['mode']} | {r['seconds']:.2f} "
            f"| {r['requests']} | {r['platform_max_per_second']} | {r['rate_limited']} |"
        )


if __name__ == "__main__":
    main()
