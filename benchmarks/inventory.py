"""Loading big inventories: airfleet's fleet.yaml against libyaml's bare parse (issue 21).

    .venv/bin/python benchmarks/inventory.py [--sizes 1000,10000] [--repeat 7]

For each size it writes a fleet.yaml shaped like ``configs/fleet.yaml`` (four
auth profiles with ``${VAR}`` secrets, one of them unused and unset; tags on
every deployment; some with their own api, auth, limits, timeouts, a proxy or
a CA bundle), then times, each case in a fresh process of its own, the cases
interleaved, best of ``--repeat``:

* **libyaml parse**: ``yaml.load(text, Loader=yaml.CSafeLoader)`` of the
  file's text (read beforehand, untimed): the reference every ratio is to;
* **load_fleet**: ``airfleet.load_fleet(path)``, reading and validating;
* **load + select + plan**: that, then ``select`` of every deployment by
  tag (``tag:prod,tag:staging,tag:dev``) and ``plan_trigger`` of one DAG on
  each: what a library caller pays before the first request;
* **CLI dry run**: ``airfleet -c FILE trigger hello -s tag:prod,tag:staging,tag:dev
  --dry-run --report json``, stdout to /dev/null, the whole process timed from outside
  (interpreter start-up, imports and writing the plan included); **CLI dry run,
  1 deployment**: the same on a fleet of one, what the CLI pays whatever the fleet;
* **..., GC off**: the libyaml parse and load + select + plan again with
  CPython's cyclic garbage collector off, each against the other: libyaml
  builds a node graph before the data, and at 10,000 deployments the
  collector walks it again and again, a cost airfleet's reader mostly avoids.

In-process cases time only their work (imports done first); each reports its
peak RSS (VmHWM) and how much it grew over the imports. The issue's target:
load + select + plan at most 1.3x the libyaml parse at 10,000 deployments.

``--before SRC`` runs every airfleet case a second time with airfleet from
another source tree (``PYTHONPATH=SRC``), interleaved with the rest: before
and after of a change in one run. ``--phases`` times each step of loading
on its own instead (CPU, in one process per tree), for the profile;
``--gc-off`` with it, the garbage collector off.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _rss import RSS_FILE, vm_hwm_mb

HERE = Path(__file__).resolve().parent
CASES = ("libyaml parse", "load_fleet", "load + select + plan", "CLI dry run")
# The same two without CPython's cyclic garbage collector, which walks
# libyaml's node graph and data many times over at 10,000 deployments.
NO_GC = ", GC off"
GC_OFF_CASES = (f"libyaml parse{NO_GC}", f"load + select + plan{NO_GC}")
GC_VARIABLE = "BENCH_INVENTORY_GC"  # --phases --gc-off tells its children
# The CLI on a fleet of one deployment: what it pays whatever the fleet.
STARTUP = "CLI dry run, 1 deployment"
ENV = {
    "ASTRO_API_KEY_ID": "key-id-0123",
    "ASTRO_API_KEY_SECRET": "key-secret-4567",
    "ASTRO_API_TOKEN": "tok-abcdef-8901",
    "AIRFLOW_PASSWORD": "pw-abcdef-2345",
}
REGIONS = ("eu", "us", "ap")
TIERS = ("prod", "staging", "dev")
# Every deployment, each matched by one of its tags.
SELECT = ",".join(f"tag:{tier}" for tier in TIERS)


def fleet_yaml(size: int, *, ca_bundle: str) -> str:
    """A fleet.yaml of ``size`` deployments, in the style of configs/fleet.yaml."""
    head = f"""\
# A generated fleet of {size:,} deployments (benchmarks/inventory.py).
version: 1
limits:                      # fleet-wide
  max_in_flight: 200
  max_per_second: 400
defaults:                    # per deployment unless overridden there
  auth: astro-token
  max_per_second: 5
  max_in_flight: 4
  timeout_s: 30
  retries: 4
  api: auto                  # auto | v1 (Airflow 2) | v2 (Airflow 3)
auth:
  astro:                     # the Deployment API key flow: client credentials -> access token
    kind: client-credentials
    token_url: https://auth.astronomer.io/oauth/token
    client_id: ${{ASTRO_API_KEY_ID}}
    client_secret: ${{ASTRO_API_KEY_SECRET}}
    audience: astronomer-ee
  astro-token:               # an Astro Deployment, Workspace or Organization API token
    kind: token
    token: ${{ASTRO_API_TOKEN}}
    max_per_second: 10
  onprem:                    # self-hosted Airflow behind the corporate proxy
    kind: password
    username: airfleet
    password: ${{AIRFLOW_PASSWORD}}
  break-glass:               # used by no deployment: its variable need not be set
    kind: token
    token: ${{BREAK_GLASS_TOKEN}}
deployments:
"""
    lines = [head]
    for i in range(size):
        tier = TIERS[i % 7 % 3]
        region = REGIONS[i % 3]
        lines.append(f"  - name: {tier}-{region}-{i:05d}\n")
        if i % 50 == 7:
            # Self-hosted: its own profile and API version, through a proxy,
            # trusting a private CA.
            lines.append(f"    url: https://airflow-{i:05d}.corp.example.com:8443/\n")
            lines.append("    auth: onprem\n    api: v1\n")
            lines.append("    proxy: http://proxy.corp.example.com:3128\n")
            lines.append(f"    tls: {{ca_bundle: {ca_bundle}}}\n")
        else:
            lines.append(f"    url: https://mycompany.astronomer.run/d{i:07x}\n")
        lines.append(f"    tags: [{tier}, {region}, team-{i % 40}]\n")
        if i % 10 == 3:
            lines.append("    auth: astro\n")
        if i % 20 == 5:
            lines.append("    max_per_second: 20\n    max_in_flight: 8\n")
        if i % 25 == 11:
            lines.append("    timeout_s: 60\n    retries: 2\n")
    return "".join(lines)


# -- the cases, each in a process of its own -------------------------------------------


def _child(case: str, path: str) -> dict[str, Any]:
    """Run one in-process case on ``path``; its time and memory."""
    import yaml

    from airfleet.fleet_file import load_fleet
    from airfleet.operations import plan_trigger
    from airfleet.selection import select

    text = Path(path).read_text(encoding="utf-8")
    os.environ.update(ENV)
    work: dict[str, Callable[[], object]] = {
        "libyaml parse": lambda: yaml.load(text, Loader=yaml.CSafeLoader),
        "load_fleet": lambda: load_fleet(path),
        "load + select + plan": lambda: plan_trigger(
            select(load_fleet(path).deployments, [SELECT]), ["hello"], run_id="bench"
        ),
    }
    imported = vm_hwm_mb(os.getpid())
    if case.endswith(NO_GC):
        gc.disable()
        case = case.removesuffix(NO_GC)
    started, cpu = time.perf_counter(), time.process_time()
    result = work[case]()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = vm_hwm_mb(os.getpid())
    del result
    return {"s": elapsed, "cpu_s": cpu, "peak_rss_mb": peak, "grew_mb": peak - imported}


def _run(case: str, path: Path, src: str | None) -> dict[str, Any]:
    """One measurement of ``case`` in a fresh process, airfleet from ``src`` if given."""
    with tempfile.TemporaryDirectory() as scratch:
        rss = Path(scratch, "rss")
        env = {**os.environ, **ENV, RSS_FILE: str(rss)}
        if src is not None:
            env["PYTHONPATH"] = src  # ahead of the installed airfleet
        if case.startswith("CLI"):
            args = [sys.executable, str(HERE / "_cli.py"), "-c", str(path), "trigger", "hello"]
            args += ["-s", SELECT, "--dry-run", "--report", "json"]
            started = time.perf_counter()
            proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)  # this child's own CPU time
            elapsed = time.perf_counter() - started
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{args} failed")
            cpu = usage.ru_utime + usage.ru_stime
            return {"s": elapsed, "cpu_s": cpu, "peak_rss_mb": float(rss.read_text())}
        args = [sys.executable, str(HERE / "inventory.py"), "--child", case, str(path)]
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        measured: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        return measured


def measure(size: int, repeat: int, workdir: Path, before: str | None) -> dict[str, dict[str, Any]]:
    """Best of ``repeat`` per case (wall and CPU each), the cases interleaved."""
    bundle = _ca_bundle(workdir)
    path = workdir / f"fleet-{size}.yaml"
    path.write_text(fleet_yaml(size, ca_bundle=str(bundle)), encoding="utf-8")
    tiny = workdir / "fleet-1.yaml"
    tiny.write_text(fleet_yaml(1, ca_bundle=str(bundle)), encoding="utf-8")
    runs: list[tuple[str, str, Path, str | None]] = [(case, case, path, None) for case in CASES]
    runs.append((STARTUP, "CLI dry run", tiny, None))
    runs += [(case, case, path, None) for case in GC_OFF_CASES]
    if before is not None:
        runs += [
            (f"{label} (before)", case, file, before)
            for label, case, file, _ in list(runs)
            if not case.startswith("libyaml")  # the same libyaml either way
        ]
    for _, case, file, src in runs:
        _run(case, file, src)  # warm up: bytecode compiled, files in the page cache
    best: dict[str, dict[str, Any]] = {}
    for _ in range(repeat):
        for label, case, file, src in runs:
            run = _run(case, file, src)
            kept = best.setdefault(label, run)
            for key in ("s", "cpu_s", "peak_rss_mb"):
                kept[key] = min(kept[key], run[key])
            if "grew_mb" in run:
                kept["grew_mb"] = min(kept["grew_mb"], run["grew_mb"])
    return best


def _ca_bundle(workdir: Path) -> Path:
    """A CA bundle of one real certificate (the first of certifi's), for ``tls: ca_bundle``."""
    import certifi

    text = Path(certifi.where()).read_text(encoding="ascii")
    end = "-----END CERTIFICATE-----"
    begin = text.index("-----BEGIN CERTIFICATE-----")
    path = workdir / "private-ca.pem"
    path.write_text(text[begin : text.index(end) + len(end)] + "\n", encoding="ascii")
    return path


def table(size: int, best: dict[str, dict[str, Any]]) -> str:
    """One row per case; ratios to the libyaml parse run the same way (GC on or off)."""
    rows = [
        f"### {size:,} deployments\n",
        "| case | wall s | x libyaml | CPU s | x libyaml | peak RSS MB | grew MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, run in best.items():
        reference = best["libyaml parse" + (NO_GC if NO_GC in label else "")]
        grew = f"{run['grew_mb']:.0f}" if "grew_mb" in run else ""
        rows.append(
            f"| {label} | {run['s']:.3f} | {run['s'] / reference['s']:.2f} "
            f"| {run['cpu_s']:.3f} | {run['cpu_s'] / reference['cpu_s']:.2f} "
            f"| {run['peak_rss_mb']:.0f} | {grew} |"
        )
    return "\n".join(rows) + "\n"


# -- where the time goes: each step of parse_fleet on its own ------------------------


def _phases(path: str, repeat: int) -> dict[str, float]:
    """Best CPU seconds of each step of loading, selecting and planning, in this process.

    Calls fleet_file's private steps one by one, so it follows their names
    (the same in the trees compared so far). Warm: each step runs ``repeat``
    times on the same input.
    """
    import yaml

    from airfleet import _yaml, fleet_file
    from airfleet.inventory import Deployment, server_of
    from airfleet.operations import plan_trigger
    from airfleet.selection import select

    text = Path(path).read_text(encoding="utf-8")
    base = Path(path).parent
    best: dict[str, float] = {}

    def timed(name: str, step: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        started = time.process_time()
        result = step(*args, **kwargs)
        best[name] = min(best.get(name, float("inf")), time.process_time() - started)
        return result

    def check_urls(located: Any, deployments: Any) -> None:
        for d in deployments:
            owner = f"deployment {d.name!r}"
            fleet_file._check_url(located, (), d.url, owner=owner, allow_insecure=False)

    for _ in range(repeat):
        timed("libyaml parse (the reference)", yaml.load, text, yaml.CSafeLoader)
        located = timed("YAML -> data", _yaml.load_located, text, source=path)
        timed("line map (eager before; now only for an error)", dict, located.lines)
        raw = timed("${VAR} substitution", fleet_file._with_env, located, located.data, ENV)
        model = timed("pydantic validation", fleet_file._Fleet.model_validate, raw)
        timed("  URL checks", check_urls, located, model.deployments)
        timed(
            "  duplicate-URL keys (server_of)", list, (server_of(d.url) for d in model.deployments)
        )
        timed(
            "  Deployment objects",
            list,
            (Deployment(d.name, d.url, "a", frozenset(d.tags)) for d in model.deployments),
        )
        fleet = timed(
            "values -> Fleet (all of _to_fleet)", fleet_file._to_fleet, located, model, base
        )
        chosen = timed("select", select, fleet.deployments, [SELECT])
        timed("plan_trigger", plan_trigger, chosen, ["hello"], run_id="bench")
    return best


def phases(size: int, repeat: int, workdir: Path, before: str | None) -> str:
    """The phase table of ``size`` deployments, for this tree and ``before``'s."""
    bundle = _ca_bundle(workdir)
    path = workdir / f"fleet-{size}.yaml"
    path.write_text(fleet_yaml(size, ca_bundle=str(bundle)), encoding="utf-8")
    trees = {"now": None} if before is None else {"before": before, "now": None}
    columns: dict[str, dict[str, float]] = {}
    for label, src in trees.items():
        env = {**os.environ, **ENV}
        if src is not None:
            env["PYTHONPATH"] = src
        args = [sys.executable, str(HERE / "inventory.py"), "--phases-child", str(path)]
        args.append(str(repeat))
        out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
        columns[label] = json.loads(out.stdout.strip().splitlines()[-1])
    header = " | ".join(f"{label} ms | x libyaml" for label in columns)
    rows = [
        f"### {size:,} deployments, CPU ms (best of {repeat}, warm)\n",
        f"| step | {header} |",
        "| --- |" + " ---: | ---: |" * len(columns),
    ]
    for step in next(iter(columns.values())):
        cells = []
        for best in columns.values():
            reference = best["libyaml parse (the reference)"]
            cells.append(f"{best[step] * 1000:.0f} | {best[step] / reference:.2f}")
        rows.append(f"| {step} | {' | '.join(cells)} |")
    return "\n".join(rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--before",
        metavar="SRC",
        help="also run the airfleet cases with airfleet from SRC (a src/ directory)",
    )
    parser.add_argument(
        "--phases", action="store_true", help="time each step of loading instead (in-process)"
    )
    parser.add_argument(
        "--gc-off", action="store_true", help="with --phases: the garbage collector off"
    )
    parser.add_argument("--child", nargs=2, metavar=("CASE", "FILE"), help=argparse.SUPPRESS)
    parser.add_argument("--phases-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(*args.child)))
        return
    if args.phases_child:
        if os.environ.get(GC_VARIABLE) == "off":
            gc.disable()
        print(json.dumps(_phases(args.phases_child[0], int(args.phases_child[1]))))
        return
    if args.phases:
        os.environ[GC_VARIABLE] = "off" if args.gc_off else "on"
        gc_state = ", GC off" if args.gc_off else ""
        print(f"python {sys.version.split()[0]}, steps in-process{gc_state}\n")
    else:
        print(f"python {sys.version.split()[0]}, best of {args.repeat}, cases interleaved\n")
    with tempfile.TemporaryDirectory() as workdir:
        for size in (int(s) for s in args.sizes.split(",")):
            if args.phases:
                print(phases(size, args.repeat, Path(workdir), args.before), flush=True)
            else:
                best = measure(size, args.repeat, Path(workdir), args.before)
                print(table(size, best), flush=True)


if __name__ == "__main__":
    main()
