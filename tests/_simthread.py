"""A simulator serving from a background thread, for tests that run the CLI in-process."""

from __future__ import annotations

import asyncio
import json
import ssl as ssl_module
import threading
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from airfleet.sim import Simulator


class SimThread:
    """The simulator's base URL, its fleet.yaml, and its stats over HTTP."""

    def __init__(self, sim: Simulator, url: str) -> None:
        self.sim = sim
        self.url = url

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_sim/stats", timeout=10) as response:  # noqa: S310 - loopback
            data: dict[str, Any] = json.loads(response.read())
            return data

    def post(self, path: str, body: Any = None) -> None:
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.url}{path}",
            data=json.dumps(body or {}).encode(),
            method="POST" if body is None else "PATCH",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310 - loopback
            pass

    def write_fleet(self, path: Path, *, auth: str = "oauth", **kwargs: Any) -> Path:
        path.write_text(self.sim.fleet_yaml(self.url, auth=auth, **kwargs), encoding="utf-8")  # type: ignore[arg-type]
        return path


@contextmanager
def sim_in_thread(
    sim: Simulator, *, ssl: ssl_module.SSLContext | None = None
) -> Iterator[SimThread]:
    """Serve ``sim`` on a free loopback port until the block ends (https with ``ssl``)."""
    ready = threading.Event()
    done: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    box: dict[str, Any] = {}

    async def main() -> None:
        nonlocal done, loop
        loop = asyncio.get_running_loop()
        done = asyncio.Event()
        try:
            async with sim.running(host="127.0.0.1", port=0, ssl=ssl) as server:
                box["url"] = server.url
                ready.set()
                await done.wait()
        except BaseException as exc:  # surfaced to the test thread
            box["error"] = exc
            ready.set()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in box:
        raise box["error"]
    try:
        yield SimThread(sim, box["url"])
    finally:
        assert loop is not None
        assert done is not None
        loop.call_soon_threadsafe(done.set)
        thread.join(30)
