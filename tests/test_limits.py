"""Capacity hands slots out in order and never loses one to a cancelled waiter; Pacer spaces."""

from __future__ import annotations

import asyncio
import itertools
import math

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airfleet.limits import RATE_MARGIN, WINDOW_S, Capacity, Pacer, Slot

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


async def test_pacer_spaces_requests_and_catches_up_without_crowding() -> None:
    """20/s: 10 departures take about 9 intervals, never more than 20 in a window."""
    pacer = Pacer(20)
    loop = asyncio.get_running_loop()
    started = loop.time()
    times = []
    for _ in range(10):
        await pacer.book()
        times.append(loop.time())
    took = times[-1] - started
    assert took >= 9 * (1 + RATE_MARGIN) / 20 - 0.005
    assert took < 9 * (1 + RATE_MARGIN) / 20 + 0.2


@given(
    rate=st.sampled_from([0.5, 1.0, 2.0, 10.0, 33.3]),
    gaps=st.lists(st.floats(min_value=0.0, max_value=1.5), min_size=1, max_size=60),
)
@settings(max_examples=200, deadline=None)
def test_book_now_keeps_the_rate_for_any_arrivals(rate: float, gaps: list[float]) -> None:
    """Whatever the arrival times, what book_now lets through is spaced by the
    interval, and no window holds more than the rate."""
    clock = [1000.0]
    loop = asyncio.new_event_loop()
    loop.time = lambda: clock[0]  # type: ignore[method-assign]

    async def arrivals() -> list[float]:
        pacer = Pacer(rate)
        left = []
        for gap in gaps:
            clock[0] += gap
            if pacer.book_now():
                left.append(clock[0])
        return left

    try:
        left = loop.run_until_complete(arrivals())
    finally:
        loop.close()
    interval = (1 + RATE_MARGIN) / rate
    assert all(b - a >= interval - 1e-9 for a, b in itertools.pairwise(left))
    for i, start in enumerate(left):
        in_window = [t for t in left[i:] if t < start + WINDOW_S]
        assert len(in_window) <= max(1, math.floor(rate))


async def test_a_slot_with_one_rate_is_taken_at_once_or_not_at_all() -> None:
    """enter_now takes the caps and the rate together; when the rate is not free
    it holds nothing, and enter() waits for the rate."""
    deployment_cap, fleet_cap = Capacity(4), Capacity(64)
    slot = Slot(deployment_cap, fleet_cap, (Pacer(20),))
    assert slot.enter_now()
    assert (deployment_cap._free, fleet_cap._free) == (3, 63)
    slot.leave()
    assert not slot.enter_now()  # the next departure is 1/20 s away
    assert (deployment_cap._free, fleet_cap._free) == (4, 64)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await slot.enter()
    assert loop.time() - started >= (1 + RATE_MARGIN) / 20 - 0.005
    slot.leave()
    assert (deployment_cap._free, fleet_cap._free) == (4, 64)


def test_a_pacer_that_left_once_keeps_no_deque_until_a_second_booking() -> None:
    """The first departure is implied by the schedule; a second one within the
    window makes the deque, with the first in it."""
    clock = [1000.0]
    loop = asyncio.new_event_loop()
    loop.time = lambda: clock[0]  # type: ignore[method-assign]

    async def bookings() -> None:
        pacer = Pacer(10)
        assert pacer.book_now()
        clock[0] = 1001.5  # outside the window: still nothing to keep
        assert pacer.book_now()
        assert pacer._departures is None
        clock[0] = 1001.55  # too soon after the last: refused by the schedule alone
        assert not pacer.book_now()
        assert pacer._departures is None
        clock[0] = 1001.7  # a second departure within the window
        assert pacer.book_now()
        assert pacer._departures is not None
        assert list(pacer._departures) == pytest.approx([1001.5, 1001.7])

    try:
        loop.run_until_complete(bookings())
    finally:
        loop.close()
