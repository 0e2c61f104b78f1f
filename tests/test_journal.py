"""The journal's group commit: records leave the event loop, results are reported once on disk.

Every journal here writes and fsyncs a real file; the subclasses only wait
(or fail) around the real fsync, so what the tests see on disk is what a
crash would leave.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airfleet.engine import Engine
from airfleet.errors import UsageError
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Fleet
from airfleet.jobs.journal import Journal, call_key, read_run
from airfleet.jobs.runner import JobRunner, journal_header, plan_job, run_ids_for
from airfleet.jobs.spec import parse_job
from airfleet.results import Outcome, Result
from airfleet.sim import Faults, Simulator

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.anyio


def _result(target: str, outcome: Outcome = Outcome.OK) -> Result:
    return Result("dep-0000", "trigger", target, outcome, status=200, data={"dag_run_id": "r"})


def _on_disk(path: Path, size: int = -1) -> set[tuple[int, str]]:
    """(step, key) of the call records in the first ``size`` bytes of the file (-1: all)."""
    with open(path, "rb") as file:
        lines = file.read(size).decode().splitlines()
    return {
        (record["step"], record["key"])
        for record in map(json.loads, lines)
        if record["type"] == "call"
    }


class GatedJournal(Journal):
    """Each fsync waits for ``gate`` first, then makes the real fsync.

    ``durable``: how much of the file the last fsync covered (a batch is
    written whole before its fsync, and only one is in flight at a time).
    """

    def __init__(self, path: Path, header: dict[str, Any], *, resume: bool) -> None:
        self.gate = threading.Event()
        self.gate.set()  # the header's fsync goes through
        self.syncing = threading.Event()
        self.fsyncs = 0
        self.durable = 0
        super().__init__(path, header, resume=resume)

    def _fsync(self, fd: int) -> None:
        self.syncing.set()
        assert self.gate.wait(30), "the test never opened the gate"
        super()._fsync(fd)
        self.durable = os.fstat(fd).st_size
        self.fsyncs += 1


class SlowJournal(GatedJournal):
    """Each fsync takes a few milliseconds more, as on a busy disk."""

    def _fsync(self, fd: int) -> None:
        time.sleep(0.003)
        super()._fsync(fd)


async def test_a_result_is_reported_only_after_its_batch_is_fsyncd(tmp_path: Path) -> None:
    """While a batch's fsync is held, its result is written but not reported, and the
    records queued meanwhile go in the next batch: one fsync for all of them."""
    path = tmp_path / "run.jsonl"
    journal = GatedJournal(path, {"started_at": "x", "planned": 100}, resume=False)
    results = [_result(f"dag_{i}") for i in range(100)]
    reported: list[Result] = []

    def on_durable(result: Result) -> None:
        assert (1, call_key(result)) in _on_disk(path, journal.durable)
        reported.append(result)

    journal.gate.clear()
    journal.syncing.clear()
    async with journal.group_commit(1, on_durable) as record:
        record(results[0])
        # The first batch is in its fsync (not waiting forever if it never gets there).
        assert await anyio.to_thread.run_sync(journal.syncing.wait, 30, abandon_on_cancel=True)
        assert (1, call_key(results[0])) in _on_disk(path)  # written
        for result in results[1:]:
            record(result)  # returns at once: the loop is not held by the fsync
        await anyio.sleep(0.05)  # time for a wrong report to happen
        assert reported == []
        journal.gate.set()
    assert reported == results  # each once, in order, all before the block ends
    assert journal.fsyncs == 1 + 2  # the header's, then the first batch, then the other 99
    journal.close()


async def test_group_commit_writes_the_format_readers_know(tmp_path: Path) -> None:
    """Batches larger than one fsync takes: every record a line, meaning what
    json.dumps wrote before, the file 0600; resume and history read it back as before."""
    path = tmp_path / "run.jsonl"
    journal = Journal(path, {"started_at": "x", "planned": 1_500}, resume=False)
    results = [
        _result(f"dag_{i}", Outcome.FAILED if i % 7 == 0 else Outcome.OK) for i in range(1_500)
    ]
    reported: list[Result] = []
    async with journal.group_commit(2, reported.append) as record:
        for result in results:
            record(result)
    journal.finish({"interrupted": False})
    journal.close()
    assert reported == results
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[0] == {"type": "run", "started_at": "x", "planned": 1_500}
    assert lines[1:-1] == [
        {"type": "call", "step": 2, "key": call_key(r), "result": r.to_dict()} for r in results
    ]
    assert lines[-1] == {"type": "end", "interrupted": False}
    assert os.stat(path).st_mode & 0o777 == 0o600
    run = read_run(path)
    assert run is not None
    assert run.finished
    assert run.counts() == {"ok": 1_285, "failed": 215, "skipped": 0, "missing": 0}


# What a result's data can hold: JSON from an answer, plus what airfleet adds
# (datetimes) and what orjson alone would refuse (big integers, lone surrogates).
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(["\ud800", "caf\u00e9 \U0001f680", "\u2028"])
    | st.datetimes(timezones=st.none() | st.timezones())
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(data=st.dictionaries(st.text(max_size=8), _DATA, max_size=4))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_a_record_reads_back_as_json_dumps_default_str_would_have_written_it(
    tmp_path: Path, data: dict[str, Any]
) -> None:
    """Whatever a result carries, the journal keeps the meaning the old encoder gave it."""
    path = tmp_path / "run.jsonl"
    path.unlink(missing_ok=True)
    result = Result("dep", "api", "t", Outcome.OK, status=200, data=data)
    journal = Journal(path, {"started_at": "x", "planned": 1}, resume=False)
    journal.record(1, result)
    journal.close()
    run = read_run(path)
    assert run is not None
    expected = json.loads(json.dumps(result.to_dict(), default=str))
    assert run.calls[(1, call_key(result))] == expected


async def test_an_error_comes_out_as_itself_not_in_a_group(tmp_path: Path) -> None:
    """The block's own error, and the writer's (a full disk), reach the caller as they
    are (the CLI maps AirfleetError to its exit code); nothing unsynced is reported."""
    journal = Journal(tmp_path / "a.jsonl", {"planned": 1}, resume=False)

    async def block_fails() -> None:
        async with journal.group_commit(1, lambda _: None) as record:
            record(_result("a"))
            raise UsageError("from the block")

    with pytest.raises(UsageError, match="from the block"):
        await block_fails()
    journal.close()

    class FullDisk(Journal):
        full = False

        def _fsync(self, fd: int) -> None:
            if self.full:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            super()._fsync(fd)

    disk = FullDisk(tmp_path / "b.jsonl", {"planned": 1}, resume=False)
    disk.full = True
    reported: list[Result] = []

    async def writer_fails() -> None:
        async with disk.group_commit(1, reported.append) as record:
            record(_result("a"))
            await anyio.sleep_forever()  # the writer's error cancels the block

    with pytest.raises(OSError, match=os.strerror(errno.ENOSPC)):
        await writer_fails()
    assert reported == []
    disk.close()


# -- a whole job, in-process, against the simulator ---------------------------------


@pytest.fixture
async def served() -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator(deployments=6, api="mixed", seed=2, faults=Faults(latency_ms=1))
    async with sim.running(host="127.0.0.1", port=0) as server:
        yield sim, server.url


def _fleet(sim: Simulator, url: str) -> Fleet:
    text = sim.fleet_yaml(url, extra_defaults={"max_per_second": None})
    return parse_fleet(text, source="fleet.yaml", env=sim.env())


async def test_a_job_reports_each_result_only_once_it_is_on_disk(
    served: tuple[Simulator, str], tmp_path: Path
) -> None:
    """JobRunner over a slow disk: every result reaches on_result after its fsync, in
    journal order; a failed step's failures all count, so the next step is skipped."""
    sim, url = served
    fleet = _fleet(sim, url)
    job = parse_job(
        "version: 1\nname: slow-disk\nsteps:\n"
        "  - trigger: {id: first, dags: [refresh_dims, nightly_load]}\n"
        "  - trigger: {id: missing, dags: [no_such_dag]}\n"
        "  - unpause: {dags: [hello]}\n",
        base=tmp_path,
    )
    now = datetime.now(UTC)
    run_ids = run_ids_for(job, now=now)
    steps = plan_job(job, fleet, run_ids)
    header = journal_header(
        job, fleet, tmp_path / "job.yaml", window=None, now=now, run_ids=run_ids, steps=steps
    )
    path = tmp_path / "run.jsonl"
    journal = SlowJournal(path, header, resume=False)
    index = {planned.step.id: planned.step.index for planned in steps}
    reported: list[Result] = []

    def on_result(result: Result) -> None:
        assert result.step is not None
        assert (index[result.step], call_key(result)) in _on_disk(path, journal.durable)
        reported.append(result)

    runner = JobRunner(steps, journal)
    async with Engine(fleet) as engine:
        report = await runner(engine, anyio.Event(), on_result)
    journal.finish({"interrupted": False})
    journal.close()

    assert [r.outcome for r in reported] == [r.outcome for r in report.results]
    summary = report.summary
    assert (summary.ok, summary.failed, summary.skipped) == (12, 6, 6)
    assert all("not run: step 2" in (r.error or "") for r in reported[-6:])
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    calls = [r for r in records if r["type"] == "call"]
    assert [(c["step"], c["key"]) for c in calls] == [
        (index[str(r.step)], call_key(r)) for r in reported
    ]
    # Group commit: the skipped step's six records, queued at once, took one fsync.
    assert journal.fsyncs <= 1 + len(calls) - 5


async def test_without_a_journal_results_are_reported_as_they_come(
    served: tuple[Simulator, str], tmp_path: Path
) -> None:
    """A job run by a host (Airflow) has no journal: each result is reported at once."""
    sim, url = served
    fleet = _fleet(sim, url)
    job = parse_job("version: 1\nname: hosted\nsteps:\n  - health: {}\n", base=tmp_path)
    steps = plan_job(job, fleet, {})
    reported: list[Result] = []
    async with Engine(fleet) as engine:
        report = await JobRunner(steps, None)(engine, anyio.Event(), reported.append)
    assert [r.deployment for r in reported] == [r.deployment for r in report.results]
    assert report.summary.ok == 6


def test_the_journal_benchmark_runs(tmp_path: Path) -> None:
    """benchmarks/journal.py, tiny: it checks its own counts and order, so it cannot rot."""
    out = tmp_path / "journal.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "journal.py"),
            *("--records", "300", "--old-records", "20", "--repeat", "1"),
            *("--job-deployments", "0", "--dir", str(tmp_path), "--json", str(out)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    data = json.loads(out.read_text())
    assert {s["path"] for s in data["journal"]} == {"none", "old", "new"}
    assert "| new | 300 |" in done.stdout
