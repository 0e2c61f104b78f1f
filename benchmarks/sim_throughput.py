"""How fast one simulator process serves a large fleet (issue: 10,000 deployments, >= 5,000 req/s).

Usage: .venv/bin/python benchmarks/sim_throughput.py [--deployments 10000] [--rounds 3]

The simulator runs in its own process; a bare aiohttp client in another lists
pools on every deployment, ``--rounds`` times, 200 in flight. Requests are
counted by the simulator. Writes benchmarks/results/sim_throughput.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, run_child, simulator

CONTENDERS = Path(__file__).resolve().parent / "contenders.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory() as tmp,
        simulator(Path(tmp), deployments=args.deployments) as sim,
    ):
        sim.reset()
        measured = run_child(
            [
                sys.executable,
                str(CONTENDERS),
                "bare",
                str(sim.config),
                "--rounds",
                str(args.rounds),
                "--concurrency",
                str(args.concurrency),
            ],
            env=sim.env,
        )
        stats = sim.stats()
        rss = sim.peak_rss_mb()
    rps = stats["requests_total"] / measured.work_s
    lines = [
        f"# Simulator throughput ({args.deployments} deployments, one process)",
        "",
        "| requests | time (s) | req/s (server-counted) | server peak RSS MB | client CPU s |",
        "| --- | --- | --- | --- | --- |",
        f"| {stats['requests_total']} | {measured.work_s:.2f} | {rps:.0f} | {rss:.0f} "
        f"| {measured.cpu_s:.2f} |",
    ]
    out = ROOT / "benchmarks" / "results" / "sim_throughput.md"
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
