"""Peak RSS of a benchmarked process, reported by the process itself at exit.

Not ``ru_maxrss`` from ``wait4``: on Linux a child's ru_maxrss includes the
memory of the parent it was forked from (until exec), so it reports the
driver's size whenever the driver is the larger. VmHWM belongs to the
process's own address space, which exec starts afresh. Kept free of heavy
imports: it runs inside the processes being measured.
"""

from __future__ import annotations

import atexit
import os
from pathlib import Path

RSS_FILE = "BENCH_PEAK_RSS_FILE"


def vm_hwm_mb(pid: int) -> float:
    """A process's peak resident set (VmHWM, Linux) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def report_peak_rss_at_exit() -> None:
    """Write this process's VmHWM to ``$BENCH_PEAK_RSS_FILE`` when it exits."""
    path = os.environ.get(RSS_FILE)
    if path:
        atexit.register(lambda: Path(path).write_text(str(vm_hwm_mb(os.getpid()))))
