"""Test seams: run an :class:`~airfleet.Engine` with no servers and no sleeping.

* :class:`MockTransport` answers each request with a function of yours and
  records what was sent;
* :func:`answer` builds a JSON answer for it;
* :class:`FakeClock` is the engine's clock in tests: time moves only when
  told (:meth:`FakeClock.advance`) or, inside :meth:`FakeClock.autojump`,
  whenever every task is waiting, straight to the next sleeper's deadline
  (trio's ``MockClock`` idea). Backoff, token expiry and rates then take no
  real time, and what they did is read off the clock.

::

    clock = FakeClock()
    transport = MockTransport(lambda request: answer(200, {"pools": [], "total_entries": 0}))
    async with clock.autojump(), Engine(fleet, transport=transport, clock=clock) as engine:
        report = await engine.run(plan_pools(fleet.deployments))
    assert clock.now() == 0.0 and len(transport.sent) == len(fleet.deployments)
"""

from __future__ import annotations

import heapq
import itertools
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.lowlevel

from airfleet.inventory import Network
from airfleet.transport import HttpRequest, HttpResponse

__all__ = ["FakeClock", "Handler", "MockTransport", "answer"]

Handler = Callable[[HttpRequest], HttpResponse | Exception]


def answer(status: int, body: Any = None, **headers: str) -> HttpResponse:
    """An answer with ``body`` as JSON; ``retry_after="2"`` becomes ``retry-after: 2``."""
    raw = b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


class MockTransport:
    """A :class:`~airfleet.transport.Transport` that answers ``handler(request)``.

    A handler that returns an exception has it raised, as a network failure
    would be (``airfleet.ConnectError("reset")``). ``sent`` lists every
    request in the order sent (their ``headers`` carry the credential).
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[HttpRequest] = []
        self.closed = False

    async def prepare(self, targets: Iterable[tuple[str, Network | None]]) -> None:
        """Nothing to get ready: no connection, no TLS."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        await anyio.lowlevel.checkpoint()  # a real send yields to the loop too
        outcome = self.handler(request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


class FakeClock:
    """A :class:`~airfleet.clock.Clock` whose time moves only when told.

    ``now()`` starts at ``start``; ``wall()`` at ``wall_start`` and moves with
    it. ``sleep(s)`` waits until the clock has been advanced past its
    deadline.
    """

    def __init__(self, start: float = 0.0, *, wall_start: float = 1_800_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._sleepers: list[tuple[float, int, anyio.Event]] = []
        self._order = itertools.count()
        self._slept: anyio.Event | None = None

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g}, sleeping={len(self._sleepers)})"

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self._now + self._wall_offset

    async def sleep(self, seconds: float) -> None:
        if seconds <= 0:
            await anyio.lowlevel.checkpoint()
            return
        woken = anyio.Event()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._order), woken))
        if self._slept is not None:
            self._slept.set()
        await woken.wait()

    def advance(self, seconds: float) -> None:
        """Move time on by ``seconds`` and wake every sleeper due by then."""
        if seconds < 0:
            raise ValueError("time does not go back")
        self._jump_to(self._now + seconds)

    def _jump_to(self, when: float) -> None:
        self._now = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()

    @asynccontextmanager
    async def autojump(self) -> AsyncIterator[FakeClock]:
        """While inside, time jumps to the next deadline whenever all tasks wait."""
        async with anyio.create_task_group() as group:
            group.start_soon(self._jumper)
            try:
                yield self
            finally:
                group.cancel_scope.cancel()

    async def _jumper(self) -> None:
        while True:
            await anyio.wait_all_tasks_blocked()
            if self._sleepers:
                self._jump_to(self._sleepers[0][0])
            else:
                self._slept = anyio.Event()
                await self._slept.wait()
                self._slept = None
