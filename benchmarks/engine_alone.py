"""airfleet's own cost per call: the engine over a transport that answers at once.

Usage: .venv/bin/python benchmarks/engine_alone.py [--deployments 1000] [--runs 30] [--cold]

No network and no simulator: a stub transport hands back one recorded Airflow 3
pool list after a bare event-loop turn, so what is timed is the engine, the
operation's conversation, answer parsing and result collection, in CPU
microseconds per call (``time.process_time``). ``--runs`` plans of list-pools
on every deployment go through one engine (its routes warm after the first);
``--cold`` times the first run of a fresh engine instead, where every
deployment is new (what one CLI run at 10,000 deployments pays); ``--rate 10``
gives each deployment airfleet's default rate, as the fleet matrix runs it.

Meant for A/B comparisons of two source trees side by side, interleaved, e.g.
``PYTHONPATH=/tmp/before/src .venv/bin/python benchmarks/engine_alone.py``
against the working tree; the figures are quoted in results/optimisations.md.
This is the steady-state half of the story: end to end, aiohttp and the
garbage collector multiply every microsecond saved here (see that file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

import airfleet
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Fleet
from airfleet.transport import HttpRequest, HttpResponse

# What the simulator (and Airflow 3.3) answers to GET /api/v2/pools.
POOLS = {
    "pools": [
        {
            "name": "default_pool",
            "slots": 128,
            "description": "Default pool",
            "include_deferred": False,
            "occupied_slots": 1,
            "running_slots": 1,
            "queued_slots": 2,
            "scheduled_slots": 0,
            "open_slots": 125,
            "deferred_slots": 0,
            "team_name": None,
        }
    ],
    "total_entries": 1,
}


class InstantTransport:
    """Answers every request with the same pool list, after one loop turn."""

    def __init__(self) -> None:
        self._body = json.dumps(POOLS).encode()
        headers = {"Content-Type": "application/json", "Content-Length": str(len(self._body))}
        self._headers = CIMultiDictProxy(CIMultiDict(headers))

    async def send(self, request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)  # a real send suspends at least once
        return HttpResponse(200, self._headers, self._body)

    async def aclose(self) -> None:
        return None


def make_fleet(deployments: int, rate: float | None = None) -> Fleet:
    lines = [
        "version: 1",
        f"defaults: {{auth: api, api: v2, max_per_second: {'null' if rate is None else rate}}}",
        "limits: {max_in_flight: 200}",
        "auth:",
        "  api: {kind: token, token: bench-token-0123456789}",
        "deployments:",
    ]
    lines += [
        f"  - {{name: dep-{i:05d}, url: 'http://127.0.0.1:9/d/dep-{i:05d}'}}"
        for i in range(deployments)
    ]
    return parse_fleet("\n".join(lines) + "\n", source="engine_alone.yaml", env={})


async def per_call_us(fleet: Fleet, runs: int, *, cold: bool) -> float:
    async with airfleet.Engine(fleet, transport=InstantTransport()) as engine:
        if not cold:  # warm the routes, then time the steady state
            await engine.run(airfleet.plan_pools(fleet.deployments))
        started = time.process_time()
        for _ in range(1 if cold else runs):
            report = await engine.run(airfleet.plan_pools(fleet.deployments))
            assert report.summary.ok == len(fleet.deployments), report.summary
        spent = time.process_time() - started
    return spent / (len(fleet.deployments) * (1 if cold else runs)) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--cold", action="store_true", help="time one run of a fresh engine")
    parser.add_argument(
        "--rate",
        type=float,
        default=None,
        help="each deployment's max_per_second (airfleet's default is 10; with --cold, "
        "every call still leaves at once)",
    )
    args = parser.parse_args()
    if args.rate is not None and not args.cold:
        parser.error("--rate needs --cold: warm runs would wait for the rate")
    fleet = make_fleet(args.deployments, args.rate)
    result: dict[str, Any] = {
        "deployments": args.deployments,
        "runs": 1 if args.cold else args.runs,
        "cold": args.cold,
        "rate": args.rate,
        "us_per_call": round(asyncio.run(per_call_us(fleet, args.runs, cold=args.cold)), 1),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
