"""Admission: caps hand slots out in order and lose none; rates space requests (GCRA)."""

from __future__ import annotations

import asyncio
import itertools
import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airfleet.inventory import Deployment, FleetLimits
from airfleet.limits import RATE_MARGIN, WINDOW_S, Admission, Capacity, Limits, Pacer, Rates
from airfleet.testing import FakeClock

pytestmark = pytest.mark.anyio


async def test_capacity_serves_waiters_in_order_and_keeps_its_size() -> None:
    """Two slots, five takers: at most two hold one, and they get them first come first served."""
    cap = Capacity(2)
    holding = 0
    most = 0
    order: list[int] = []

    async def one(i: int) -> None:
        nonlocal holding, most
        await cap.take()
        holding += 1
        most = max(most, holding)
        order.append(i)
        await asyncio.sleep(0.01)
        holding -= 1
        cap.give()

    async with anyio.create_task_group() as group:
        for i in range(5):
            group.start_soon(one, i)
            await asyncio.sleep(0)  # queue them in this order
    assert most == 2
    assert order == [0, 1, 2, 3, 4]
    assert cap.try_take()
    assert cap.try_take()
    assert not cap.try_take()


async def test_a_cancelled_waiter_loses_no_slot() -> None:
    """Cancelled while queued, or just after being handed a slot: the slot goes on."""
    cap = Capacity(1)
    assert cap.try_take()
    with anyio.move_on_after(0.01):
        await cap.take()  # queued, then cancelled
    handed = asyncio.ensure_future(cap.take())
    await asyncio.sleep(0)
    cap.give()  # handed to the waiter...
    handed.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await handed
    # The slot came back: one take succeeds at once, a second does not.
    assert cap.try_take()
    assert not cap.try_take()


async def test_pacer_spaces_requests_evenly() -> None:
    """20/s: each departure one interval after the last, on the engine's clock."""
    clock = FakeClock()
    pacer = Pacer(20, clock=clock)
    times = []
    async with clock.autojump():
        for _ in range(10):
            await pacer.book()
            times.append(clock.now())
    interval = (1 + RATE_MARGIN) / 20
    assert times == pytest.approx([i * interval for i in range(10)])


async def test_a_late_wake_up_does_not_crowd_the_window() -> None:
    """Booked slots that all come due at once still leave no more than the rate per window."""
    clock = FakeClock()
    pacer = Pacer(5, clock=clock)
    left: list[float] = []

    async def one() -> None:
        await pacer.book()
        left.append(clock.now())

    async with anyio.create_task_group() as group:
        for _ in range(12):
            group.start_soon(one)
        await anyio.wait_all_tasks_blocked()
        clock.advance(3.0)  # the loop "wakes late": every slot up to 3 s is due at once
        await anyio.wait_all_tasks_blocked()
        while len(left) < 12:
            clock.advance(0.05)
            await anyio.wait_all_tasks_blocked()
    for i, start in enumerate(left):
        assert len([t for t in left[i:] if t < start + WINDOW_S]) <= 5


@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 10.0, 33.3]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=1, max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_book_now_keeps_the_rate_for_any_arrivals(rate: float, gaps: list[float]) -> None:
    """Whatever the arrival times, what book_now lets through is spaced by the
    interval, and no window holds more than the rate."""
    clock = FakeClock(1000.0)
    pacer = Pacer(rate, clock=clock)
    left = []
    for gap in gaps:
        clock.advance(gap)
        if pacer.book_now():
            left.append(clock.now())
    interval = (1 + RATE_MARGIN) / rate
    assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(left))
    for i, start in enumerate(left):
        in_window = [t for t in left[i:] if t < start + WINDOW_S]
        assert len(in_window) <= max(1, math.floor(rate))


async def test_an_admission_is_taken_at_once_or_not_at_all() -> None:
    """enter_now takes the caps and the rate together; when the rate is not free
    it holds nothing, and enter() waits for the rate."""
    clock = FakeClock()
    deployment_cap = Capacity(1)
    admission = Admission(deployment_cap, Capacity(64), (Pacer(20, clock=clock),))
    assert admission.enter_now()
    assert not deployment_cap.try_take()  # held by the admitted request
    admission.leave()
    assert not admission.enter_now()  # the next departure is 1/20 s away...
    assert deployment_cap.try_take()  # ...and the refusal held nothing
    deployment_cap.give()
    async with clock.autojump():
        await admission.enter()
    assert clock.now() == pytest.approx((1 + RATE_MARGIN) / 20)
    admission.leave()
    assert deployment_cap.try_take()


async def test_a_token_fetch_is_admitted_while_the_calls_hold_every_cap() -> None:
    """The calls waiting for a token may hold the deployment's and the fleet's
    caps; the fetch needs none of them, only the rates."""
    clock = FakeClock()
    deployment = Deployment("d", "http://d.test", "p", max_in_flight=1, max_per_second=10)
    limits = Limits(FleetLimits(max_in_flight=1, max_per_second=None), rates=Rates(clock))
    call = limits.admission(deployment)
    assert call.enter_now()
    fetch = limits.token_admission(deployment)
    async with clock.autojump():
        with anyio.fail_after(5):
            await fetch.enter()  # waits for the deployment's rate, not for a cap
    fetch.leave()
    assert clock.now() == pytest.approx((1 + RATE_MARGIN) / 10)
    call.leave()


async def test_a_rate_holds_across_runs_and_a_change_of_rate() -> None:
    """Two runs back to back share the scope's schedule; a lower rate for the
    second starts from the first one's last departure."""
    clock = FakeClock()
    rates = Rates(clock)
    first = Limits(FleetLimits(max_per_second=10), rates=rates).token_admission(None)
    assert first.enter_now()
    first.leave()
    again = Limits(FleetLimits(max_per_second=10), rates=rates).token_admission(None)
    assert not again.enter_now()  # the first run's departure still counts
    slower = Limits(FleetLimits(max_per_second=2), rates=rates).token_admission(None)
    async with clock.autojump():
        await slower.enter()
    slower.leave()
    assert clock.now() == pytest.approx((1 + RATE_MARGIN) / 2)
