"""Capacity hands slots out in order and never loses one to a cancelled waiter; Pacer spaces."""

from __future__ import annotations

import asyncio

import anyio
import pytest

from airfleet.limits import RATE_MARGIN, Capacity, Pacer

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
