"""Report renderers: the json contract, jsonl streaming, junit, markdown, csv, table."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from _reports import airflow3, assert_valid_junit, fleet_of, rendered, run_job
from airfleet.engine import RunReport
from airfleet.report import JsonlWriter, default_format, render
from airfleet.report._rows import summary_line
from airfleet.results import Collector, Outcome, Result, Summary

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
RESULT_KEYS = {
    "deployment",
    "operation",
    "target",
    "outcome",
    "status",
    "attempts",
    "latency_ms",
    "error",
    "data",
}


def summarise(operation: str, results: list[Result]) -> Summary:
    collector = Collector(operation, started_at=T0)
    collector.extend(results)
    return collector.summary(duration_s=1.5, token_fetches=1)


def trig(name: str, outcome: Outcome = Outcome.OK, error: str | None = None) -> Result:
    data = {"dag_run_id": "airfleet__x", "state": "queued", "logical_date": None}
    return Result(
        name,
        "trigger",
        "etl",
        outcome,
        200 if outcome is Outcome.OK else 404,
        1,
        12.5,
        error,
        data,
        1,
    )


def pools(name: str, slots: int = 128) -> Result:
    pool = {
        "name": "default_pool",
        "slots": slots,
        "occupied_slots": 1,
        "queued_slots": 0,
        "open_slots": -1 if slots == -1 else slots - 1,
    }
    return Result(
        name,
        "pools",
        "",
        Outcome.OK,
        200,
        1,
        3.0,
        None,
        {"pools": [pool, {**pool, "name": "etl"}]},
        1,
    )


def text(fmt: Any, results: list[Result], operation: str = "trigger") -> str:
    out = io.StringIO()
    render(fmt, summary=summarise(operation, results), results=results, out=out)
    return out.getvalue()


def test_json_follows_the_design_contract() -> None:
    """json: summary with the contract's keys, results with exactly the contract's keys."""
    report = json.loads(text("json", [trig("a"), trig("b", Outcome.FAILED, "HTTP 404: nope")]))
    assert set(report) == {"summary", "results"}
    assert {
        "operation",
        "total",
        "ok",
        "failed",
        "skipped",
        "started_at",
        "duration_s",
        "requests",
    } <= set(report["summary"])
    assert report["summary"]["total"] == 2
    assert report["summary"]["failed"] == 1
    assert all(set(r) == RESULT_KEYS for r in report["results"])
    assert report["results"][1]["error"] == "HTTP 404: nope"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(
    data=st.lists(st.dictionaries(st.text(), json_values, max_size=3), max_size=4),
    error=st.none() | st.text(),
)
@settings(max_examples=60)
def test_json_written_in_pieces_is_the_json_of_the_whole_report(
    data: list[dict[str, Any]], error: str | None
) -> None:
    """Any result data (newlines, quotes and unicode in keys and values included)."""
    results = [
        Result(f"d{i}", "api", "/x", Outcome.FAILED if error else Outcome.OK, 200, 1, 2.5, error, d)
        for i, d in enumerate(data)
    ]
    summary = summarise("api", results)
    whole = {"summary": summary.to_dict(), "results": [r.to_dict() for r in results]}
    out = rendered("json", RunReport(summary, tuple(results)))
    assert out == json.dumps(whole, indent=2, default=str) + "\n"


def test_jsonl_streams_results_then_summary() -> None:
    """jsonl: one result per line, the summary last."""
    out = io.StringIO()
    writer = JsonlWriter(out)
    writer.write_result(trig("a"))
    writer.write_summary(summarise("trigger", [trig("a")]))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert set(lines[0]) == RESULT_KEYS
    assert lines[-1]["summary"]["total"] == 1
    assert text("jsonl", [trig("a"), trig("b")]).count("\n") == 3


def test_junit_counts_and_failures() -> None:
    """junit: a testcase per result; failures carry the error; skipped marked."""
    results = [
        trig("a"),
        trig("b", Outcome.FAILED, "boom <&>"),
        trig("c", Outcome.SKIPPED, "hibernating"),
    ]
    root = assert_valid_junit(text("junit", results))
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    assert [c.get("classname") for c in cases] == [f"airfleet.trigger.{n}" for n in "abc"]
    failure = cases[1].find("failure")
    assert failure is not None
    assert failure.get("message") == "boom <&>"
    assert cases[2].find("skipped") is not None


def test_csv_has_one_row_per_pool_and_a_row_for_failures() -> None:
    """csv for pools: a row per pool with slot columns; unlimited slots spelled out."""
    failed = Result("c", "pools", "", Outcome.FAILED, 500, 1, 1.0, "HTTP 500: x", {}, 1)
    rows = list(
        csv.DictReader(io.StringIO(text("csv", [pools("a"), pools("b", -1), failed], "pools")))
    )
    assert len(rows) == 5
    assert {"deployment", "pool", "slots", "occupied", "queued", "open"} <= set(rows[0])
    assert rows[2]["slots"] == "unlimited"
    assert rows[4]["error"] == "HTTP 500: x"


def test_csv_dags_one_row_per_dag() -> None:
    """csv for dags: one row per DAG with paused and tags."""
    data = {
        "dags": [
            {"dag_id": "x", "is_paused": True, "tags": ["a", "b"]},
            {"dag_id": "y", "is_paused": False, "tags": []},
        ],
        "total_entries": 2,
    }
    result = Result("a", "dags", "", Outcome.OK, 200, 1, 1.0, None, data, 1)
    rows = list(csv.DictReader(io.StringIO(text("csv", [result], "dags"))))
    assert [(r["dag_id"], r["paused"], r["tags"]) for r in rows] == [
        ("x", "yes", "a, b"),
        ("y", "no", ""),
    ]


def test_csv_trigger_names_each_column_once() -> None:
    """csv for trigger: base columns once, then state, run time and note."""
    reader = csv.reader(io.StringIO(text("csv", [trig("a"), trig("b")], "trigger")))
    header = next(reader)
    assert len(header) == len(set(header)), header
    assert {"outcome", "attempts", "state", "note"} <= set(header)
    assert all(len(row) == len(header) for row in reader)


def test_markdown_escapes_pipes() -> None:
    """markdown: heading, summary table, and '|' in cells escaped."""
    md = text("markdown", [trig("a", Outcome.FAILED, "bad | worse")])
    assert md.startswith("## airfleet trigger: 1 failed")
    assert "bad \\| worse" in md
    assert "| total | ok | failed |" in md


def test_table_shows_summary_errors_and_run_id() -> None:
    """table: failed rows with errors, the run id caption, the summary line last."""
    results = [trig("a"), trig("b", Outcome.FAILED, "HTTP 404: Dag not found")]
    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
    summary = summarise("trigger", results)
    render("table", summary=summary, results=results, out=io.StringIO(), console=console)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "HTTP 404: Dag not found" in out
    assert "run id: airfleet__x" in out
    assert out.strip().splitlines()[-1] == summary_line(summary)


def test_table_folds_ok_rows_past_200() -> None:
    """Over 200 results only failures are listed; a line counts the folded ok calls."""
    results = [trig(f"d{i:03d}") for i in range(247)] + [
        trig(f"f{i}", Outcome.FAILED, "x") for i in range(3)
    ]
    console = Console(file=io.StringIO(), width=120, color_system=None, force_terminal=False)
    render(
        "table",
        summary=summarise("trigger", results),
        results=results,
        out=io.StringIO(),
        console=console,
    )
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "247 ok calls on 247 deployments not listed" in out
    assert "d000" not in out
    assert "f2" in out


def test_default_format_follows_the_terminal() -> None:
    """A table on a terminal, JSON in pipes."""
    assert default_format(is_terminal=True) == "table"
    assert default_format(is_terminal=False) == "json"


_results = st.lists(
    st.builds(
        Result,
        deployment=st.text(min_size=1, max_size=10),
        operation=st.just("trigger"),
        target=st.text(max_size=10),
        outcome=st.sampled_from(list(Outcome)),
        status=st.one_of(st.none(), st.integers(100, 599)),
        attempts=st.integers(0, 5),
        latency_ms=st.floats(0, 1e5),
        error=st.one_of(st.none(), st.text(max_size=30)),
    ),
    max_size=20,
)


@settings(max_examples=50, deadline=None)
@given(_results)
def test_renderers_never_raise_and_count_right(results: list[Result]) -> None:
    """For any results: json, csv and junit render, with one entry per result."""
    assert len(json.loads(text("json", results))["results"]) == len(results)
    assert len(list(csv.DictReader(io.StringIO(text("csv", results, "other"))))) == len(results)
    # Error texts may hold characters XML 1.0 cannot carry; the document must still be valid.
    root = assert_valid_junit(text("junit", results))
    assert len(root.findall(".//testcase")) == len(results)


def test_summary_breaks_down_by_status_and_deployment() -> None:
    """The summary counts outcomes per deployment and results per status."""
    summary = summarise("trigger", [trig("a"), trig("a", Outcome.FAILED, "x"), trig("b")])
    assert summary.by_deployment == {"a": {"ok": 1, "failed": 1}, "b": {"ok": 1}}
    assert summary.by_status == {"200": 2, "404": 1}
    assert summary.failed_deployments == ("a",)
    assert summary.exit_code == 1


@pytest.mark.anyio
async def test_every_job_report_format_names_the_step(tmp_path: Path) -> None:
    """A job's report carries each call's step id in every format: a step column
    (table, Markdown, CSV) and a "step" field (JSON, JSONL)."""
    job = "version: 1\nname: n\nsteps:\n  - health: {}\n  - trigger: {id: load, dags: [etl]}\n"
    report = await run_job(tmp_path, job, fleet_of(["prod-eu", "prod-us"]), airflow3())
    want = [(r.deployment, r.operation, r.step) for r in report.results]
    assert sorted(str(s) for _, _, s in want) == ["load", "load", "step1", "step1"]

    document = json.loads(rendered("json", report))
    assert [(r["deployment"], r["operation"], r["step"]) for r in document["results"]] == want
    lines = [json.loads(line) for line in rendered("jsonl", report).splitlines()]
    assert [(r["deployment"], r["operation"], r["step"]) for r in lines[:-1]] == want
    assert set(lines[0]) > RESULT_KEYS

    rows = list(csv.DictReader(io.StringIO(rendered("csv", report))))
    assert [(r["deployment"], r["operation"], r["step"]) for r in rows] == want

    md = rendered("markdown", report).splitlines()
    assert next(line for line in md if "deployment" in line).startswith("| step | deployment |")
    assert sum(1 for line in md if line.startswith("| load | prod-")) == 2

    table = rendered("table", report, width=120).splitlines()
    assert next(line for line in table if "deployment" in line).startswith("step   deployment")
    assert sum(1 for line in table if line.startswith("step1  prod-")) == 2
