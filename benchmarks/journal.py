"""The job journal: records/s and the event loop's stall, before and after group commit (issue 21).

Usage: .venv/bin/python benchmarks/journal.py [--records 100000] [--old-records 5000]
           [--repeat 5] [--dir DIR] [--job-deployments 2000] [--job-steps 5]
           [--job-repeat 3] [--before-ref 9dfedc3] [--json PATH]

Two measurements, each side by side in one run, interleaved (none, old, new,
none, ...), keeping the best of ``--repeat``:

* **The journal alone**, in this process, on real files in a temporary
  directory (``--dir``; its filesystem, from ``df -T``, is printed). A
  producer task hands the journal one result per event-loop step, as the
  engine's collector does, while a ticker task sleeps 1 ms at a time and
  notes the longest gap between its wake-ups: how long the loop was held.

  - *old*: ``Journal.record`` on the loop, one write and one fsync per
    record, the result handed on when it returns (what ``JobRunner`` did;
    the same system calls as then, with today's encoder).
  - *new*: ``Journal.group_commit``: the producer's ``record`` queues; a
    worker thread serialises, writes and fsyncs every queued record once,
    then the batch's results are handed on, in order.
  - *none*: no journal, each result handed on at once (a job run by
    Airflow): the producer's own ceiling, for scale.

  records/s runs from the first record to the last result handed on (so the
  new path's figure includes its final fsync). The old path journals
  ``--old-records`` (an fsync each: 100,000 of them would take minutes);
  its rate and its longest gap do not depend on how many. Every run checks
  that each result was handed on once, in order, and that the file holds
  every record.

* **A whole job**: ``airfleet run`` (a process of its own, start-up
  included in *wall s*) of ``--job-steps`` api steps, each listing the pools
  of ``--job-deployments`` deployments, against ``airfleet sim`` in its own
  process at 0 ms (API v2 declared, 200 in flight, no rates). *before* runs
  the working tree with ``journal.py`` and ``runner.py`` as they were at
  ``--before-ref`` (copied to a scratch tree put first on ``PYTHONPATH``),
  *after* the working tree itself. results/s is calls over the report's
  ``duration_s`` (the job's steps, start-up left out). ``--job-deployments 0``
  skips it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from _harness import ROOT, SimProcess, run_child, simulator
from shards import machine_busy_s

from airfleet.jobs.journal import Journal, read_run
from airfleet.results import Outcome, Result

TICK_S = 0.001


# -- the journal alone ---------------------------------------------------------------


class CountingJournal(Journal):
    """A journal that counts its fsyncs (each still a real one), to give the batch size."""

    fsyncs = 0

    def _fsync(self, fd: int) -> None:
        super()._fsync(fd)
        self.fsyncs += 1


@dataclass
class Ticker:
    """Wakes every ``TICK_S``; the gaps between wake-ups say how long the loop was held."""

    gaps: list[float]

    async def run(self) -> None:
        last = time.perf_counter()
        while True:
            await anyio.sleep(TICK_S)
            now = time.perf_counter()
            self.gaps.append(now - last)
            last = now


@dataclass(frozen=True)
class Sample:
    path: str  # "none", "old" or "new"
    records: int
    seconds: float
    fsyncs: int
    longest_gap_ms: float
    p99_gap_ms: float
    cpu_s: float  # this process, every thread
    other_cores: float  # what else kept this machine busy meanwhile

    @property
    def per_second(self) -> float:
        return self.records / self.seconds


def make_results(count: int) -> list[Result]:
    """Distinct calls (10 DAGs on each deployment) with a trigger's usual answer."""
    data = {"dag_run_id": "airfleet__nightly-refresh__2026-11-24__load", "state": "queued"}
    return [
        Result(
            f"dep-{i // 10:05d}",
            "trigger",
            f"dag_{i % 10}",
            Outcome.OK,
            status=200,
            attempts=1,
            latency_ms=12.3,
            data=data,
        )
        for i in range(count)
    ]


def header(records: int) -> dict[str, Any]:
    return {"job": "bench", "started_at": time.time(), "planned": records, "window_start": None}


async def journal_once(path: str, directory: Path, results: Sequence[Result]) -> Sample:
    """Journal every one of ``results`` by ``path``, one per loop step, with a ticker running."""
    file = directory / f"{path}-{time.monotonic_ns()}.jsonl"
    journal = CountingJournal(file, header(len(results)), resume=False)
    journal.fsyncs = 0  # the header's
    handed_on = 0

    def on_durable(result: Result) -> None:
        nonlocal handed_on
        if result is not results[handed_on]:
            raise RuntimeError(f"{path}: result #{handed_on} handed on out of order")
        handed_on += 1

    ticker = Ticker([])
    async with anyio.create_task_group() as group:
        group.start_soon(ticker.run)
        await anyio.sleep(TICK_S * 2)  # the ticker's first wake-up is behind it
        ticker.gaps.clear()
        started, cpu, busy = time.perf_counter(), time.process_time(), machine_busy_s()
        if path == "none":
            for result in results:
                on_durable(result)
                await anyio.lowlevel.checkpoint()
        elif path == "old":
            for result in results:
                journal.record(1, result)
                on_durable(result)
                await anyio.lowlevel.checkpoint()
        else:
            async with journal.group_commit(1, on_durable) as record:
                for result in results:
                    record(result)
                    await anyio.lowlevel.checkpoint()
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        busy = machine_busy_s() - busy
        group.cancel_scope.cancel()
    journal.close()
    run = read_run(file)
    journaled = 0 if path == "none" else len(results)
    if handed_on != len(results) or run is None or len(run.calls) != journaled:
        raise RuntimeError(f"{path}: {handed_on} handed on, file holds {run and len(run.calls)}")
    file.unlink()
    gaps = sorted(ticker.gaps) or [0.0]
    return Sample(
        path,
        len(results),
        seconds,
        journal.fsyncs,
        gaps[-1] * 1e3,
        gaps[min(len(gaps) - 1, int(len(gaps) * 0.99))] * 1e3,
        cpu,
        max(0.0, busy - cpu) / seconds,
    )


def filesystem(directory: Path) -> str:
    """``df -T``'s type and device of ``directory``, e.g. ``ext4 on /dev/vda``."""
    out = subprocess.run(
        ["df", "-T", str(directory)], capture_output=True, text=True, check=True
    ).stdout
    device, kind = out.strip().splitlines()[-1].split()[:2]
    return f"{kind} on {device}"


# -- a whole job ---------------------------------------------------------------------


def before_tree(scratch: Path, ref: str) -> Path:
    """The working tree's ``src`` with ``journal.py`` and ``runner.py`` as at ``ref``."""
    src = scratch / "before-src"
    shutil.copytree(ROOT / "src", src, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("journal.py", "runner.py"):
        relative = f"src/airfleet/jobs/{name}"
        old = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{ref}:{relative}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        (scratch / relative.replace("src/", "before-src/", 1)).write_text(old, encoding="utf-8")
    return src


def write_job(sim: SimProcess, steps: int) -> Path:
    """The fleet file (API v2 declared, 200 in flight, no rates) and a job of api steps."""
    import yaml

    doc = yaml.safe_load(sim.config.read_text())
    doc["defaults"].update(api="v2", max_per_second=None)
    doc["limits"] = {"max_in_flight": 200, "max_per_second": None}
    sim.config.with_name("fleet.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    job = sim.config.with_name("job.yaml")
    lines = ["version: 1", "name: bench-journal", "fleet: fleet.yaml", "steps:"]
    lines += [f"  - api: {{id: pools{i}, path: /pools}}" for i in range(1, steps + 1)]
    job.write_text("\n".join(lines) + "\n")
    return job


def job_once(sim: SimProcess, job: Path, arm: str, pythonpath: str | None) -> dict[str, Any]:
    """One ``airfleet run`` of ``job``: wall and CPU seconds, and the report's own figures."""
    env = dict(sim.env)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    sim.reset()

    summary: dict[str, Any] = {}

    def duration_s(_: dict[str, Any], scratch: Path) -> float:
        summary.update(json.loads((scratch / "report.json").read_text())["summary"])
        return float(summary["duration_s"])

    args = [sys.executable, "-m", "airfleet", "run", str(job)]
    args += ["--state-dir", "{scratch}/state", "--report", "json", "-o", "{scratch}/report.json"]
    measured = run_child(args, env=env, work_s=duration_s)
    requests = int(sim.stats()["requests_total"])
    return {
        "arm": arm,
        "calls": int(summary["total"]),
        "ok": int(summary["ok"]),
        "requests": requests,
        "wall_s": measured.wall_s,
        "work_s": measured.work_s,
        "cpu_s": measured.cpu_s,
        "per_second": int(summary["total"]) / measured.work_s,
    }


# -- output --------------------------------------------------------------------------


def journal_table(best: dict[str, Sample], every: Sequence[Sample]) -> list[str]:
    lines = [
        "| path | records | records/s (best) | records/s (median) | fsyncs | records per fsync "
        "| longest loop gap ms | p99 loop gap ms | CPU us/record | other work (cores) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in ("none", "old", "new"):
        s = best[path]
        median = statistics.median(x.per_second for x in every if x.path == path)
        per_fsync = f"{s.records / s.fsyncs:,.1f}" if s.fsyncs else ""
        lines.append(
            f"| {path} | {s.records:,} | {s.per_second:,.0f} | {median:,.0f} | {s.fsyncs:,} "
            f"| {per_fsync} | {s.longest_gap_ms:.2f} | {s.p99_gap_ms:.2f} "
            f"| {s.cpu_s / s.records * 1e6:.1f} | {s.other_cores:.2f} |"
        )
    return lines


def job_table(best: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "| arm | calls | ok | requests (server) | wall s | work s | CPU s | results/s (work) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r['arm']} | {r['calls']:,} | {r['ok']:,} | {r['requests']:,} | {r['wall_s']:.2f} "
        f"| {r['work_s']:.2f} | {r['cpu_s']:.2f} | {r['per_second']:,.0f} |"
        for r in best.values()
    ]
    return lines


def keep_best(best: dict[str, Any], key: str, sample: Any, rate: Callable[[Any], float]) -> None:
    if key not in best or rate(sample) > rate(best[key]):
        best[key] = sample


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="the new path's records")
    parser.add_argument("--old-records", type=int, default=5_000, help="the old path's records")
    parser.add_argument("--repeat", type=int, default=5, help="keep the best of N (interleaved)")
    parser.add_argument("--dir", type=Path, help="where the journals go (default: a temp dir)")
    parser.add_argument("--job-deployments", type=int, default=2000, help="0: no whole job")
    parser.add_argument("--job-steps", type=int, default=5)
    parser.add_argument("--job-repeat", type=int, default=3)
    parser.add_argument("--before-ref", default="9dfedc3", help="the commit 'before' is")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    args = parser.parse_args()

    out: dict[str, Any] = {"python": sys.version.split()[0], "cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        directory = Path(tmp)
        out["filesystem"] = filesystem(directory)
        print(f"journals in {directory}: {out['filesystem']}", flush=True)
        results = make_results(max(args.records, args.old_records))
        samples: list[Sample] = []
        best: dict[str, Sample] = {}
        for _ in range(args.repeat):
            paths = (("none", args.records), ("old", args.old_records), ("new", args.records))
            for path, count in paths:
                sample = anyio.run(journal_once, path, directory, results[:count])
                print(json.dumps({**asdict(sample), "per_second": sample.per_second}), flush=True)
                samples.append(sample)
                keep_best(best, path, sample, lambda s: s.per_second)
        out["journal"] = [asdict(s) for s in samples]
        lines = [
            f"The journal alone ({out['filesystem']}; best and median of {args.repeat}):",
            "",
            *journal_table(best, samples),
        ]

        if args.job_deployments:
            calls = args.job_deployments * args.job_steps
            before = before_tree(directory, args.before_ref)
            with simulator(directory, deployments=args.job_deployments) as sim:
                job = write_job(sim, args.job_steps)
                arms = [(f"before ({args.before_ref})", str(before)), ("after", None)]
                runs: list[dict[str, Any]] = []
                best_job: dict[str, dict[str, Any]] = {}
                for _ in range(args.job_repeat):
                    for arm, pythonpath in arms:
                        row = job_once(sim, job, arm, pythonpath)
                        if row["ok"] != calls or row["requests"] != calls:
                            raise RuntimeError(f"{arm}: {row} (want {calls} ok and requests)")
                        print(json.dumps(row), flush=True)
                        runs.append(row)
                        keep_best(best_job, arm, row, lambda r: r["per_second"])
            out["job"] = runs
            lines += [
                "",
                f"A whole job: `airfleet run`, {args.job_steps} api steps x "
                f"{args.job_deployments:,} deployments = {calls:,} calls, simulator at 0 ms "
                f"(best of {args.job_repeat}):",
                "",
                *job_table(best_job),
            ]
    print()
    print("\n".join(lines))
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
