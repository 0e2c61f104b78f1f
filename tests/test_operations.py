"""Operations as pure conversations: scripted answers in, verdicts out (no I/O)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet.dialects import AirflowV1, AirflowV2, Dialect
from airfleet.dialects.base import MAX_REASON
from airfleet.errors import ApiError
from airfleet.operations import DagsSpec, HealthSpec, PauseSpec, PoolsSpec, TriggerSpec
from airfleet.protocol import Conversation, Pause, Request, Response, Verdict
from airfleet.results import Outcome

V1, V2 = AirflowV1(), AirflowV2()


def run(conv: Conversation, answer: Any) -> tuple[Verdict, list[Any]]:
    """Drive a conversation; ``answer(step)`` returns the reply to each step."""
    steps: list[Any] = []
    reply: Any = None
    try:
        step = next(conv)
        while True:
            steps.append(step)
            reply = answer(step)
            step = conv.send(reply)
    except StopIteration as done:
        return done.value, steps


def ok(body: Any, *, at: float = 0.0, uncertain: bool = False) -> Response:
    return Response(200, body, at=at, uncertain_before=uncertain)


DATE = "2026-12-01T12:00:00Z"


def run_body(state: str = "queued", run_id: str = "r1") -> dict[str, Any]:
    return {"dag_run_id": run_id, "state": state, "logical_date": DATE, "conf": {}}


def spec(dag_id: str = "etl", **options: Any) -> TriggerSpec:
    """A trigger as plan_trigger makes one by default: the invocation's instant."""
    options.setdefault("date_is_default", True)
    return TriggerSpec(dag_id, "r1", logical_date=DATE, **options)


def dag_answer(step: Request, *, paused: bool = False) -> Response | None:
    """The DAG's answer to a GET of it (the paused check), else None."""
    if step.method == "GET" and "/dagRuns" not in step.path:
        return ok({"dag_id": step.path.rsplit("/", 1)[1], "is_paused": paused})
    return None


@pytest.mark.parametrize("dialect", [V1, V2])
def test_trigger_ok_reports_run_id_and_state(dialect: Dialect) -> None:
    """A 200 gives ok with the run id, state, logical date and whether the DAG is paused."""
    verdict, steps = run(spec().converse(dialect), lambda s: dag_answer(s) or ok(run_body()))
    assert verdict.outcome is Outcome.OK
    assert verdict.data == {
        "dag_run_id": "r1",
        "state": "queued",
        "logical_date": DATE,
        "dag_paused": False,
    }
    assert steps[0].json["dag_run_id"] == "r1"
    assert [(s.method, s.path) for s in steps[1:]] == [("GET", f"{dialect.prefix}/dags/etl")]


def test_both_versions_get_the_same_explicit_logical_date_and_no_unknown_fields() -> None:
    """Airflow 3 and 2 get the same body: the instant, never null or left out."""
    v2 = TriggerSpec("etl", "r1", {"a": 1}, DATE).request(V2).json
    v1 = TriggerSpec("etl", "r1", {"a": 1}, DATE).request(V1).json
    assert v2 == v1 == {"dag_run_id": "r1", "logical_date": DATE, "conf": {"a": 1}}


@pytest.mark.parametrize(("uncertain", "existed"), [(False, True), (True, False)])
def test_trigger_409_with_our_run_present_is_ok(uncertain: bool, existed: bool) -> None:
    """409 then our run found: ok; already_existed unless an earlier attempt may have made it."""

    def answer(step: Request) -> Response:
        if step.method == "POST":
            return Response(409, {"detail": "dup"}, uncertain_before=uncertain)
        return ok(run_body("running"))

    verdict, steps = run(spec().converse(V2), answer)
    assert verdict.outcome is Outcome.OK
    assert verdict.data["already_existed"] is existed
    assert [s.method for s in steps] == ["POST", "GET"]
    assert steps[1].path == "/api/v2/dags/etl/dagRuns/r1"


def test_a_retried_trigger_found_already_ended_took_until_it_was_seen() -> None:
    """--wait, a retried POST's 409, and the run found finished: the duration runs
    to when it was seen ended, not zero."""

    def answer(step: Request) -> Response:
        if step.method == "POST":
            return Response(409, {"detail": "dup"}, at=10.0, uncertain_before=True)
        return ok(run_body("success"), at=11.5)

    verdict, steps = run(spec(wait=True).converse(V2), answer)
    assert verdict.outcome is Outcome.OK
    assert verdict.data["final_state"] == "success"
    assert verdict.data["duration_s"] == 1.5
    assert [s.method for s in steps] == ["POST", "GET"]


def test_trigger_409_without_our_run_is_a_logical_date_conflict() -> None:
    """409 and no run with our id: another run holds the logical date (apache/airflow#28486)."""

    def answer(step: Request) -> Response:
        return Response(409 if step.method == "POST" else 404, {"title": "x"})

    verdict, _ = run(spec().converse(V1), answer)
    assert verdict.outcome is Outcome.FAILED
    assert "conflicting logical date" in (verdict.error or "")


def test_trigger_unknown_dag_is_that_calls_failure() -> None:
    """A 404 is a failed result carrying the server's reason."""
    body = {"detail": "Dag with dag_id: 'nope' not found"}
    verdict, _ = run(TriggerSpec("nope", "r1").converse(V2), lambda _: Response(404, body))
    assert verdict.outcome is Outcome.FAILED
    assert verdict.status == 404
    assert "Dag with dag_id: 'nope' not found" in (verdict.error or "")


def test_trigger_wait_polls_until_success() -> None:
    """--wait pauses, polls, and reports the final state and duration."""
    states = iter(["running", "success"])
    clock = iter([3.0, 7.5])

    def answer(step: Any) -> Any:
        if isinstance(step, Pause):
            return None
        if step.method == "POST":
            return ok(run_body(), at=1.0)
        return dag_answer(step) or ok(run_body(next(states)), at=next(clock))

    verdict, steps = run(spec(wait=True, poll_s=4).converse(V2), answer)
    assert verdict.outcome is Outcome.OK
    assert verdict.data["final_state"] == "success"
    assert verdict.data["duration_s"] == 6.5
    pauses = [s.seconds for s in steps if isinstance(s, Pause)]
    assert pauses == [0.5, 1.0]


def test_trigger_wait_failed_run_is_failed_result() -> None:
    """A run that ends failed makes the call failed."""

    def answer(step: Any) -> Any:
        if isinstance(step, Pause):
            return None
        return dag_answer(step) or ok(
            run_body("queued" if step.method == "POST" else "failed"), at=1.0
        )

    verdict, _ = run(spec(wait=True).converse(V1), answer)
    assert verdict.outcome is Outcome.FAILED
    assert verdict.data["final_state"] == "failed"


def test_trigger_wait_times_out() -> None:
    """Past --timeout the call fails and says the run's last state."""
    times = iter([0.0, 2.0, 4.0, 6.0])

    def answer(step: Any) -> Any:
        if isinstance(step, Pause):
            assert step.seconds <= 5
            return None
        return ok(run_body("running"), at=next(times))

    verdict, _ = run(TriggerSpec("etl", "r1", wait=True, timeout_s=5).converse(V2), answer)
    assert verdict.outcome is Outcome.FAILED
    assert "gave up waiting after 5 s; the run is running" in (verdict.error or "")


def _dags_server(total: int, page_size: int, *, report_total: bool = True) -> Any:
    names = [f"dag_{i:04d}" for i in range(total)]

    def page(request: Request) -> Response:
        params = dict(request.params)
        offset, limit = int(params["offset"]), min(int(params["limit"]), page_size)
        items = [
            {"dag_id": n, "is_paused": False, "tags": []} for n in names[offset : offset + limit]
        ]
        body: dict[str, Any] = {"dags": items}
        if report_total:
            body["total_entries"] = total
        return ok(body)

    def answer(step: Any) -> Any:
        if isinstance(step, tuple):
            return tuple(page(r) for r in step)
        return page(step)

    return answer


@pytest.mark.parametrize(("total", "page_size"), [(0, 100), (99, 100), (250, 100), (250, 50)])
def test_dags_pages_by_items_returned_and_fetches_the_rest_at_once(
    total: int, page_size: int
) -> None:
    """Every DAG is listed once; pages after the first go out together, sized by what came back."""
    verdict, steps = run(DagsSpec().converse(V2), _dags_server(total, page_size))
    assert [d["dag_id"] for d in verdict.data["dags"]] == [f"dag_{i:04d}" for i in range(total)]
    assert verdict.data["total_entries"] == total
    if total > page_size:
        batch = steps[1]
        assert isinstance(batch, tuple)
        assert [dict(r.params)["offset"] for r in batch] == [
            str(o) for o in range(page_size, total, page_size)
        ]


def test_dags_without_total_pages_until_empty() -> None:
    """Without total_entries, pages are fetched one after another until one is empty."""
    verdict, steps = run(DagsSpec().converse(V1), _dags_server(130, 50, report_total=False))
    assert len(verdict.data["dags"]) == 130
    assert len(steps) == 4  # 50 + 50 + 30 + empty


def test_dags_filters_by_glob_and_paused() -> None:
    """--pattern and --paused filter the merged list."""
    verdict, _ = run(
        DagsSpec(pattern="dag_00[0-1]*", paused=False).converse(V2), _dags_server(30, 100)
    )
    assert [d["dag_id"] for d in verdict.data["dags"]] == [f"dag_{i:04d}" for i in range(20)]


def test_listing_error_and_bad_shape_become_api_errors() -> None:
    """A non-2xx page or a body of the wrong shape raises ApiError (a failed result)."""
    with pytest.raises(ApiError, match="HTTP 500"):
        run(PoolsSpec().converse(V2), lambda _: Response(500, {"detail": "boom"}))
    with pytest.raises(ApiError, match="unexpected answer"):
        run(PoolsSpec().converse(V2), lambda _: ok({"nope": []}))
    with pytest.raises(ApiError, match="not JSON"):
        run(PoolsSpec().converse(V1), lambda _: Response(200, None, text="<html>"))


def test_pools_rows_carry_the_report_fields() -> None:
    """Pools data is name, slots, occupied, queued and open slots per pool."""
    pool = {
        "name": "default_pool",
        "slots": 128,
        "occupied_slots": 3,
        "queued_slots": 1,
        "open_slots": 125,
        "description": "x",
    }
    verdict, _ = run(PoolsSpec().converse(V2), lambda _: ok({"pools": [pool], "total_entries": 1}))
    assert verdict.data == {
        "pools": [
            {
                "name": "default_pool",
                "slots": 128,
                "occupied_slots": 3,
                "queued_slots": 1,
                "open_slots": 125,
            }
        ]
    }


def test_pause_patches_is_paused() -> None:
    """pause sends PATCH is_paused with an update mask and reports the new flag."""
    verdict, steps = run(
        PauseSpec("etl", True).converse(V1), lambda _: ok({"dag_id": "etl", "is_paused": True})
    )
    assert steps[0].method == "PATCH"
    assert steps[0].json == {"is_paused": True}
    assert dict(steps[0].params) == {"update_mask": "is_paused"}
    assert verdict.data == {"is_paused": True}


@pytest.mark.parametrize(
    ("scheduler", "outcome"), [("healthy", Outcome.OK), ("unhealthy", Outcome.FAILED)]
)
def test_health_reads_version_api_and_components(scheduler: str, outcome: Outcome) -> None:
    """health reports version, dialect and components; an unhealthy scheduler fails
    it. Both requests carry the credential: a gateway refuses anonymous ones."""

    def answer(step: Request) -> Response:
        if step.path.endswith("/version"):
            return ok({"version": "3.3.2"})
        return ok(
            {
                "metadatabase": {"status": "healthy"},
                "scheduler": {"status": scheduler},
                "dag_processor": {"status": "healthy"},
            }
        )

    verdict, steps = run(HealthSpec().converse(V2), answer)
    assert [s.path for s in steps] == ["/api/v2/version", "/api/v2/monitor/health"]
    assert all(s.auth for s in steps)
    assert verdict.outcome is outcome
    assert verdict.data["version"] == "3.3.2"
    assert verdict.data["api"] == "v2"


@pytest.mark.parametrize(("dialect", "required"), [(V1, False), (V2, True)])
def test_the_dag_processor_is_required_on_airflow_3_only(dialect: Dialect, required: bool) -> None:
    """Airflow 3 parses DAG files only in its DAG processor: one that is not
    running (null status) makes the deployment unhealthy there, not on Airflow 2."""
    body = {
        "metadatabase": {"status": "healthy"},
        "scheduler": {"status": "healthy"},
        "dag_processor": {"status": None, "latest_dag_processor_heartbeat": None},
    }
    verdict, _ = run(HealthSpec().converse(dialect), lambda _: ok(body))
    assert verdict.outcome is (Outcome.FAILED if required else Outcome.OK)
    if required:
        assert verdict.error == "unhealthy: dag_processor is not reporting (not running?)"


@pytest.mark.parametrize(("found", "outcome"), [(200, Outcome.OK), (404, Outcome.FAILED)])
def test_trigger_500_then_our_run_found_is_ok(found: int, outcome: Outcome) -> None:
    """Real Airflow 2.11 answers concurrent POSTs of one run id with 200 and 500
    (IntegrityError): a 500 is checked with a GET like a 409; no run means failed."""

    def answer(step: Request) -> Response:
        if step.method == "POST":
            return Response(500, "<html>Internal Server Error</html>")
        dag = dag_answer(step)
        if dag is not None:
            return dag
        return Response(found, run_body() if found == 200 else {"title": "DAGRun not found"})

    verdict, steps = run(spec().converse(V1), answer)
    assert [s.method for s in steps][:2] == ["POST", "GET"]
    assert verdict.outcome is outcome
    if found == 200:
        assert verdict.data["already_existed"] is True
    else:
        assert verdict.status == 500


@given(
    detail=st.text(min_size=1, max_size=5000),
    shape=st.sampled_from(["detail", "title", "error", "text", "validation"]),
)
@pytest.mark.parametrize("dialect", [AirflowV1(), AirflowV2()], ids=["v1", "v2"])
def test_a_server_reason_is_one_bounded_line(dialect: Dialect, detail: str, shape: str) -> None:
    """Whatever a server puts in its error body (a schema dump, a stack trace),
    the reason quoted is one line of at most MAX_REASON characters."""
    bodies: dict[str, Any] = {
        "detail": {"detail": detail},
        "title": {"title": detail},
        "error": {"error": detail},
        "text": None,
        "validation": {"detail": [{"loc": ["body", detail], "msg": detail}] * 3},
    }
    response = Response(422, bodies[shape], text=detail if shape == "text" else "")
    reason = dialect.error_message(response)
    assert "\n" not in reason
    assert "\r" not in reason
    assert len(reason) <= MAX_REASON
