"""Real Airflow 3.3 and 2.11 servers, started once for tests/real/ by scripts/real_airflow.py.

If they cannot be installed or started, every test here FAILS with the reason
(never skips), so CI cannot pass without proving airfleet against real
servers. Deselect them explicitly with ``-m 'not real_airflow'`` where no
package registry is reachable.
"""

from __future__ import annotations

import secrets
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from ._real import SHORT_JWT_S, RealAirflow, fleet_yaml, ra


@pytest.fixture(scope="package")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealAirflow]:
    root = tmp_path_factory.mktemp("real-airflow")
    password = secrets.token_urlsafe(12)
    timings: dict[str, float] = {}
    with ExitStack() as stack:
        try:
            af3, af2, short = _start_all(stack, root, password, timings)
        except ra.SetupError as exc:
            failure = str(exc)
        else:
            failure = ""
        if failure:  # outside the except block: one message, not a chain of two
            pytest.fail(
                "real Airflow servers could not be set up, so airfleet is not proven "
                f"against them: {failure}",
                pytrace=False,
            )
        sys.stderr.write(
            f"\nreal Airflow: {af3.version} at {af3.url}, {af2.version} at {af2.url}, "
            f"short-JWT {short.url}; install {timings['install']:.0f} s, "
            f"start {timings['start']:.0f} s\n"
        )
        yield RealAirflow(af3, af2, short, password, root, timings)


def _start_all(
    stack: ExitStack, root: Path, password: str, timings: dict[str, float]
) -> tuple[Any, Any, Any]:
    """Install (side by side), start both servers and the short-JWT one; stops go on ``stack``."""
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(ra.ensure_installed, ("3.3", "2.11")))
    timings["install"] = time.monotonic() - started
    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(ra.start, "3.3", root / "af3", password=password),
            pool.submit(ra.start, "2.11", root / "af2", password=password),
        ]
    # Every server that came up is stopped at the end, even if the other failed.
    for future in futures:
        if future.exception() is None:
            stack.callback(future.result().stop)
    af3, af2 = (future.result() for future in futures)  # raises a failed start's error
    short = ra.start_second_api_server(af3, jwt_expiration_s=SHORT_JWT_S)
    stack.callback(short.stop)
    timings["start"] = time.monotonic() - started
    return af3, af2, short


@pytest.fixture(scope="package")
def fleet(real: RealAirflow) -> Path:
    """20 deployments: af3-00..09 on Airflow 3, af2-00..09 on Airflow 2."""
    path = real.root / "fleet.yaml"
    path.write_text(fleet_yaml([("af3", real.af3), ("af2", real.af2)]), encoding="utf-8")
    return path
