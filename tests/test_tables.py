"""Terminal tables at 80, 120 and 200 columns: names whole, errors whole and in their
own column, no column squeezed unreadable, one block per result when nothing else fits."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len
from rich.text import Text

from _cli import run_airfleet
from _reports import Failure, airflow3, fleet_of, host, rendered, run_job, run_plan
from airfleet.engine import RunReport
from airfleet.jobs.journal import Journal
from airfleet.operations import plan_dags, plan_health, plan_pause, plan_pools, plan_trigger
from airfleet.plan import Plan
from airfleet.report._layout import GAP, TEXT_MIN, Column, widths
from airfleet.results import Collector, Outcome, Result

pytestmark = pytest.mark.anyio

WIDTHS = (80, 120, 200)
LONG_DAG = "warehouse_nightly_full_reload_of_every_dimension_and_fact_table"
# Wide CJK characters (2 cells each), a combining accent (0 cells), an emoji.
TRICKY = [
    "prod-eu-west-1-analytics-warehouse",
    "東京-本番-クラスタ",
    "cafe\u0301-prod",
    "🚀-launchpad",
    "prod.eu.1",
    "d5",
]
SHORT = ["prod-eu-01", "prod-eu-02", "prod-us-01", "prod-us-02"]
FAILING: dict[str, Failure] = {host(1): "html500", host(2): "reset", host(3): "missing"}
JOB = """\
version: 1
name: nightly
steps:
  - health: {}
  - trigger: {id: load, dags: [refresh_dims], continue_on_failure: true}
  - pause: {dags: [refresh_dims]}
"""
# The right-aligned columns: their header does not start where the column does.
RIGHT = frozenset({"tries", "ms", "run s", "status", "slots", "occupied", "queued", "open"})
COUNTS = frozenset({"ok", "failed", "skipped", "missing", "resumes"})


def flagged(report: RunReport) -> RunReport:
    """The trigger results with the notes the trigger conversation adds."""
    flags = [{"dag_paused": True}, {"already_existed": True}]
    results = list(report.results)
    oks = [i for i, r in enumerate(results) if r.ok]
    for i, extra in zip(oks, flags, strict=False):
        results[i] = dataclasses.replace(results[i], data={**results[i].data, **extra})
    return RunReport(report.summary, tuple(results))


def audit_report(names: Sequence[str]) -> RunReport:
    """An audit as the audit reports it: drift with a failed fix, in sync, unreadable."""
    drift = {
        "drift": [{"pool": "etl", "field": "slots", "want": 64, "have": 16}],
        "applied": [{"pool": "etl", "action": "update", "outcome": "failed", "error": "HTTP 422"}],
    }
    results = [
        Result(names[0], "audit_pools", "", Outcome.FAILED, 200, 1, 5.0, "1 fix failed", drift),
        Result(names[1], "audit_pools", "", Outcome.OK, 200, 1, 5.0, None, {"drift": []}),
        Result(
            names[2],
            "audit_pools",
            "",
            Outcome.FAILED,
            500,
            1,
            5.0,
            "HTTP 500: the metadata database went away while the pools were read",
        ),
    ]
    collector = Collector("audit_pools")
    collector.extend(results)
    return RunReport(collector.summary(duration_s=0.1), tuple(results))


async def report_of(operation: str, names: Sequence[str], tmp_path: Path) -> RunReport:
    """A real run of ``operation`` over ``names``, the second to fourth failing."""
    fleet = fleet_of(names)
    transport = airflow3(FAILING)
    if operation == "trigger":
        plan = plan_trigger(
            fleet.deployments, ["refresh_dims", LONG_DAG], run_id="airfleet__t1__cafe01"
        )
        return flagged(await run_plan(fleet, plan, transport))
    if operation == "dags":
        return await run_plan(fleet, plan_dags(fleet.deployments), airflow3(FAILING, dags=3))
    if operation == "pools":
        return await run_plan(fleet, plan_pools(fleet.deployments), transport)
    if operation == "health":
        return await run_plan(fleet, plan_health(fleet.deployments), transport)
    if operation == "audit_pools":
        return audit_report(names)
    assert operation == "job"
    return await run_job(tmp_path, JOB, fleet, transport)


OPERATIONS = ("trigger", "dags", "pools", "health", "audit_pools", "job")


def is_table(out: str) -> bool:
    return any(set(line.strip()) == {"─"} for line in out.splitlines())


def columns_of(out: str, right: frozenset[str] = RIGHT) -> dict[str, int]:
    """Each column's width, read from the header line, where it can be: a left-aligned
    column followed by another or last (a right-aligned header does not start its column)."""
    lines = out.splitlines()
    rule = next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"})
    header, total = lines[rule - 1], cell_len(lines[rule])
    spans = [(m.group(), m.start()) for m in re.finditer(r"\S+(?: \S+)*", header)]
    found = {}
    for n, (name, start) in enumerate(spans):
        if name in right:
            continue
        if n + 1 == len(spans):
            found[name] = total - start
        elif spans[n + 1][0] not in right:
            found[name] = spans[n + 1][1] - start - GAP
    return found


def words(text: str) -> list[str]:
    """The words a wrapping column keeps whole (longer ones may be folded)."""
    return [w for w in text.split() if cell_len(w) <= TEXT_MIN]


@pytest.mark.parametrize("names", [TRICKY, SHORT], ids=["tricky", "short"])
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_every_table_keeps_names_and_errors_whole_within_the_width(
    operation: str, names: list[str], tmp_path: Path
) -> None:
    """At 80, 120 and 200 columns: every line fits, nothing is cut short, every
    deployment name appears whole and every failed call's reason is there."""
    report = await report_of(operation, names, tmp_path)
    assert any(not r.ok for r in report.results)
    for width in WIDTHS:
        out = rendered("table", report, width=width)
        assert all(cell_len(line) <= width for line in out.splitlines()), out
        assert "…" not in out
        for name in {r.deployment for r in report.results}:
            assert name in out, (width, name, out)
        for result in report.results:
            for word in words(result.error or ""):
                assert word in out, (width, word, out)


@pytest.mark.parametrize("names", [TRICKY, SHORT], ids=["tricky", "short"])
@pytest.mark.parametrize("operation", OPERATIONS)
async def test_no_column_is_squeezed_below_a_readable_width(
    operation: str, names: list[str], tmp_path: Path
) -> None:
    """Whenever a table is drawn, each column is as wide as it is with unlimited
    room, or, for text that wraps, at least 16 cells."""
    report = await report_of(operation, names, tmp_path)
    natural = columns_of(rendered("table", report, width=1000))
    for width in WIDTHS:
        out = rendered("table", report, width=width)
        if not is_table(out):
            continue
        for name, cells in columns_of(out).items():
            assert cells >= min(natural[name], TEXT_MIN), (width, name, out)
            if name in ("deployment", "step", "outcome", "state"):
                assert cells == natural[name], (width, name, out)


@pytest.mark.parametrize("operation", ["dags", "pools", "health"])
async def test_a_failed_row_has_its_deployment_and_its_error_in_its_own_column(
    operation: str, tmp_path: Path
) -> None:
    """A listing that could not be read: the deployment name starts the row, the
    data columns stay blank, and the error starts in the error column."""
    report = await report_of(operation, SHORT, tmp_path)
    failed = [r for r in report.results if not r.ok]
    assert len(failed) >= 2
    for width in (120, 200):
        out = rendered("table", report, width=width)
        lines = out.splitlines()
        header = lines[next(i for i, line in enumerate(lines) if "─" in line) - 1]
        error_at = header.index("error")
        for result in failed:
            row = next(line for line in lines if line.startswith(result.deployment + " "))
            assert not row[len(result.deployment) : error_at].strip(), row
            assert row[error_at:].startswith((result.error or "")[:8]), row


async def test_trigger_notes_flag_what_the_run_state_does_not_say(tmp_path: Path) -> None:
    """A paused DAG, a run that already existed, an unknown effect: each is said on
    its row, and a narrow table puts the error under the note."""
    report = await report_of("trigger", SHORT, tmp_path)
    for width in (80, 120, 200):
        out = rendered("table", report, width=width)
        assert is_table(out), out
        for note in ("DAG paused", "already existed", "effect unknown"):
            assert note in out, (width, note)
    # Room to spare goes to names before sentences: the DAG id stays whole.
    assert LONG_DAG in rendered("table", report, width=200)
    narrow = columns_of(rendered("table", report, width=80))
    assert "error" not in narrow
    assert narrow["note"] >= TEXT_MIN


async def test_too_many_columns_for_the_terminal_become_one_block_per_result(
    tmp_path: Path,
) -> None:
    """Long names at 80 columns: no table, but each result's name on a line of its
    own, then its fields by name; the same report at 200 columns is a table."""
    report = await report_of("pools", TRICKY, tmp_path)
    out = rendered("table", report, width=80)
    assert not is_table(out)
    lines = out.splitlines()
    for result in report.results:
        assert result.deployment in lines
    failed = sum(1 for r in report.results if not r.ok)
    assert sum(1 for line in lines if line.startswith("  error ")) == failed
    assert sum(1 for line in lines if line.startswith("  pool ")) == len(report.results) - failed
    assert is_table(rendered("table", report, width=200))


def _journal(state: Path, started: datetime, *, counts: tuple[int, int]) -> None:
    """One run of job ``hist`` as the job runner journals it."""
    header = {
        "job": "hist",
        "window": "daily",
        "window_start": started.replace(hour=0).isoformat(),
        "started_at": started.isoformat(),
        "planned": sum(counts),
    }
    journal = Journal(state / "hist" / f"{started:%Y%m%dT%H%M%S}-1.jsonl", header, resume=False)
    ok, failed = counts
    for n in range(ok + failed):
        outcome = Outcome.OK if n < ok else Outcome.FAILED
        journal.record(1, Result(f"d{n}", "health", "", outcome))
    journal.finish({"at": started.isoformat(), "ok": ok, "failed": failed, "interrupted": True})
    journal.close()


@pytest.mark.parametrize("width", WIDTHS)
def test_history_wraps_a_time_below_its_date_never_cuts_it(tmp_path: Path, width: int) -> None:
    """`airfleet history` at 80 columns: started and window are at least a date
    wide (the time wraps below it), and the status is whole."""
    state = tmp_path / "state"
    _journal(state, datetime(2026, 11, 24, 2, 0, 5, tzinfo=UTC), counts=(10, 2))
    _journal(state, datetime(2026, 12, 24, 2, 0, 7, tzinfo=UTC), counts=(12, 0))
    out = run_airfleet(
        "history",
        "hist",
        "--state-dir",
        str(state),
        "--report",
        "table",
        env={"COLUMNS": str(width)},
    )
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "job hist: 2 run(s)" in text
    assert "…" not in text
    assert all(cell_len(line) <= width for line in text.splitlines())
    for stamp in ("2026-11-24", "02:00:05", "2026-12-24", "02:00:07", "interrupted"):
        assert stamp in text, (width, stamp, text)
    cells = columns_of(text, COUNTS)
    assert cells["started"] >= len("2026-11-24")
    assert cells["window"] >= len("2026-11-24")
    if width >= 120:
        assert "2026-12-24 02:00:07" in text
    assert (
        json.loads(
            run_airfleet("history", "hist", "--state-dir", str(state), "--report", "json").stdout
        )["runs"][0]["failed"]
        == 2
    )


_columns = st.lists(
    st.builds(
        Column,
        name=st.text(min_size=1, max_size=8),
        kind=st.sampled_from(["key", "short", "text"]),
        min_width=st.integers(1, 20),
        prose=st.booleans(),
    ),
    min_size=1,
    max_size=8,
)


@given(_columns, st.data(), st.integers(10, 240))
def test_widths_fit_or_say_they_cannot(
    columns: list[Column], data: st.DataObject, width: int
) -> None:
    """The fitter's promise: keys and short values whole, text at least its minimum
    (or all it needs), never more than it needs, and the gaps within the width."""
    rows = data.draw(
        st.lists(
            st.lists(st.text(max_size=30), min_size=len(columns), max_size=len(columns)),
            max_size=5,
        )
    )
    cells = [[Text(cell) for cell in row] for row in rows]
    natural = [
        max(cell_len(part) for text in [c.name, *(r[i] for r in rows)] for part in text.split("\n"))
        for i, c in enumerate(columns)
    ]
    fitted = widths(columns, cells, width=width)
    least = [
        min(n, c.min_width) if c.kind == "text" else n
        for c, n in zip(columns, natural, strict=True)
    ]
    if fitted is None:
        assert sum(least) + GAP * (len(columns) - 1) > width
        return
    assert sum(fitted) + GAP * (len(columns) - 1) <= width
    for c, got, need, low in zip(columns, fitted, natural, least, strict=True):
        assert low <= got <= need
        if c.kind != "text":
            assert got == need


async def test_an_unpause_in_a_trigger_report_says_what_it_was() -> None:
    """`trigger --unpause` reports each unpause call beside the triggers: its row's
    note says "unpaused", so it is not read as a second trigger."""
    fleet = fleet_of(SHORT[:2])
    unpausing = plan_pause(fleet.deployments, ["etl"], paused=False)
    triggering = plan_trigger(fleet.deployments, ["etl"], run_id="airfleet__u1")
    plan = Plan("trigger", unpausing.calls + triggering.calls, mutating=True)
    report = await run_plan(fleet, plan, airflow3())
    assert sorted(r.operation for r in report.results) == ["trigger"] * 2 + ["unpause"] * 2
    out = rendered("table", report, width=80)
    assert sum(1 for line in out.splitlines() if line.rstrip().endswith("  unpaused")) == 2
