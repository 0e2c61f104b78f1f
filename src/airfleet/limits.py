"""Limits: fleet-wide, per-deployment and per-credential, all enforced together.

Concurrency caps are :class:`Capacity` s, counting semaphores on asyncio
futures: this is the hot path of every request. Per acquire+release an anyio
``CapacityLimiter`` costs 7.7 us, an anyio ``Semaphore(fast_acquire=True)``
1.2 us, an ``asyncio.Semaphore`` 0.65-1 us (a coroutine and a generator per
acquire, even when free) and a free :class:`Capacity` 0.2 us, with nothing
allocated. The engine runs on asyncio only (aiohttp), and anyio cancel scopes
cancel an asyncio waiter like any other.

Rates are :class:`Pacer` s that space requests evenly, ``(1 + RATE_MARGIN) /
rate`` apart, so no 1 s window ever holds more than the configured figure (a
bucket of ``rate`` would allow a burst of ``rate`` at the edge of two windows,
twice the limit). Several rates apply to one request (its deployment's, its
credential's, the fleet's); it must satisfy all of them *at the moment it
leaves*:

* The widest rate (the last one taken) keeps a fixed schedule: each request
  books the next free slot and sleeps until it. A waiter the event loop wakes
  late does not push every later slot back, so a busy loop still delivers the
  configured rate (aiolimiter re-measures from each late wake-up and fell to
  0.85 of a 400/s rate here), and a guard over the real departures of the
  last second keeps catching-up from ever exceeding it.
* Each narrower rate is held, under a lock, while its request waits for the
  wider ones, and its spacing runs from the request's real departure. Taking
  a narrow token early and then queueing for the fleet-wide rate would let a
  deployment's queued requests leave together.

Pacers keep no event-loop state (``loop.time()`` is read when used), so they
are safe to create anywhere and to reuse across runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import deque
from types import TracebackType

from airfleet.inventory import Deployment, FleetLimits

__all__ = ["Capacity", "Limits", "Pacer", "Slot"]

# Each rate spaces requests a little wider than 1/rate. A request spends a
# variable few milliseconds between leaving the limiter and reaching the
# server; without this margin, two requests exactly 1/rate apart could land
# rate+1 in one server-side second.
RATE_MARGIN = 0.03
# The guard's window: no more than floor(rate) departures within it.
WINDOW_S = 1.0 + RATE_MARGIN
# A capacity no scope reaches: for a slot that has no deployment cap.
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
    """One rate: requests leave at least ``(1 + RATE_MARGIN) / per_second`` apart."""

    __slots__ = ("_departures", "_lock", "_most", "interval", "next_at", "per_second")

    def __init__(self, per_second: float) -> None:
        if not per_second > 0:
            raise ValueError("a rate must be > 0 per second")
        self.per_second = per_second
        self.interval = (1.0 + RATE_MARGIN) / per_second
        self.next_at = _NEVER  # the earliest time the next request may leave
        self._most = int(per_second) or 1  # floor, and at least one
        # Made on a second booking within the window (see _recent): most
        # fleet-wide calls book a deployment's rate once, and a deque is 624
        # bytes (6 MB at 10,000 deployments; 1 us of a cold call's 26).
        self._departures: deque[float] | None = None
        self._lock: asyncio.Lock | None = None

    def __repr__(self) -> str:
        return f"Pacer({self.per_second:g}/s)"

    def book_now(self) -> bool:
        """Take the schedule's slot if it is free now: what :meth:`book` does
        when it need not sleep, with no coroutine. False, and nothing taken,
        when the request would have to wait."""
        now = asyncio.get_running_loop().time()
        if self.next_at > now:
            return False
        if self._departures is None and self.next_at - self.interval <= now - WINDOW_S:
            # Left at most once, outside the window: nothing to count.
            self.next_at = now + self.interval
            return True
        departures = self._recent()
        while departures and departures[0] <= now - WINDOW_S:
            departures.popleft()
        if len(departures) >= self._most:
            return False
        self.next_at = now + self.interval
        departures.append(now)
        return True

    async def book(self) -> None:
        """Take the next slot on the schedule and sleep until it (the widest rate)."""
        departures = self._recent()  # before next_at moves
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = self.next_at if self.next_at > now else now
        self.next_at = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)
            now = loop.time()
        # Catching up after a late wake-up must not crowd the window.
        while departures and departures[0] <= now - WINDOW_S:
            departures.popleft()
        while len(departures) >= self._most:
            await asyncio.sleep(departures[0] + WINDOW_S - now)
            now = loop.time()
            while departures and departures[0] <= now - WINDOW_S:
                departures.popleft()
        departures.append(now)

    def _recent(self) -> deque[float]:
        """The departures the window counts, made when first needed.

        Until then the pacer has left at most once, at ``next_at - interval``:
        book_now() and hold() set ``next_at`` from the real departure, so that
        time is exact (book() always records in the deque).
        """
        departures = self._departures
        if departures is None:
            departures = self._departures = deque()
            if self.next_at != _NEVER:
                departures.append(self.next_at - self.interval)
        return departures

    async def hold(self, wider: tuple[Pacer, ...]) -> None:
        """Wait for this rate, then for every wider one, and count from the departure."""
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            wait = self.next_at - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            await _through(wider)
            self.next_at = loop.time() + self.interval


async def _through(pacers: tuple[Pacer, ...]) -> None:
    """Pass every rate, narrowest first; returns when the request may leave."""
    if len(pacers) == 1:
        await pacers[0].book()
    elif pacers:
        await pacers[0].hold(pacers[1:])


def _pacer(per_second: float | None) -> Pacer | None:
    """A scope's rate, or None when it has none."""
    return None if per_second is None else Pacer(per_second)


class Limits:
    """Every limit of one engine, keyed by deployment and credential.

    ``slot(deployment, credential_key, credential_rate)`` is the one way in:
    it takes the deployment's and the fleet's capacity, then the rates from
    the narrowest to the widest, so the fleet-wide rate, the busiest shared
    one, is taken last and spaced exactly.
    """

    def __init__(self, fleet: FleetLimits) -> None:
        self._fleet_cap = Capacity(fleet.max_in_flight)
        self._fleet_rate = _pacer(fleet.max_per_second)
        self._dep_caps: dict[str, Capacity] = {}
        self._dep_rates: dict[str, Pacer | None] = {}
        self._cred_rates: dict[str, Pacer | None] = {}
        # A slot holds no per-request state, so one serves every request of a
        # deployment and credential: no allocation on the hot path.
        self._slots: dict[tuple[str, str | None, float | None], Slot] = {}
        self._token_service_slot: Slot | None = None

    def _deployment(self, deployment: Deployment) -> tuple[Capacity, Pacer | None]:
        cap = self._dep_caps.get(deployment.name)
        if cap is None:
            cap = self._dep_caps[deployment.name] = Capacity(deployment.max_in_flight)
            self._dep_rates[deployment.name] = _pacer(deployment.max_per_second)
        return cap, self._dep_rates[deployment.name]

    def _credential(self, key: str | None, per_second: float | None) -> Pacer | None:
        if key is None or per_second is None:
            return None
        if key not in self._cred_rates:
            self._cred_rates[key] = _pacer(per_second)
        return self._cred_rates[key]

    def _pacers(self, deployment: Pacer | None, credential: Pacer | None) -> tuple[Pacer, ...]:
        # Narrowest first. Made once per deployment, so without a comprehension
        # (a Pacer is always true).
        return tuple(filter(None, (deployment, credential, self._fleet_rate)))

    def slot(
        self,
        deployment: Deployment,
        *,
        credential_key: str | None = None,
        credential_rate: float | None = None,
    ) -> Slot:
        """One request's place: in-flight caps for its duration, rates at entry.

        ``async with limits.slot(deployment, ...):`` around the send.
        """
        key = (deployment.name, credential_key, credential_rate)
        slot = self._slots.get(key)
        if slot is None:
            dep_cap, dep_rate = self._deployment(deployment)
            pacers = self._pacers(dep_rate, self._credential(credential_key, credential_rate))
            slot = self._slots[key] = Slot(dep_cap, self._fleet_cap, pacers)
        return slot

    def fetch_slot(self, deployment: Deployment | None) -> Slot:
        """A token fetch's place: it is a request the server counts.

        An Airflow 3 JWT comes from the deployment's own server, so its caps
        and rates hold it like any other request; a shared token service
        (``deployment`` None) is held to the fleet-wide ones.
        """
        if deployment is not None:
            return self.slot(deployment)
        if self._token_service_slot is None:
            pacers = self._pacers(None, None)
            self._token_service_slot = Slot(Capacity(_UNCAPPED), self._fleet_cap, pacers)
        return self._token_service_slot


class Slot:
    """A request's place under :meth:`Limits.slot`: ``async with slot:``, or on
    the engine's hot path ``enter_now()`` / ``await enter()`` then ``leave()``,
    which spares two coroutines per request when nothing has to wait."""

    __slots__ = ("_deployment_cap", "_fleet_cap", "_pacers")

    def __init__(
        self,
        deployment_cap: Capacity,
        fleet_cap: Capacity,
        pacers: tuple[Pacer, ...],
    ) -> None:
        self._deployment_cap = deployment_cap
        self._fleet_cap = fleet_cap
        self._pacers = pacers

    def enter_now(self) -> bool:
        """Take both caps and the rate without waiting, when all are free now.

        The hot path of every request that need not wait: no coroutine is
        made. A single rate (a deployment's, the default) is taken here too;
        several are held in order by :meth:`enter`. On False nothing is held;
        ``await enter()`` instead.
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
        if self._pacers:
            try:
                await _through(self._pacers)
            except BaseException:
                fleet_cap.give()
                deployment_cap.give()
                raise

    def leave(self) -> None:
        """Give both caps back (after ``enter_now()`` or ``enter()``)."""
        self._fleet_cap.give()
        self._deployment_cap.give()

    async def __aenter__(self) -> None:
        if not self.enter_now():
            await self.enter()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leave()
