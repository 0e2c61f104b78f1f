"""Results as real runs make them, for report tests: the engine and the job runner
over a scripted Airflow 3 transport, and the JUnit schema every JUnit report is checked against.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
from lxml import etree
from rich.console import Console

from airfleet.engine import Engine, RunReport
from airfleet.errors import ConnectError
from airfleet.inventory import Deployment, Fleet, Secret, TokenAuth
from airfleet.jobs.journal import Journal
from airfleet.jobs.runner import JobRunner, plan_job, run_ids_for
from airfleet.jobs.spec import load_job
from airfleet.plan import Plan
from airfleet.report import ReportFormat, render
from airfleet.testing import FakeClock, MockTransport, answer
from airfleet.transport import HttpRequest, HttpResponse

JUNIT_XSD = Path(__file__).parent / "fixtures" / "junit" / "JUnit.xsd"
_SCHEMA = etree.XMLSchema(etree.parse(str(JUNIT_XSD)))

Failure = Literal["html500", "reset", "missing"]
HEALTHY = {"status": "healthy"}
HEALTH = {
    "metadatabase": HEALTHY,
    "scheduler": {**HEALTHY, "latest_scheduler_heartbeat": "2026-11-24T12:00:00+00:00"},
    "triggerer": HEALTHY,
    "dag_processor": HEALTHY,
}


def assert_valid_junit(text: str) -> etree._Element:
    """Parse a JUnit report and check it against the Ant JUnit XSD; its root."""
    root = etree.fromstring(text.encode("utf-8"))
    if not _SCHEMA.validate(root):
        raise AssertionError(f"JUnit report does not follow {JUNIT_XSD.name}: {_SCHEMA.error_log}")
    return root


def host(index: int) -> str:
    return f"d{index}.test"


def fleet_of(names: Sequence[str], *, tags: Mapping[str, Sequence[str]] | None = None) -> Fleet:
    """Airflow 3 deployments called ``names``, at d0.test, d1.test, ..., with no retries."""
    deployments = tuple(
        Deployment(
            name,
            f"http://{host(i)}",
            "t",
            tags=frozenset((tags or {}).get(name, ())),
            api="v2",
            retries=0,
            max_per_second=None,
        )
        for i, name in enumerate(names)
    )
    return Fleet(deployments, {"t": TokenAuth("t", Secret("report-test-token"))})


def airflow3(failing: Mapping[str, Failure] | None = None, *, dags: int = 2) -> MockTransport:
    """An Airflow 3 API on every host; ``failing`` hosts answer an HTML 500, reset
    the connection, or know no DAG (404)."""
    failing = failing or {}
    run_id = re.compile(r"/dags/([^/]+)/dagRuns(?:/([^/]+))?$")

    def handle(request: HttpRequest) -> HttpResponse | Exception:
        url = urlsplit(request.url)
        failure = failing.get(url.netloc)
        if failure == "reset":
            return ConnectError(f"connection reset by {url.netloc}")
        if failure == "html500":
            return HttpResponse(
                500, {"content-type": "text/html"}, b"<html><h1>Internal Server Error</h1></html>"
            )
        path = url.path
        if found := run_id.search(path):
            if failure == "missing":
                return answer(404, {"detail": f"Dag with dag_id: '{found[1]}' not found"})
            body = request.json if isinstance(request.json, dict) else {}
            return answer(
                200,
                {
                    "dag_run_id": found[2] or body.get("dag_run_id"),
                    "dag_id": found[1],
                    "state": "queued",
                    "logical_date": body.get("logical_date"),
                },
            )
        if path == "/api/v2/dags":
            items = [
                {"dag_id": f"dag_{n}", "is_paused": n % 2 == 1, "tags": [{"name": "etl"}]}
                for n in range(dags)
            ]
            return answer(200, {"dags": items, "total_entries": len(items)})
        if path.startswith("/api/v2/dags/"):
            return answer(200, {"dag_id": path.rsplit("/", 1)[1], "is_paused": False})
        if path == "/api/v2/pools":
            pool = {"name": "default_pool", "slots": 128, "occupied_slots": 3}
            return answer(200, {"pools": [{**pool, "queued_slots": 0}], "total_entries": 1})
        if path == "/api/v2/monitor/health":
            return answer(200, HEALTH)
        if path == "/api/v2/version":
            return answer(200, {"version": "3.3.2", "git_version": ""})
        return answer(404, {"detail": "Not Found"})

    return MockTransport(handle)


async def run_plan(
    fleet: Fleet, plan: Plan, transport: MockTransport, *, stopped: bool = False
) -> RunReport:
    """``plan`` on the engine, on a fake clock; ``stopped``: interrupted before it starts."""
    clock = FakeClock()
    stop = anyio.Event()
    if stopped:
        stop.set()
    async with clock.autojump(), Engine(fleet, transport=transport, clock=clock) as engine:
        return await engine.run(plan, stop=stop)


async def run_job(tmp_path: Path, text: str, fleet: Fleet, transport: MockTransport) -> RunReport:
    """The job file ``text`` run by the job runner, journaled under ``tmp_path``."""
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    job = load_job(path)
    now = datetime(2026, 11, 24, 12, tzinfo=UTC)
    steps = plan_job(job, fleet, run_ids_for(job, now=now))
    journal = Journal(tmp_path / "state" / "run.jsonl", {"job": job.name}, resume=False)
    runner = JobRunner(steps, journal)
    clock = FakeClock()
    try:
        async with clock.autojump(), Engine(fleet, transport=transport, clock=clock) as engine:
            return await runner(engine, anyio.Event(), None)
    finally:
        journal.close()


def rendered(fmt: ReportFormat, report: RunReport, *, width: int = 200, **kwargs: Any) -> str:
    """The report in ``fmt``, as the CLI writes it (a table at ``width`` columns)."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, force_terminal=False)
    render(fmt, summary=report.summary, results=report.results, out=out, console=console)
    return out.getvalue()
