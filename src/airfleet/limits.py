"""Admission: fleet-wide, per-deployment and per-credential limits, taken together.

A request is *admitted* by its route's :class:`Admission`: the deployment's
and the fleet's in-flight caps for as long as it is in flight, then every
rate that applies to it (its deployment's, its credential's, the fleet's) at
the moment it leaves. ``enter_now()`` is the fast path that takes them all
without awaiting when they are free; ``await enter()`` waits in line.

In-flight caps are :class:`Capacity` counters on asyncio futures: the
uncontended take neither awaits nor allocates, which an anyio
``CapacityLimiter`` does (benchmarks/README.md has the figures). The engine
runs on asyncio only (aiohttp), and anyio's cancel scopes cancel these
waiters like any other.

Rates are :class:`Pacer` s: GCRA (the generic cell rate algorithm) with no
burst tolerance. Each keeps a theoretical arrival time, ``next_at``; a request
may leave at it or later, and moves it one emission interval,
``(1 + RATE_MARGIN) / rate``, past its own departure. So requests are spaced
evenly rather than let through in bursts: a bucket of ``rate`` would allow
``2 * rate`` across the edge of two windows, as a server measures them.

* The widest rate (the last one taken) books the next slot of a fixed
  schedule and sleeps until it: a waiter the loop wakes late does not push
  every later slot back, so a busy loop still delivers the configured rate
  (aiolimiter re-measures from each late wake-up and under-delivers). A
  guard over the real departures of the last window keeps catching up from
  ever exceeding it.
* Each narrower rate is held, under a lock, while its request waits for the
  wider ones, and its interval runs from the real departure: taking a narrow
  slot early and then queueing for the fleet-wide rate would let a
  deployment's queued requests leave together.

Caps belong to one run (``Engine.run(plan, limits=...)``). Rates are kept
across runs in a :class:`Rates` book owned by the engine: what a server
measures is departures in time, and a run that starts right after another
must not crowd the window the last one filled. Everything here reads time
from the engine's :class:`~airfleet.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque

from airfleet.clock import Clock
from airfleet.inventory import Deployment, FleetLimits

__all__ = ["Admission", "Capacity", "Limits", "Pacer", "Rates"]

# Each rate spaces requests a little wider than 1/rate. A request spends a
# variable few milliseconds between leaving the limiter and reaching the
# server; without this margin, two requests exactly 1/rate apart could land
# rate+1 in one server-side second.
RATE_MARGIN = 0.03
# The guard's window: no more than floor(rate) departures within it.
WINDOW_S = 1.0 + RATE_MARGIN
# A capacity no scope reaches: for an admission without in-flight caps.
_UNCAPPED = 1 << 30
_NEVER = -math.inf


class Capacity:
    """A counting semaphore whose uncontended take neither awaits nor allocates.

    Waiters are served first come, first served: :meth:`give` hands the slot
    straight to the oldest waiter still waiting.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        # Made on the first wait: most deployments' caps never see one, and an
        # empty deque is 600 bytes the garbage collector walks on every sweep.
        self._waiters: deque[asyncio.Future[None]] | None = None

    def __repr__(self) -> str:
        return f"Capacity(free={self._free}, waiting={len(self._waiters or ())})"

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody is queued before us."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one."""
        if self.try_take():
            return
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = deque()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Return a slot: to the oldest live waiter, or to the pool."""
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class Pacer:
    """One rate (GCRA): requests leave at least ``(1 + RATE_MARGIN) / per_second`` apart."""

    __slots__ = ("_clock", "_departures", "_lock", "_most", "interval", "next_at", "per_second")

    def __init__(self, per_second: float, *, clock: Clock) -> None:
        if not per_second > 0:
            raise ValueError("a rate must be > 0 per second")
        self.per_second = per_second
        self.interval = (1.0 + RATE_MARGIN) / per_second
        self.next_at = _NEVER  # the theoretical arrival time: the earliest next departure
        self._clock = clock
        self._most = int(per_second) or 1  # floor, and at least one
        # The real departures within the last window (the guard): at most
        # floor(rate) of them, so a list (56 bytes empty; a deque is 624, and
        # a fleet has a pacer per deployment).
        self._departures: list[float] = []
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"Pacer({self.per_second:g}/s)"

    def at_rate(self, per_second: float) -> Pacer:
        """This pacer, or one at another rate that carries its recent departures on."""
        if per_second == self.per_second:
            return self
        other = Pacer(per_second, clock=self._clock)
        other._departures = self._departures
        if self._departures:
            other.next_at = self._departures[-1] + other.interval
        return other

    def _forget_before(self, now: float) -> list[float]:
        # One expression, here and where book() sleeps, so a departure is
        # forgotten exactly when the sleep for it ends (no float gap to spin in).
        departures = self._departures
        gone = 0
        while gone < len(departures) and departures[gone] + WINDOW_S <= now:
            gone += 1
        if gone:
            del departures[:gone]
        return departures

    def book_now(self) -> bool:
        """Leave now if the schedule and the guard allow it: :meth:`book` without
        a coroutine. False, and nothing taken, when the request would wait."""
        now = self._clock.now()
        if self.next_at > now or len(self._forget_before(now)) >= self._most:
            return False
        self.next_at = now + self.interval
        self._departures.append(now)
        return True

    async def book(self) -> None:
        """Take the next slot on the schedule and sleep until it (the widest rate)."""
        clock = self._clock
        now = clock.now()
        slot = self.next_at if self.next_at > now else now
        self.next_at = slot + self.interval
        if slot > now:
            await clock.sleep(slot - now)
            now = max(clock.now(), slot)
        # Catching up after a late wake-up must not crowd the window.
        departures = self._forget_before(now)
        while len(departures) >= self._most:
            until = departures[0] + WINDOW_S
            await clock.sleep(until - now)
            now = max(clock.now(), until)
            departures = self._forget_before(now)
        departures.append(now)

    async def hold(self, wider: tuple[Pacer, ...]) -> None:
        """Wait for this rate, then for every wider one, and count from the departure."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            clock = self._clock
            wait = self.next_at - clock.now()
            if wait > 0:
                await clock.sleep(wait)
            await _through(wider)
            self.next_at = clock.now() + self.interval


async def _through(pacers: tuple[Pacer, ...]) -> None:
    """Pass every rate, narrowest first; returns when the request may leave."""
    if len(pacers) == 1:
        await pacers[0].book()
    elif pacers:
        await pacers[0].hold(pacers[1:])


class Rates:
    """The engine's rates, by scope (the fleet, a deployment, a credential), across runs."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._pacers: dict[tuple[str, str], Pacer] = {}

    def pacer(self, scope: tuple[str, str], per_second: float | None) -> Pacer | None:
        """The scope's pacer at ``per_second`` (None: the scope has no rate)."""
        if per_second is None:
            return None
        known = self._pacers.get(scope)
        if known is None:
            known = self._pacers[scope] = Pacer(per_second, clock=self._clock)
        elif known.per_second != per_second:
            known = self._pacers[scope] = known.at_rate(per_second)
        return known


class Limits:
    """Every limit of one run, keyed by deployment and credential.

    :meth:`admission` is the one way in for a request: the deployment's and
    the fleet's caps, then the rates from the narrowest to the widest, so the
    fleet-wide rate, the busiest shared one, is taken last and spaced exactly.
    """

    def __init__(self, fleet: FleetLimits, *, rates: Rates) -> None:
        self._rates = rates
        self.max_in_flight = fleet.max_in_flight
        self._fleet_cap = Capacity(fleet.max_in_flight)
        self._fleet_rate = rates.pacer(("fleet", ""), fleet.max_per_second)
        self._uncapped = Capacity(_UNCAPPED)
        self._dep_caps: dict[str, Capacity] = {}
        self._dep_rates: dict[str, Pacer | None] = {}
        self._cred_rates: dict[str, Pacer | None] = {}
        # An admission holds no per-request state, so one serves every request
        # of a deployment and credential.
        self._admissions: dict[tuple[str | None, str | None, bool], Admission] = {}

    def _deployment(self, deployment: Deployment) -> tuple[Capacity, Pacer | None]:
        cap = self._dep_caps.get(deployment.name)
        if cap is None:
            cap = self._dep_caps[deployment.name] = Capacity(deployment.max_in_flight)
            self._dep_rates[deployment.name] = self._rates.pacer(
                ("deployment", deployment.name), deployment.max_per_second
            )
        return cap, self._dep_rates[deployment.name]

    def _credential(self, key: str | None, per_second: float | None) -> Pacer | None:
        if key is None or per_second is None:
            return None
        if key not in self._cred_rates:
            self._cred_rates[key] = self._rates.pacer(("credential", key), per_second)
        return self._cred_rates[key]

    def admission(
        self,
        deployment: Deployment,
        *,
        credential_key: str | None = None,
        credential_rate: float | None = None,
    ) -> Admission:
        """A request's admission to ``deployment``, with its credential's rate if any."""
        key = (deployment.name, credential_key if credential_rate else None, True)
        admission = self._admissions.get(key)
        if admission is None:
            cap, rate = self._deployment(deployment)
            credential = self._credential(credential_key, credential_rate)
            pacers = tuple(p for p in (rate, credential, self._fleet_rate) if p is not None)
            admission = self._admissions[key] = Admission(cap, self._fleet_cap, pacers)
        return admission

    def token_admission(self, deployment: Deployment | None) -> Admission:
        """A token fetch's admission: rates only.

        A fetch is a request the server counts, so it keeps the rates: the
        deployment's for an Airflow 3 JWT (its own server answers it), the
        fleet's always. It takes no in-flight cap: the calls waiting for the
        token may hold them all, and a fetch is single-flight per credential
        anyway.
        """
        key = (deployment.name if deployment is not None else None, None, False)
        admission = self._admissions.get(key)
        if admission is None:
            rate = self._deployment(deployment)[1] if deployment is not None else None
            pacers = tuple(p for p in (rate, self._fleet_rate) if p is not None)
            admission = self._admissions[key] = Admission(self._uncapped, self._uncapped, pacers)
        return admission


class Admission:
    """A request's place under :class:`Limits`: ``enter_now()``, or ``await
    enter()`` when it must wait, then ``leave()``; the fast path spares two
    coroutines per request when nothing has to wait."""

    __slots__ = ("_deployment_cap", "_fleet_cap", "_pacers")

    def __init__(
        self, deployment_cap: Capacity, fleet_cap: Capacity, pacers: tuple[Pacer, ...]
    ) -> None:
        self._deployment_cap = deployment_cap
        self._fleet_cap = fleet_cap
        self._pacers = pacers

    def __repr__(self) -> str:
        return f"Admission({self._deployment_cap!r}, fleet {self._fleet_cap!r}, {self._pacers!r})"

    def enter_now(self) -> bool:
        """Take both caps and the rate without waiting, when all are free now.

        A single rate (a deployment's, the default) is taken here too; several
        are held in order by :meth:`enter`. On False nothing is held.
        """
        pacers = self._pacers
        if len(pacers) > 1 or not self._deployment_cap.try_take():
            return False
        if not self._fleet_cap.try_take():
            self._deployment_cap.give()
            return False
        if pacers and not pacers[0].book_now():
            self.leave()
            return False
        return True

    async def enter(self) -> None:
        """Take the caps (waiting in line), then pass every rate."""
        deployment_cap, fleet_cap = self._deployment_cap, self._fleet_cap
        if not deployment_cap.try_take():
            await deployment_cap.take()
        try:
            if not fleet_cap.try_take():
                await fleet_cap.take()
        except BaseException:
            deployment_cap.give()
            raise
        try:
            await self.pace()
        except BaseException:
            self.leave()
            raise

    async def pace(self) -> None:
        """Pass every rate again (caps held): for a request that waited for a
        token after it was admitted, so its late departure does not crowd."""
        if self._pacers:
            await _through(self._pacers)

    def leave(self) -> None:
        """Give both caps back (after ``enter_now()`` or ``enter()``)."""
        self._fleet_cap.give()
        self._deployment_cap.give()
