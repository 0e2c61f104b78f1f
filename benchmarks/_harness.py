"""Shared pieces of the benchmarks: a simulator in its own process, timed child processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


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
) -> Iterator[SimProcess]:
    """``airfleet sim`` in a subprocess, with its fleet.yaml written to ``workdir``."""
    port = free_port()
    config = workdir / f"fleet-{deployments}-{int(latency_ms)}.yaml"
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
    wall_s: float  # the whole process, start-up included
    work_s: float  # the measured work only, timed inside the process
    cpu_s: float
    peak_rss_mb: float


def run_child(
    args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 1800
) -> Measured:
    """Run a whole process; wall time, CPU seconds and peak RSS from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    out, err = proc.communicate(timeout=timeout)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{args} failed ({proc.returncode}): {err[-2000:]}")
    # The child reports its own figures on its last line (see child_usage).
    usage = json.loads(out.strip().splitlines()[-1])
    return Measured(wall, usage["work_s"], usage["cpu_s"], usage["peak_rss_mb"])


def child_usage(work_s: float) -> str:
    """The last line a contender prints: its work time, CPU time and peak RSS."""
    import resource

    self_usage = resource.getrusage(resource.RUSAGE_SELF)
    return json.dumps(
        {
            "work_s": work_s,
            "cpu_s": self_usage.ru_utime + self_usage.ru_stime,
            "peak_rss_mb": self_usage.ru_maxrss / 1024,
        }
    )
