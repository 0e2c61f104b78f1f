"""airfleet.testing: the fake clock moves only when told, and scripts test without servers."""

from __future__ import annotations

import anyio
import pytest

import airfleet
from airfleet.testing import FakeClock, MockTransport, answer
from airfleet.transport import HttpRequest, HttpResponse

pytestmark = pytest.mark.anyio


def token_fleet(n: int = 1) -> airfleet.Fleet:
    """A fleet built in code, as the README's Library section shows it."""
    return airfleet.Fleet(
        deployments=tuple(
            airfleet.Deployment(
                f"team-{i}", f"https://airflow-{i}.example.com", auth="astro", api="v2"
            )
            for i in range(n)
        ),
        auth={"astro": airfleet.TokenAuth("astro", airfleet.Secret("ready-token-123"))},
        limits=airfleet.FleetLimits(max_in_flight=8),
    )


async def test_sleepers_wake_in_deadline_order_when_time_is_advanced() -> None:
    """advance() wakes exactly the sleepers that are due, earliest first."""
    clock = FakeClock()
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(seconds)

    async with anyio.create_task_group() as group:
        for seconds in (3.0, 1.0, 2.0):
            group.start_soon(sleeper, seconds)
        await anyio.wait_all_tasks_blocked()
        clock.advance(1.5)
        await anyio.wait_all_tasks_blocked()
        assert woke == [1.0]
        clock.advance(10)
    assert woke == [1.0, 2.0, 3.0]
    assert clock.now() == 11.5
    assert clock.wall() - clock.now() == pytest.approx(1_800_000_000.0)


async def test_autojump_skips_to_each_deadline_and_takes_no_real_time() -> None:
    """Inside autojump() an hour of sleeping takes no real time."""
    clock = FakeClock()
    started = anyio.current_time()
    async with clock.autojump():
        await clock.sleep(3600)
        await clock.sleep(0.5)
    assert clock.now() == 3600.5
    assert anyio.current_time() - started < 5


async def test_a_script_tests_its_retries_without_servers() -> None:
    """The README's example: a 503, then an answer; retried once, on the fake clock."""
    calls: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        calls.append(request.url)
        return answer(503) if len(calls) == 1 else answer(200, {"pools": [], "total_entries": 0})

    fleet = token_fleet()
    clock = FakeClock()
    transport = MockTransport(handler)
    async with (
        clock.autojump(),
        airfleet.Engine(fleet, transport=transport, clock=clock) as engine,
    ):
        report = await engine.run(airfleet.plan_pools(fleet.deployments))
    assert report.results[0].ok
    assert report.results[0].attempts == 2
    assert clock.now() > 0  # the backoff happened, on the fake clock
    assert transport.sent[0].headers["Authorization"] == "Bearer ready-token-123"


async def test_a_rate_is_kept_on_the_fake_clock() -> None:
    """Twenty calls to one deployment at 4/s take five fake seconds, no real ones."""
    fleet = airfleet.Fleet(
        deployments=(
            airfleet.Deployment("d", "https://d.example.com", "t", max_per_second=4, api="v2"),
        ),
        auth={"t": airfleet.TokenAuth("t", airfleet.Secret("ready-token-123"))},
    )
    # One request a call: the POST alone, without the look at the DAG.
    calls = airfleet.plan_trigger(
        fleet.deployments, [f"dag_{i}" for i in range(20)], check_paused=False
    )
    clock = FakeClock()

    def handler(request: HttpRequest) -> HttpResponse:
        body = request.json or {}
        return answer(200, {"dag_run_id": body.get("dag_run_id"), "state": "queued"})

    async with (
        clock.autojump(),
        airfleet.Engine(fleet, transport=MockTransport(handler), clock=clock) as engine,
    ):
        report = await engine.run(calls)
    assert report.summary.ok == 20
    assert clock.now() == pytest.approx(19 * 1.03 / 4)
