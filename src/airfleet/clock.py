"""The one clock seam: what the engine, limits, retries and auth read time from.

Everything that waits or measures asks a :class:`Clock`: ``now()`` for
intervals and deadlines (monotonic), ``wall()`` for what servers stamp into
tokens (epoch seconds: a JWT's ``exp``), and ``sleep()`` to wait. The
default, :class:`SystemClock`, is the event loop's time and anyio's sleep;
:class:`airfleet.testing.FakeClock` replaces it in tests, so expiry, backoff
and rates are checked without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol

import anyio

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Time as the engine sees it."""

    def now(self) -> float:
        """Monotonic seconds: for intervals, deadlines and rates."""
        ...

    def wall(self) -> float:
        """Seconds since the epoch: for times a server wrote (a token's expiry)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (cancellable)."""
        ...


class SystemClock:
    """The real clock: ``time.monotonic()`` (the event loop's time), ``time.time()`` and
    anyio's sleep."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SystemClock()"

    # asyncio's loop.time() is time.monotonic(): the rates and the loop's own
    # timers agree, and the engine reads this several times per request, so
    # it is the C function itself, not a method around it.
    now = staticmethod(time.monotonic)

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)
