"""Shared pieces of the benchmarks: a simulator in its own process, timed child processes,
and the virtual environments of contenders that must not share the project's."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from _rss import RSS_FILE, vm_hwm_mb  # importers put benchmarks/ on sys.path

ROOT = Path(__file__).resolve().parent.parent
# The Airflow 3 CLI, ``airflowctl``, pinned: its own dependencies (pydantic, httpx,
# keyring, rich, ...) stay out of the project's environment.
AIRFLOWCTL_REQUIREMENT = "apache-airflow-ctl==0.1.5"
INSTALL_TIMEOUT_S = 900.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SimProcess:
    url: str
    config: Path
    env: dict[str, str]
    pid: int

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sim/stats?detail=0", timeout=30) as r:  # noqa: S310
            data: dict[str, Any] = json.loads(r.read())
            return data

    def cpu_s(self) -> float:
        """The simulator process's CPU seconds so far (user + system)."""
        import psutil

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def peak_rss_mb(self) -> float:
        """VmHWM of the simulator process (Linux)."""
        return vm_hwm_mb(self.pid)

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_sim/reset_stats", data=b"{}", method="POST")  # noqa: S310
        urllib.request.urlopen(request, timeout=30).close()  # noqa: S310


@contextmanager
def simulator(
    workdir: Path,
    *,
    deployments: int,
    latency_ms: float = 0.0,
    api: str = "v2",
    auth: str = "token",
    extra: Sequence[str] = (),
) -> Iterator[SimProcess]:
    """``airfleet sim`` in a subprocess, with its fleet.yaml written to ``workdir``."""
    port = free_port()
    config = workdir / f"fleet-{deployments}-{int(latency_ms)}-{auth}.yaml"
    args = [
        sys.executable,
        "-m",
        "airfleet",
        "sim",
        "--deployments",
        str(deployments),
        "--port",
        str(port),
        "--api",
        api,
        "--auth",
        auth,
        "--latency-ms",
        str(latency_ms),
        "--write-config",
        str(config),
        *extra,
    ]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    env: dict[str, str] = {}
    assert proc.stdout is not None
    for _ in range(3):
        line = proc.stdout.readline().strip()
        if line.startswith("export "):
            key, _, value = line[len("export ") :].partition("=")
            env[key] = value
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{url}/_sim/stats?detail=0", timeout=2).close()  # noqa: S310
            break
        except OSError:
            time.sleep(0.1)
    try:
        yield SimProcess(url, config, env, proc.pid)
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


@dataclass
class Measured:
    wall_s: float  # the whole process: start-up, imports and fleet file included
    work_s: float  # first request to last answer, as the contender timed it
    cpu_s: float  # user + system, from the process's rusage
    peak_rss_mb: float  # the process's VmHWM at exit
    output: dict[str, Any]  # the contender's last line of output, parsed


def run_child(
    args: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 1800,
    work_s: Callable[[dict[str, Any], Path], float] | None = None,
) -> Measured:
    """Run a whole process: wall time, CPU seconds from ``wait4``, peak RSS.

    The child reports its peak RSS through :func:`report_peak_rss_at_exit`.

    The child's last line of stdout is JSON; its ``work_s`` is the work time
    unless ``work_s`` reads it some other way (from the child's output and a
    scratch directory the child may write to: ``{scratch}`` in ``args``).
    """
    with tempfile.TemporaryDirectory() as scratch:
        out_path = Path(scratch, "stdout")
        err_path = Path(scratch, "stderr")
        with out_path.open("w") as out, err_path.open("w") as err:
            started = time.perf_counter()
            proc = subprocess.Popen(
                [arg.replace("{scratch}", scratch) for arg in args],
                stdout=out,
                stderr=err,
                env={**os.environ, **(env or {}), RSS_FILE: str(Path(scratch, "rss"))},
            )
            killer = threading.Timer(timeout, proc.kill)
            killer.start()
            try:
                # wait4 (not Popen.wait) to get this child's own rusage.
                _, status, usage = os.wait4(proc.pid, 0)
            finally:
                killer.cancel()
            wall = time.perf_counter() - started
            proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{args} failed ({proc.returncode}): {err_path.read_text()[-2000:]}")
        lines = out_path.read_text().strip().splitlines()
        output: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        work = work_s(output, Path(scratch)) if work_s else float(output["work_s"])
        rss_path = Path(scratch, "rss")
        rss = float(rss_path.read_text()) if rss_path.exists() else float("nan")
    return Measured(
        wall_s=wall,
        work_s=work,
        cpu_s=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=rss,
        output=output,
    )


# -- contenders in virtual environments of their own -----------------------------------


def bench_cache() -> Path:
    """Where benchmark installs live: ``$AIRFLEET_BENCH_CACHE``, or ~/.cache/airfleet/bench."""
    configured = os.environ.get("AIRFLEET_BENCH_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "airfleet" / "bench"


def airflowctl_venv() -> Path:
    """The virtual environment of ``AIRFLOWCTL_REQUIREMENT``, one per pinned version."""
    version = AIRFLOWCTL_REQUIREMENT.partition("==")[2]
    return bench_cache() / f"airflowctl-{version}"


def airflowctl_installed() -> Path | None:
    """The ``airflowctl`` executable of a complete install, or None (nothing installed)."""
    target = airflowctl_venv()
    return target / "bin" / "airflowctl" if (target / "complete").exists() else None


def ensure_airflowctl(log: Callable[[str], None] = print) -> Path:
    """The ``airflowctl`` executable, installed from PyPI on first use (about a minute).

    A complete install is marked by a ``complete`` file and then reused; a file
    lock lets two benchmark runs (or a run and the test suite) share one install
    instead of racing.
    """
    ready = airflowctl_installed()
    if ready is not None:
        return ready
    target = airflowctl_venv()
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        target.parent.joinpath(f"{target.name}.lock").open("w") as lock,
        _flocked(lock),
    ):
        ready = airflowctl_installed()  # another run installed it while we waited
        if ready is not None:
            return ready
        log(f"installing {AIRFLOWCTL_REQUIREMENT} into {target} (once)")
        install_log = target.parent / f"{target.name}.install.log"
        python = target / "bin" / "python"
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        for step in (
            [sys.executable, "-m", "venv", "--clear", str(target)],
            [*pip, AIRFLOWCTL_REQUIREMENT],
            [str(target / "bin" / "airflowctl"), "version"],
        ):
            with install_log.open("a") as out:
                done = subprocess.run(
                    step, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S
                )
            if done.returncode != 0:
                tail = install_log.read_text()[-2000:]
                raise RuntimeError(f"{' '.join(step)} failed ({done.returncode}): {tail}")
        (target / "complete").write_text(AIRFLOWCTL_REQUIREMENT + "\n")
    return target / "bin" / "airflowctl"


@contextmanager
def _flocked(handle: TextIO) -> Iterator[None]:
    fcntl.flock(handle, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.flock(handle, fcntl.LOCK_UN)
