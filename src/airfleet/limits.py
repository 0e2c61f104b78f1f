"""Limits: fleet-wide, per-deployment and per-credential, all enforced together.

Concurrency caps are plain ``asyncio.Semaphore`` s: this is the hot path of
every request, and per acquire+release an anyio ``CapacityLimiter`` costs
7.7 us, an anyio ``Semaphore(fast_acquire=True)`` 1.2 us and an asyncio one
0.65 us (measured here). The engine runs on asyncio only (aiohttp), and anyio
cancel scopes cancel an asyncio waiter like any other. Rates are aiolimiter
``AsyncLimiter(1, period)`` s, which space requests evenly, so no 1 s window
ever holds more than the configured figure (a bucket of ``rate`` would allow a
burst of ``rate`` at the edge of two windows, twice the limit).

Limiters are created lazily, inside the running event loop (aiolimiter binds
to the loop that first uses it).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType

from aiolimiter import AsyncLimiter

from airfleet.inventory import Deployment, FleetLimits

__all__ = ["Limits", "RateSpec"]

# Each rate limiter spaces requests a little wider than 1/rate. A request
# spends a variable few milliseconds between leaving the limiter and reaching
# the server; without this margin, two requests exactly 1/rate apart could
# land rate+1 in one server-side second.
RATE_MARGIN = 0.03


@dataclass(frozen=True, slots=True)
class RateSpec:
    """A per-second rate for one scope (None: unlimited)."""

    per_second: float | None

    def limiter(self) -> AsyncLimiter | None:
        if self.per_second is None:
            return None
        return AsyncLimiter(1, (1.0 + RATE_MARGIN) / self.per_second)


class Limits:
    """Every limit of one engine, keyed by deployment and credential.

    ``slot(deployment, credential_key, credential_rate)`` is the one way in:
    it takes the deployment's and the fleet's capacity, then the rates from
    the narrowest to the widest, so the fleet-wide rate, the busiest shared
    one, is taken last and spaced exactly.
    """

    def __init__(self, fleet: FleetLimits) -> None:
        self._fleet_cap = asyncio.Semaphore(fleet.max_in_flight)
        self._fleet_rate_spec = RateSpec(fleet.max_per_second)
        self._fleet_rate: AsyncLimiter | None = None
        self._fleet_rate_made = False
        self._dep_caps: dict[str, asyncio.Semaphore] = {}
        self._dep_rates: dict[str, AsyncLimiter | None] = {}
        self._cred_rates: dict[str, AsyncLimiter | None] = {}

    def _fleet_rate_limiter(self) -> AsyncLimiter | None:
        if not self._fleet_rate_made:
            self._fleet_rate = self._fleet_rate_spec.limiter()
            self._fleet_rate_made = True
        return self._fleet_rate

    def _deployment(self, deployment: Deployment) -> tuple[asyncio.Semaphore, AsyncLimiter | None]:
        cap = self._dep_caps.get(deployment.name)
        if cap is None:
            cap = asyncio.Semaphore(deployment.max_in_flight)
            self._dep_caps[deployment.name] = cap
            self._dep_rates[deployment.name] = RateSpec(deployment.max_per_second).limiter()
        return cap, self._dep_rates[deployment.name]

    def _credential(self, key: str | None, per_second: float | None) -> AsyncLimiter | None:
        if key is None or per_second is None:
            return None
        if key not in self._cred_rates:
            self._cred_rates[key] = RateSpec(per_second).limiter()
        return self._cred_rates[key]

    async def _rates(self, *limiters: AsyncLimiter | None) -> None:
        for limiter in limiters:
            if limiter is not None:
                await limiter.acquire()

    def slot(
        self,
        deployment: Deployment,
        *,
        credential_key: str | None = None,
        credential_rate: float | None = None,
    ) -> _Slot:
        """One request's place: in-flight caps for its duration, rates at entry.

        ``async with limits.slot(deployment, ...):`` around the send.
        """
        dep_cap, dep_rate = self._deployment(deployment)
        rates = (
            dep_rate,
            self._credential(credential_key, credential_rate),
            self._fleet_rate_limiter(),
        )
        return _Slot(dep_cap, self._fleet_cap, rates)

    async def pace(
        self,
        deployment: Deployment | None,
        *,
        credential_key: str | None = None,
        credential_rate: float | None = None,
    ) -> None:
        """Take rate tokens only (token fetches: they are requests the server counts)."""
        dep_rate = self._deployment(deployment)[1] if deployment is not None else None
        await self._rates(
            dep_rate,
            self._credential(credential_key, credential_rate),
            self._fleet_rate_limiter(),
        )


class _Slot:
    """The context manager of :meth:`Limits.slot` (a class: this is the hot path,
    and a generator-based context manager costs several microseconds more)."""

    __slots__ = ("_caps", "_rates")

    def __init__(
        self,
        deployment_cap: asyncio.Semaphore,
        fleet_cap: asyncio.Semaphore,
        rates: tuple[AsyncLimiter | None, ...],
    ) -> None:
        self._caps = (deployment_cap, fleet_cap)
        self._rates = rates

    async def __aenter__(self) -> None:
        deployment_cap, fleet_cap = self._caps
        await deployment_cap.acquire()
        try:
            await fleet_cap.acquire()
        except BaseException:
            deployment_cap.release()
            raise
        try:
            for limiter in self._rates:
                if limiter is not None:
                    await limiter.acquire()
        except BaseException:
            fleet_cap.release()
            deployment_cap.release()
            raise

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        deployment_cap, fleet_cap = self._caps
        fleet_cap.release()
        deployment_cap.release()
