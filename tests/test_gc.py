"""The collector's pacing during runs: raised while any run is in flight, then put back."""

from __future__ import annotations

import gc
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from rich.console import Console

from _simthread import sim_in_thread
from airfleet._gc import DEFAULT_THRESHOLD, first_threshold_at_least
from airfleet.cli._context import CliContext
from airfleet.engine import Engine
from airfleet.events import CallFinished, Event
from airfleet.fleet_file import load_fleet
from airfleet.inventory import Deployment, Fleet, FleetLimits, Secret, TokenAuth
from airfleet.logs import log_event
from airfleet.operations import plan_health, plan_pools
from airfleet.results import Result
from airfleet.sim import Simulator
from airfleet.testing import MockTransport, answer
from airfleet.transport import HttpRequest, HttpResponse


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[tuple[int, int, int]]:
    """Every test starts from CPython's defaults and leaves the process as it found it."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


def test_raised_inside_and_restored_after() -> None:
    with first_threshold_at_least(5000):
        assert gc.get_threshold() == (5000, 10, 10)
    assert gc.get_threshold() == (700, 10, 10)


def test_restored_after_an_exception() -> None:
    with pytest.raises(RuntimeError), first_threshold_at_least(5000):
        raise RuntimeError("boom")
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_blocks_restore_when_the_last_one_ends() -> None:
    first = first_threshold_at_least(5000)
    second = first_threshold_at_least(9000)
    first.__enter__()
    second.__enter__()
    # The first block in sets the pace; a later one does not move it.
    assert gc.get_threshold()[0] == 5000
    first.__exit__(None, None, None)
    assert gc.get_threshold()[0] == 5000
    second.__exit__(None, None, None)
    assert gc.get_threshold() == (700, 10, 10)


def test_a_setting_made_during_the_block_is_kept() -> None:
    with first_threshold_at_least(5000):
        gc.set_threshold(123, 4, 5)
    assert gc.get_threshold() == (123, 4, 5)


@pytest.mark.parametrize("before", [(0, 10, 10), (50_000, 10, 10)])
def test_disabled_or_rarer_collection_is_left_alone(before: tuple[int, int, int]) -> None:
    gc.set_threshold(*before)
    with first_threshold_at_least(5000):
        assert gc.get_threshold() == before
    assert gc.get_threshold() == before


def test_none_leaves_the_collector_alone() -> None:
    with first_threshold_at_least(None):
        assert gc.get_threshold() == (700, 10, 10)


def small_fleet(n: int) -> Fleet:
    deployments = tuple(
        Deployment(f"d{i}", f"http://d{i}.test", "api", api="v2", max_per_second=None)
        for i in range(n)
    )
    return Fleet(deployments, {"api": TokenAuth("api", Secret("tok-0123456789"))}, FleetLimits())


def pools(_: HttpRequest) -> HttpResponse:
    return answer(200, {"pools": [], "total_entries": 0})


def threshold_seen_by(seen: list[int]) -> Any:
    def on_result(_: Result) -> None:
        seen.append(gc.get_threshold()[0])

    return on_result


@pytest.mark.anyio
async def test_engine_paces_the_collector_only_while_a_run_is_in_flight() -> None:
    seen: list[int] = []
    async with Engine(
        small_fleet(5), transport=MockTransport(pools), gc_threshold=DEFAULT_THRESHOLD
    ) as engine:
        report = await engine.run(
            plan_pools(engine.fleet.deployments), on_result=threshold_seen_by(seen)
        )
        assert gc.get_threshold() == (700, 10, 10)
    assert report.summary.ok == 5
    assert seen == [DEFAULT_THRESHOLD] * 5


@pytest.mark.anyio
async def test_the_library_leaves_the_collector_alone_by_default() -> None:
    """Only a process owner that asks (the CLI does) gets the collector paced."""
    seen: list[int] = []
    async with Engine(small_fleet(3), transport=MockTransport(pools)) as engine:
        await engine.run(plan_pools(engine.fleet.deployments), on_result=threshold_seen_by(seen))
    assert seen == [700] * 3


class HeldTransport(MockTransport):
    """Answers only once ``release`` is set."""

    def __init__(self, release: anyio.Event) -> None:
        super().__init__(pools)
        self.release = release

    async def send(self, request: HttpRequest) -> HttpResponse:
        await self.release.wait()
        return await super().send(request)


@pytest.mark.anyio
async def test_a_run_ending_under_another_leaves_the_pace_to_the_last() -> None:
    """One engine's run ending while another's is in flight must not put 700 back under it."""
    seen: list[int] = []
    quick_done = anyio.Event()
    async with (
        Engine(
            small_fleet(2), transport=MockTransport(pools), gc_threshold=DEFAULT_THRESHOLD
        ) as quick,
        Engine(
            small_fleet(2), transport=HeldTransport(quick_done), gc_threshold=DEFAULT_THRESHOLD
        ) as held,
    ):

        async def held_run() -> None:
            await held.run(plan_pools(held.fleet.deployments), on_result=threshold_seen_by(seen))

        async with anyio.create_task_group() as group:
            group.start_soon(held_run)
            await anyio.sleep(0.01)  # the held run is in flight, waiting for answers
            await quick.run(plan_pools(quick.fleet.deployments))
            quick_done.set()
    assert seen == [DEFAULT_THRESHOLD] * 2
    assert gc.get_threshold() == (700, 10, 10)


def test_the_cli_paces_the_collector_while_it_loads_a_fleet_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI, which owns its process, paces the collector while it loads a fleet and runs."""
    at_load: list[int] = []
    at_call: list[int] = []

    def loading(path: str) -> Fleet:
        at_load.append(gc.get_threshold()[0])
        return load_fleet(path)

    def listening(event: Event) -> None:
        if isinstance(event, CallFinished):
            at_call.append(gc.get_threshold()[0])
        log_event(event)

    # Seen from inside what the CLI calls: its fleet loader and its listener.
    monkeypatch.setattr("airfleet.cli._context.load_fleet", loading)
    monkeypatch.setattr("airfleet.logs.log_event", listening)
    with sim_in_thread(Simulator(deployments=3, api="v2")) as sim:
        for name, value in sim.sim.env().items():
            monkeypatch.setenv(name, value)
        config = sim.write_fleet(tmp_path / "fleet.yaml", extra_defaults={"max_per_second": None})
        quiet = Console(file=io.StringIO())
        obj = CliContext(str(config), stdout=quiet, stderr=quiet)
        fleet = obj.fleet()
        assert gc.get_threshold() == (700, 10, 10)
        output = tmp_path / "health.json"
        code = obj.execute(
            fleet, plan_health(fleet.deployments), report_format="json", output=str(output)
        )
        seen = sim.stats()
    assert code == 0
    assert json.loads(output.read_text(encoding="utf-8"))["summary"]["ok"] == 3
    assert set(seen["requests_by_deployment"]) == {d.name for d in fleet.deployments}
    assert at_load == [DEFAULT_THRESHOLD]
    assert at_call == [DEFAULT_THRESHOLD] * 3
    assert gc.get_threshold() == (700, 10, 10)
