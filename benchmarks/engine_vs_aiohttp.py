"""airfleet's engine against a bare aiohttp loop, side by side, on the simulator (issue #4).

Usage: .venv/bin/python benchmarks/engine_vs_aiohttp.py [--deployments 1000] [--rounds 20]
           [--repeat 3] [--unpaced] [--baseline TREE] [--label TEXT] [--out PATH]

Scenarios (each contender a whole process; the simulator in its own process):
  * 0 ms latency, list pools on every deployment, 200 in flight: airfleet should
    reach >= 0.75x the bare loop's requests/s.
  * 50 ms latency, 200 in flight: the bound is 200 / 0.05 = 4,000 requests/s;
    airfleet should reach >= 0.90x of it.
The library contender paces CPython's garbage collector as the CLI does
(``Engine(gc_threshold=20_000)``: a process owner's choice); ``--unpaced``
adds a third, the library at its default, which leaves the collector alone.
``--baseline TREE`` adds the library of another source tree (``git worktree add
/tmp/before REV``), interleaved with the rest, for an A/B in one run.
Requests are counted by the simulator, not by the clients. Each contender times
its own work (first request to last answer), so interpreter start-up, imports
and reading the fleet file do not dilute the steady state; ``--rounds`` passes
over the fleet make that steady state dominate. The table also gives each
side's CPU cost per request and the simulator's CPU use, to tell a client-bound
run from a server-bound one. Writes benchmarks/results/engine_vs_aiohttp.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import ROOT, SimProcess, run_child, simulator

CONTENDERS = Path(__file__).resolve().parent / "contenders.py"


def tuned_config(sim: SimProcess, concurrency: int) -> Path:
    """The simulator's fleet.yaml with limits opened up to ``concurrency`` in flight."""
    doc = yaml.safe_load(sim.config.read_text())
    doc["limits"] = {"max_in_flight": concurrency}
    doc["defaults"].update(max_per_second=None, api="v2")
    path = sim.config.with_name(sim.config.stem + "-tuned.yaml")
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def measure(
    sim: SimProcess,
    contender: str,
    config: Path,
    rounds: int,
    concurrency: int,
    baseline: Path | None = None,
) -> dict[str, float]:
    sim.reset()
    sim_cpu = sim.cpu_s()
    name = contender.removesuffix("-unpaced").removesuffix("@baseline")
    args = [sys.executable, str(CONTENDERS), name, str(config)]
    args += ["--rounds", str(rounds), "--concurrency", str(concurrency)]
    if contender.endswith("-unpaced"):
        args.append("--no-gc-pacing")
    env = dict(sim.env)
    if contender.endswith("@baseline") and baseline is not None:
        env["PYTHONPATH"] = str(baseline / "src")  # that tree's airfleet, this tree's harness
    measured = run_child(args, env=env)
    sim_cpu = sim.cpu_s() - sim_cpu
    requests = sim.stats()["requests_total"]
    assert measured.output["failed"] == 0, measured.output
    return {
        "requests": requests,
        "work_s": measured.work_s,
        "rps": requests / measured.work_s,
        "cpu_s": measured.cpu_s,
        "cpu_us": measured.cpu_s / requests * 1e6,
        "sim_cpu_us": sim_cpu / requests * 1e6,
        "sim_busy": sim_cpu / measured.wall_s,
        "rss_mb": measured.peak_rss_mb,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--label", default="", help="a note for the table's title")
    parser.add_argument(
        "--unpaced",
        action="store_true",
        help="also run the library at its default, CPython's collector left alone",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="also run the library of another source tree (a git worktree), interleaved",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "engine_vs_aiohttp.md"
    )
    args = parser.parse_args()
    rows = []
    contenders = ["bare", "library"] + (["library-unpaced"] if args.unpaced else [])
    if args.baseline is not None:
        contenders.append("library@baseline")
    with tempfile.TemporaryDirectory() as tmp:
        for latency in (0.0, 50.0):
            with simulator(Path(tmp), deployments=args.deployments, latency_ms=latency) as sim:
                config = tuned_config(sim, args.concurrency)
                best: dict[str, dict[str, float]] = {}
                for _ in range(args.repeat):  # interleaved, so drift hits both alike
                    for contender in contenders:
                        got = measure(
                            sim, contender, config, args.rounds, args.concurrency, args.baseline
                        )
                        if contender not in best or got["rps"] > best[contender]["rps"]:
                            best[contender] = got
                bound = args.concurrency / (latency / 1000) if latency else None
                for contender, got in best.items():
                    ratio = got["rps"] / best["bare"]["rps"]
                    rows.append(
                        (latency, contender, got, ratio, got["rps"] / bound if bound else None)
                    )
                    print(
                        f"{latency:>4.0f} ms {contender:<16} {got['rps']:>8.0f} req/s "
                        f"x{ratio:.2f} of bare"
                        + (f", {got['rps'] / bound:.2f} of bound" if bound else "")
                        + f", client {got['cpu_us']:.0f} us/req, sim {got['sim_cpu_us']:.0f}"
                        f" us/req ({got['sim_busy']:.0%} busy)",
                        flush=True,
                    )
    title = (
        f"# airfleet engine vs bare aiohttp ({args.deployments} deployments x {args.rounds} "
        f"rounds, {args.concurrency} in flight, best of {args.repeat})"
    )
    lines = [
        title + (f": {args.label}" if args.label else ""),
        "",
        "| latency | contender | requests | work (s) | req/s | vs bare "
        "| vs bound (in flight / latency) | client CPU us/req | sim CPU us/req | sim busy "
        "| peak RSS MB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for latency, contender, got, ratio, vs_bound in rows:
        lines.append(
            f"| {latency:.0f} ms | {contender} | {got['requests']:.0f} | {got['work_s']:.2f} | "
            f"{got['rps']:.0f} | {ratio:.2f} | {'' if vs_bound is None else f'{vs_bound:.2f}'} | "
            f"{got['cpu_us']:.0f} | {got['sim_cpu_us']:.0f} | {got['sim_busy']:.0%} | "
            f"{got['rss_mb']:.0f} |"
        )
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
