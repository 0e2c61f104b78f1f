"""How soon the ``airfleet`` command answers, as a multiple of a bare interpreter start.

Every case is a whole process, run ``--repeat`` times, interleaved (each round
runs every case once, starting one case later each round), so a noisy machine
slows all of them alike. The targets (issue 21) judge each case's fastest run
against the fastest ``python -c pass`` of the same rounds:

* ``--help``, ``--version`` and the completion of a command name: at most 12x;
* a fleet file with a typo'd key (exit 2, one line): at most 20x.

Bytecode is cached, as in a user's installed package: the children write and
read their ``.pyc`` files under a fresh ``PYTHONPYCACHEPREFIX`` (whatever
``PYTHONDONTWRITEBYTECODE`` says here), warmed by two untimed runs of each case.

``--baseline SRC`` runs every case a second time, interleaved with the
first, importing airfleet from another source tree (``PYTHONPATH=SRC``, which
comes before the editable install): before and after, side by side.

    .venv/bin/python benchmarks/startup.py --repeat 21
    .venv/bin/python benchmarks/startup.py --baseline /tmp/before/src
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PYTHON = sys.executable
AIRFLEET = str(Path(sys.executable).with_name("airfleet"))

BAD_FLEET = """\
version: 1
auth:
  local: {kind: token, token: not-a-secret}
deployments:
  - name: dev-a
    url: http://127.0.0.1:8080
    auth: local
    tagz: [dev]
"""

SMALL_FLEET = """\
version: 1
auth:
  local: {kind: token, token: not-a-secret}
deployments:
  - {name: dev-a, url: 'http://127.0.0.1:8080', auth: local, tags: [dev]}
  - {name: dev-b, url: 'http://127.0.0.1:8081', auth: local, tags: [dev]}
  - {name: dev-c, url: 'http://127.0.0.1:8082', auth: local, tags: [dev]}
"""

LOAD_FLEET = """\
import sys
from airfleet.errors import ConfigError
from airfleet.fleet_file import load_fleet
try:
    load_fleet(sys.argv[1])
except ConfigError as exc:
    print(exc)
"""


@dataclass
class Case:
    name: str
    args: list[str]
    target: float | None = None  # at most this many times a bare interpreter start
    env: Mapping[str, str] = field(default_factory=dict)
    exit_code: int = 0
    expect: str = ""  # in the warm-up's stdout + stderr, so a broken case cannot pass
    shown_as: str = ""  # the command as the table notes show it (default: args)
    times_ms: list[float] = field(default_factory=list)

    @property
    def shown(self) -> str:
        words = [f"{k}={v!r}" for k, v in self.env.items()]
        words += [self.shown_as] if self.shown_as else [Path(self.args[0]).name, *self.args[1:]]
        return " ".join(words)


def cases(workdir: Path) -> list[Case]:
    bad = workdir / "bad.yaml"
    bad.write_text(BAD_FLEET, encoding="utf-8")
    small = workdir / "fleet.yaml"
    small.write_text(SMALL_FLEET, encoding="utf-8")
    complete = {"COMP_WORDS": "airfleet tr", "COMP_CWORD": "1"}
    complete_option = {"COMP_WORDS": "airfleet trigger --w", "COMP_CWORD": "2"}
    return [
        Case("bare python", [PYTHON, "-c", "pass"]),
        Case("import airfleet", [PYTHON, "-c", "import airfleet"]),
        Case("--help", [AIRFLEET, "--help"], target=12, expect="Commands:"),
        Case("--version", [AIRFLEET, "--version"], target=12, expect="version"),
        Case(
            "complete a command",
            [AIRFLEET],
            target=12,
            env={**complete, "_AIRFLEET_COMPLETE": "bash_complete"},
            expect="plain,trigger",
        ),
        Case(
            "config error",
            [AIRFLEET, "-c", str(bad), "health"],
            target=20,
            exit_code=2,
            expect="unknown key 'tagz'",
        ),
        # The same error through a command whose options need its operation
        # (trigger's run-id and logical-date checks) imported to parse them.
        Case(
            "config error, trigger",
            [AIRFLEET, "-c", str(bad), "trigger", "hello"],
            exit_code=2,
            expect="unknown key 'tagz'",
        ),
        # The floor under "config error": reading the file, without the CLI.
        Case(
            "load_fleet alone",
            [PYTHON, "-c", LOAD_FLEET, str(bad)],
            expect="unknown key 'tagz'",
            shown_as="python -c 'load_fleet(\"bad.yaml\")' (from airfleet.fleet_file)",
        ),
        Case("trigger --help", [AIRFLEET, "trigger", "--help"], expect="--dry-run"),
        Case(
            "complete an option",
            [AIRFLEET],
            env={**complete_option, "_AIRFLEET_COMPLETE": "bash_complete"},
            expect="plain,--wait",
        ),
        Case(
            "--dry-run, 3 deployments",
            [AIRFLEET, "-c", str(small), "trigger", "hello", "--dry-run", "--report", "json"],
            expect='"calls": 3',
        ),
    ]


def with_baseline(measured: list[Case], src: Path) -> list[Case]:
    """Each case, then the same case importing airfleet from ``src`` (not bare python)."""
    twins = [
        dataclasses.replace(
            case,
            name=f"{case.name} (baseline)",
            env={**case.env, "PYTHONPATH": str(src)},
            times_ms=[],
        )
        for case in measured[1:]
    ]
    return [measured[0], *(c for pair in zip(measured[1:], twins, strict=True) for c in pair)]


def child_env(case: Case, pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLEET_", "_AIRFLEET_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env.update(case.env)
    return env


def warm(case: Case, env: dict[str, str]) -> None:
    for _ in range(2):
        proc = subprocess.run(case.args, env=env, capture_output=True, text=True, check=False)
        seen = proc.stdout + proc.stderr
        if proc.returncode != case.exit_code or case.expect not in seen:
            raise SystemExit(
                f"{case.name}: exit {proc.returncode} (want {case.exit_code}), "
                f"{case.expect!r} not in:\n{seen[-2000:]}"
            )


def timed_ms(case: Case, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run(
        case.args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    )
    elapsed = (time.perf_counter() - started) * 1000
    if proc.returncode != case.exit_code:
        raise SystemExit(f"{case.name}: exit {proc.returncode} (want {case.exit_code})")
    return elapsed


def table(measured: list[Case]) -> str:
    bare = measured[0]
    bare_min, bare_median = min(bare.times_ms), statistics.median(bare.times_ms)
    lines = [
        "| case | min ms | median ms | x bare (min) | x bare (median) | target | |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for case in measured:
        low, median = min(case.times_ms), statistics.median(case.times_ms)
        ratio = low / bare_min
        verdict = "" if case.target is None else ("PASS" if ratio <= case.target else "FAIL")
        target = "" if case.target is None else f"{case.target:g}x"
        lines.append(
            f"| {case.name} | {low:.1f} | {median:.1f} | {ratio:.1f} | "
            f"{median / bare_median:.1f} | {target} | {verdict} |"
        )
    lines.append("")
    lines.extend(f"* {case.name}: `{case.shown}`" for case in measured)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=21, help="Timed runs of each case.")
    parser.add_argument(
        "--baseline", type=Path, metavar="SRC", help="Also time each case with airfleet from SRC."
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        pycache = workdir / "pycache"
        measured = cases(workdir)
        if args.baseline is not None:
            measured = with_baseline(measured, args.baseline.resolve())
        envs = [child_env(case, pycache) for case in measured]
        for case, env in zip(measured, envs, strict=True):
            warm(case, env)
        for round_ in range(args.repeat):
            for i in range(len(measured)):
                at = (i + round_) % len(measured)
                measured[at].times_ms.append(timed_ms(measured[at], envs[at]))
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(
        f"python {sys.version.split()[0]}, {args.repeat} runs of each case, interleaved; "
        f"load average at the end {load}\n"
    )
    print(table(measured))


if __name__ == "__main__":
    main()
