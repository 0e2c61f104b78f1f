"""Limits: fleet-wide, per-deployment and per-credential, all enforced together.

Concurrency caps are anyio ``CapacityLimiter`` s; rates are aiolimiter
``AsyncLimiter(1, period)`` s, which space requests evenly, so no 1 s window
ever holds more than the configured figure (a bucket of ``rate`` would allow a
burst of ``rate`` at the edge of two windows, twice the limit).

Limiters are created lazily, inside the running event loop (aiolimiter binds
to the loop that first uses it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
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
        self._fleet_cap = anyio.CapacityLimiter(fleet.max_in_flight)
        self._fleet_rate_spec = RateSpec(fleet.max_per_second)
        self._fleet_rate: AsyncLimiter | None = None
        self._fleet_rate_made = False
        self._dep_caps: dict[str, anyio.CapacityLimiter] = {}
        self._dep_rates: dict[str, AsyncLimiter | None] = {}
        self._cred_rates: dict[str, AsyncLimiter | None] = {}

    @property
    def fleet_in_flight(self) -> int:
        return int(self._fleet_cap.total_tokens)

    def _fleet_rate_limiter(self) -> AsyncLimiter | None:
        if not self._fleet_rate_made:
            self._fleet_rate = self._fleet_rate_spec.limiter()
            self._fleet_rate_made = True
        return self._fleet_rate

    def _deployment(
        self, deployment: Deployment
    ) -> tuple[anyio.CapacityLimiter, AsyncLimiter | None]:
        cap = self._dep_caps.get(deployment.name)
        if cap is None:
            cap = self._dep_caps[deployment.name] = anyio.CapacityLimiter(deployment.max_in_flight)
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

    @asynccontextmanager
    async def slot(
        self,
        deployment: Deployment,
        *,
        credential_key: str | None = None,
        credential_rate: float | None = None,
    ) -> AsyncIterator[None]:
        """Hold one request's place: in-flight caps for its duration, rates at entry."""
        dep_cap, dep_rate = self._deployment(deployment)
        async with dep_cap, self._fleet_cap:
            await self._rates(
                dep_rate,
                self._credential(credential_key, credential_rate),
                self._fleet_rate_limiter(),
            )
            yield

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
