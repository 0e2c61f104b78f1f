"""Airflow REST endpoints as the simulator answers them, for /api/v1 and /api/v2.

Paths, fields and status codes follow real Airflow 2.11 and 3.3, as recorded
in tests/fixtures/ and replayed against both (tests/test_sim_fixtures.py): v2
errors are ``{"detail": ...}`` with 422 for validation, v1 errors are problem
JSON with 400.

The run and import-error listings read their query parameters as each
version's framework does (observed against real 2.11.2 and 3.3.2): connexion
refuses a parameter its spec lacks and any date without a zone; FastAPI
ignores unknown parameters and reports every bad one at once. They order as
Postgres does (ascending puts NULLs last), as production metadata databases do.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from airfleet.sim.responses import drop_connection, problem, reply, server_error_page
from airfleet.sim.state import (
    VERSIONS,
    DagRun,
    ParseImportError,
    Pool,
    SimDeployment,
    iso,
    run_times,
    utcnow,
)
from airfleet.sim.world import SimWorld

__all__ = ["Api"]

V2_TRIGGER_FIELDS = frozenset(
    {
        "dag_run_id",
        "logical_date",
        "conf",
        "note",
        "run_after",
        "data_interval_start",
        "data_interval_end",
        "partition_key",
    }
)
V1_TRIGGER_FIELDS = frozenset({"dag_run_id", "logical_date", "execution_date", "conf", "note"})
# Both versions' default [scheduler] allowed_run_id_pattern.
RUN_ID_PATTERN = "^[A-Za-z0-9_.~:+-]+$"
_RUN_ID = re.compile(RUN_ID_PATTERN)
POOL_FIELDS = frozenset({"name", "pool", "slots", "description", "include_deferred", "team_name"})
MAX_PAGE = 100
V2_FALLBACK_PAGE = 50  # Airflow 3's [api] fallback_page_limit; Airflow 2's is 100
MAX_ORDER_BY = 10

RUN_STATES = ("queued", "running", "success", "failed")
RUN_TYPES = (
    "backfill",
    "scheduled",
    "manual",
    "operator_triggered",
    "asset_triggered",
    "asset_materialization",
)
# The query parameters Airflow 2.11.2's spec lists; connexion refuses any other.
V1_RUN_PARAMS = frozenset(
    [
        "limit",
        "offset",
        "order_by",
        "state",
        "fields",
        "start_date_gte",
        "start_date_lte",
        "execution_date_gte",
        "execution_date_lte",
        "end_date_gte",
        "end_date_lte",
        "updated_at_gte",
        "updated_at_lte",
    ]
)
V1_IMPORT_ERROR_PARAMS = frozenset({"limit", "offset", "order_by"})
# Date ranges each version filters runs by, and the bounds it takes.
V1_RUN_RANGES = ("start_date", "execution_date", "end_date", "updated_at")
V2_RUN_RANGES = ("run_after", "logical_date", "start_date", "end_date", "updated_at")
V1_BOUNDS = ("gte", "lte")
V2_BOUNDS = ("gte", "gt", "lte", "lt")
# What each version lets a listing be ordered by (names it maps: _ALIASES).
V1_RUN_ORDER = frozenset(
    [
        "id",
        "state",
        "dag_id",
        "execution_date",
        "dag_run_id",
        "start_date",
        "end_date",
        "updated_at",
        "external_trigger",
        "conf",
    ]
)
V2_RUN_ORDER = frozenset(
    [
        "id",
        "state",
        "dag_id",
        "run_id",
        "dag_run_id",
        "logical_date",
        "partition_date",
        "run_after",
        "start_date",
        "end_date",
        "updated_at",
        "conf",
        "duration",
    ]
)
V1_IMPORT_ERROR_ORDER = frozenset({"import_error_id", "timestamp", "filename"})
V2_IMPORT_ERROR_ORDER = frozenset(
    {"id", "import_error_id", "timestamp", "filename", "bundle_name", "stacktrace"}
)
_ALIASES = {"dag_run_id": "run_id", "execution_date": "logical_date", "import_error_id": "id"}
# connexion's "date-time" format: RFC 3339, a zone required.
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_Row = TypeVar("_Row")


@dataclass(frozen=True, slots=True)
class _Listed:
    """A run as a listing sees it now."""

    run: DagRun
    state: str
    start: datetime | None
    end: datetime | None


_RUN_COLUMNS: dict[str, Callable[[_Listed], Any]] = {
    "id": lambda row: row.run.seq,
    "state": lambda row: row.state,
    "dag_id": lambda row: row.run.dag_id,
    "run_id": lambda row: row.run.dag_run_id,
    "logical_date": lambda row: row.run.logical_date,
    "run_after": lambda row: row.run.run_after or row.run.queued_at,
    "start_date": lambda row: row.start,
    "end_date": lambda row: row.end,
    "updated_at": lambda row: row.end or row.start or row.run.queued_at,
    "conf": lambda row: json.dumps(row.run.conf, sort_keys=True),
    "duration": lambda row: (
        (row.end - row.start).total_seconds() if row.start and row.end else None
    ),
    "external_trigger": lambda row: row.run.run_type == "manual",
    "partition_date": lambda row: None,
}
_IMPORT_ERROR_COLUMNS: dict[str, Callable[[ParseImportError], Any]] = {
    "id": lambda error: error.import_error_id,
    "timestamp": lambda error: error.timestamp,
    "filename": lambda error: error.filename,
    "bundle_name": lambda error: "dags-folder",
    "stacktrace": lambda error: error.stack_trace,
}


class Api:
    """One request's view of one deployment."""

    def __init__(self, sim: SimWorld, dep: SimDeployment, request: web.Request) -> None:
        self.sim = sim
        self.dep = dep
        self.request = request
        self.v2 = dep.api == "v2"

    # -- helpers ----------------------------------------------------------------------

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
        return reply(status, body, headers)

    def error(self, status: int, detail: Any, title: str = "") -> web.Response:
        if self.v2:
            return self.reply(status, {"detail": detail})
        text = detail if isinstance(detail, str) else None
        return self.reply(status, problem(status, title or _TITLES.get(status, "Error"), text))

    def unique_violation(self) -> web.Response:
        """Airflow 3.3's 409 for a duplicate row."""
        return self.hidden_error(409, "Unique constraint violation")

    def hidden_error(self, status: int, reason: str) -> web.Response:
        """Airflow 3.3's answer to a database error: the SQL is hidden, an error id is given."""
        detail = {
            "reason": reason,
            "statement": "hidden",
            "orig_error": "hidden",
            "message": "Serious error when handling your request. Check logs for more details - "
            f"you will find it in api server when you look for ID {secrets.token_urlsafe(6)}",
        }
        return self.reply(status, {"detail": detail})

    def extra_params(self, known: frozenset[str]) -> web.Response | None:
        """Airflow 2's 400 for query parameters its spec lacks (connexion validates strictly)."""
        extra = sorted(set(self.request.query) - known)
        if not extra:
            return None
        body = problem(400, "", f"Extra query parameter(s) {', '.join(extra)} not in spec")
        body["title"] = None
        return self.reply(400, body)

    def invalid(self, field: str, message: str, kind: str = "value_error") -> web.Response:
        if self.v2:
            item = {"type": kind, "loc": ["body", field], "msg": message, "input": {}}
            return self.reply(422, {"detail": [item]})
        return self.error(400, f"{{'{field}': ['{message}']}}", "Bad Request")

    async def body(self) -> Any:
        try:
            return await self.request.json()
        except ValueError:
            return None

    def page(self, items: list[Any], key: str) -> web.Response:
        query = self.request.query
        try:
            limit = min(int(query.get("limit", MAX_PAGE)), MAX_PAGE)
            offset = max(int(query.get("offset", 0)), 0)
        except ValueError:
            return self.invalid("limit", "Input should be a valid integer", "int_parsing")
        return self.reply(200, {key: items[offset : offset + limit], "total_entries": len(items)})

    def count(self, endpoint: str) -> None:
        self.sim.stats_.by_endpoint[endpoint] += 1

    # -- dispatch ---------------------------------------------------------------------

    async def dispatch(self, method: str, route: list[str]) -> web.StreamResponse:
        n = len(route)
        head = route[0] if route else ""
        if method == "GET" and route == ["version"]:
            self.count("version")
            git = "" if not self.v2 else "sim"
            return self.reply(200, {"version": VERSIONS[self.dep.api], "git_version": git})
        if method == "GET" and route == (["monitor", "health"] if self.v2 else ["health"]):
            self.count("health")
            return self.reply(200, self.sim.health_body())
        if head == "dags":
            if n == 1 and method == "GET":
                return self.list_dags()
            if n == 2 and method == "GET":
                return self.get_dag(route[1])
            if n == 2 and method == "PATCH":
                return await self.patch_dag(route[1])
            if n == 3 and route[2] == "dagRuns" and method == "POST":
                return await self.trigger(route[1])
            if n == 3 and route[2] == "dagRuns" and method == "GET":
                return self.list_runs(route[1])
            if n == 4 and route[2] == "dagRuns" and method == "GET":
                return self.get_run(route[1], route[3])
            if n == 4 and route[2] == "dagRuns" and method == "PATCH":
                return await self.patch_run(route[1], route[3])
        if route == ["importErrors"] and method == "GET":
            return self.list_import_errors()
        if head == "pools":
            if n == 1 and method == "GET":
                self.count("list_pools")
                return self.page([self.dep.pool_json(p) for p in self.dep.pools.values()], "pools")
            if n == 1 and method == "POST":
                return await self.create_pool()
            if n == 2 and method == "GET":
                return self.get_pool(route[1])
            if n == 2 and method == "PATCH":
                return await self.patch_pool(route[1])
            if n == 2 and method == "DELETE":
                return self.delete_pool(route[1])
        if self.v2:
            # What Airflow 3.3 answers for a route its API does not have.
            if method == "GET":
                return self.reply(404, {"error": "API route not found"})
            return self.reply(405, {"detail": "Method Not Allowed"})
        return self.error(404, "The requested URL was not found on the server.", "Not Found")

    # -- DAGs -------------------------------------------------------------------------

    def missing_dag(self, dag_id: str) -> web.Response:
        if self.v2:
            return self.error(404, f"Dag with dag_id: '{dag_id}' not found")
        return self.error(404, f"DAG with dag_id: '{dag_id}' not found", "DAG not found")

    def list_dags(self) -> web.Response:
        self.count("list_dags")
        query = self.request.query
        dags = list(self.dep.dags.values())
        paused = query.get("paused")
        if paused in ("true", "false"):
            dags = [d for d in dags if d.is_paused is (paused == "true")]
        pattern = query.get("dag_id_pattern")
        if pattern:
            needle = pattern.replace("%", "")
            dags = [d for d in dags if needle in d.dag_id]
        return self.page([self.dep.dag_json(d) for d in dags], "dags")

    def get_dag(self, dag_id: str) -> web.Response:
        self.count("get_dag")
        dag = self.dep.dags.get(dag_id)
        return self.reply(200, self.dep.dag_json(dag)) if dag else self.missing_dag(dag_id)

    async def patch_dag(self, dag_id: str) -> web.Response:
        self.count("patch_dag")
        dag = self.dep.dags.get(dag_id)
        if dag is None:
            return self.missing_dag(dag_id)
        body = await self.body()
        if not isinstance(body, dict) or not isinstance(body.get("is_paused"), bool):
            return self.invalid("is_paused", "Input should be a valid boolean", "bool_type")
        dag.is_paused = body["is_paused"]
        return self.reply(200, self.dep.dag_json(dag))

    # -- DAG runs -----------------------------------------------------------------------

    async def trigger(self, dag_id: str) -> web.StreamResponse:
        self.count("trigger")
        dep = self.dep
        if dag_id not in dep.dags:
            return self.missing_dag(dag_id)
        body = await self.body()
        if not isinstance(body, dict):
            return self.invalid("body", "Input should be a valid dictionary", "dict_type")
        allowed = V2_TRIGGER_FIELDS if self.v2 else V1_TRIGGER_FIELDS
        for key in body:
            if key not in allowed:
                if self.v2:
                    return self.invalid(key, "Extra inputs are not permitted", "extra_forbidden")
                return self.error(400, f"{{'{key}': ['Unknown field.']}}", "Bad Request")
        if self.v2 and "logical_date" not in body:
            return self.invalid("logical_date", "Field required", "missing")
        if not self.v2 and "logical_date" in body and body["logical_date"] is None:
            return self.error(400, "{'logical_date': ['Field may not be null.']}", "Bad Request")
        raw_date = body.get("logical_date") or body.get("execution_date")
        logical: datetime | None = None
        if raw_date is not None:
            try:
                logical = datetime.fromisoformat(str(raw_date).replace("Z", "+00:00"))
            except ValueError:
                return self.invalid(
                    "logical_date", "Input should be a valid datetime", "datetime_parsing"
                )
            if logical.tzinfo is None:  # both want an aware date-time
                if self.v2:
                    return self.invalid(
                        "logical_date", "Input should have timezone info", "timezone_aware"
                    )
                return self.error(400, "{'logical_date': ['Naive datetime is disallowed']}")
        now = utcnow()
        if logical is None and not self.v2:
            logical = now  # Airflow 2 fills "now" in
        given_id = body.get("dag_run_id")
        if given_id and (not _RUN_ID.match(given_id) or (self.v2 and ".." in given_id)):
            if not self.v2:
                return server_error_page()  # real 2.11: the ORM's ValueError, unhandled
            return self.error(
                400,
                f"The run_id provided '{given_id}' does not match regex pattern "
                f"'{RUN_ID_PATTERN}' or '^(?:manual|scheduled|asset_triggered)__...$'",
            )
        run_id = given_id or f"manual__{iso(logical or now)}"
        runs = dep.runs.setdefault(dag_id, {})
        stats = self.sim.stats_
        same_date = logical is not None and any(r.logical_date == logical for r in runs.values())
        if run_id in runs or same_date:
            stats.duplicates_refused += 1
            stats.duplicates_by[dep.name] += 1
            if self.v2:
                return self.unique_violation()
            # Real 2.11 names the date when another run holds it.
            existing = next((r for r in runs.values() if r.logical_date == logical), None)
            if existing is not None and logical is not None:
                return self.error(
                    409,
                    f"DAGRun with DAG ID: '{dag_id}' and DAGRun logical date: "
                    f"'{logical.isoformat(sep=' ')}' already exists",
                    "Conflict",
                )
            return self.error(
                409,
                f"DAGRun with DAG ID: '{dag_id}' and DAGRun ID: '{run_id}' already exists",
                "Conflict",
            )
        conf = body.get("conf") or {}
        # Both versions keep a note only when it is not empty.
        note = body.get("note") or None
        run = dep.add_run(DagRun(dag_id, run_id, logical, now, time.monotonic(), conf, note))
        stats.runs_total += 1
        self.sim.run_log.setdefault(dep.name, {}).setdefault(dag_id, []).append(run_id)
        faults = self.sim.faults
        if faults.commit_then_fail_rate and self.sim.rng.random() < faults.commit_then_fail_rate:
            stats.faults["commit_then_fail"] += 1
            if self.sim.rng.random() < 0.5:
                return self.reply(503, {"detail": "Service Unavailable"})
            return await drop_connection(self.request)
        return self.reply(200, self.run_body(run))

    def run_body(self, run: DagRun) -> dict[str, Any]:
        sim = self.sim
        state = self.dep.run_state(run, time.monotonic(), sim.run_queued_s, sim.run_duration_s)
        start, end = run_times(run, state, sim.run_queued_s, sim.run_duration_s)
        return self.dep.run_json(run, state, start, end)

    def missing_run(self, dag_id: str, run_id: str) -> web.Response:
        message = f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
        return self.error(404, message, "DAGRun not found")

    def get_run(self, dag_id: str, run_id: str) -> web.Response:
        self.count("get_run")
        if dag_id not in self.dep.dags:
            return self.missing_dag(dag_id)
        run = self.dep.runs.get(dag_id, {}).get(run_id)
        return self.reply(200, self.run_body(run)) if run else self.missing_run(dag_id, run_id)

    def list_runs(self, dag_id: str) -> web.Response:
        """One DAG's runs, or every DAG's (``~``): filtered, ordered, then paged."""
        self.count("list_runs")
        if not self.v2 and (extra := self.extra_params(V1_RUN_PARAMS)):
            return extra
        query = _Query(self)
        limit, offset = query.window()
        ranges = [
            (column, bound, moment)
            for column in (V2_RUN_RANGES if self.v2 else V1_RUN_RANGES)
            for bound in (V2_BOUNDS if self.v2 else V1_BOUNDS)
            if (moment := query.instant(f"{column}_{bound}")) is not None
        ]
        limit = query.page_limit(limit)
        refused = query.answer()
        if refused is not None:
            return refused
        states = query.values("state")
        run_types = query.values("run_type") if self.v2 else []
        if self.v2:
            # Airflow 3's own check, after FastAPI's ("none" matches a run without a state).
            if any(state not in (*RUN_STATES, "none") for state in states):
                valid = ", ".join(RUN_STATES)
                return self.reply(
                    422, {"detail": f"Invalid value for state. Valid values are {valid}"}
                )
            if any(kind not in (*RUN_TYPES, "none") for kind in run_types):
                valid = ", ".join(RUN_TYPES)
                return self.reply(
                    422, {"detail": f"Invalid value for run type. Valid values are {valid}"}
                )
        every = dag_id == "~"
        # Airflow 2 only filters by the DAG: an unknown one has no runs.
        if self.v2 and not every and dag_id not in self.dep.dags:
            return self.error(404, f"The Dag with ID: `{dag_id}` was not found")
        if query.naive:
            return self.hidden_error(500, "Database error")  # a zoneless bound, refused by the ORM
        rows = self.listed(None if every else dag_id)
        if states:
            rows = [row for row in rows if row.state in states]
        if run_types:
            rows = [row for row in rows if row.run.run_type in run_types]
        now = utcnow()
        for column, bound, moment in ranges:
            value_of = _RUN_COLUMNS[_ALIASES.get(column, column)]
            # Airflow 3 reads a run not yet started (or ended) as starting (ending) now.
            null_is = now if self.v2 and column in ("start_date", "end_date") else None
            rows = [row for row in rows if _within(value_of(row), bound, moment, null_is)]
        keys = query.order(V2_RUN_ORDER if self.v2 else V1_RUN_ORDER, "id")
        if isinstance(keys, web.Response):
            return keys
        rows = _ordered(rows, [(_RUN_COLUMNS[column], descending) for column, descending in keys])
        page = [
            self.dep.run_json(row.run, row.state, row.start, row.end)
            for row in rows[offset : offset + limit]
        ]
        fields = query.values("fields") if not self.v2 else []
        if fields:
            for body in page:
                missing = next((name for name in fields if name not in body), None)
                if missing is not None:
                    return self.error(
                        400, f"{missing} not in DAGRunSchema", "DAGRunCollectionSchema error"
                    )
            page = [{name: body[name] for name in fields} for body in page]
        answer: dict[str, Any] = {"dag_runs": page, "total_entries": len(rows)}
        if self.v2:
            answer.update(total_entries_limit=None, next_cursor=None, previous_cursor=None)
        return self.reply(200, answer)

    def listed(self, dag_id: str | None) -> list[_Listed]:
        """Each run with its state and dates as of now, in id order."""
        sim = self.sim
        now = time.monotonic()
        rows = []
        for run in self.dep.runs_of(dag_id):
            state = self.dep.run_state(run, now, sim.run_queued_s, sim.run_duration_s)
            start, end = run_times(run, state, sim.run_queued_s, sim.run_duration_s)
            rows.append(_Listed(run, state, start, end))
        return rows

    async def patch_run(self, dag_id: str, run_id: str) -> web.Response:
        self.count("patch_run")
        run = self.dep.runs.get(dag_id, {}).get(run_id)
        if run is None:
            return self.missing_run(dag_id, run_id)
        body = await self.body()
        state = body.get("state") if isinstance(body, dict) else None
        if state not in ("success", "failed", "queued"):
            return self.invalid("state", "Input should be 'queued', 'success' or 'failed'", "enum")
        if run.past:
            run.set_past_state(state, utcnow())
        else:
            run.forced = state
        return self.reply(200, self.run_body(run))

    # -- import errors ------------------------------------------------------------------

    def list_import_errors(self) -> web.Response:
        """The files the DAG processor could not import, in id order unless asked otherwise."""
        self.count("import_errors")
        if not self.v2 and (extra := self.extra_params(V1_IMPORT_ERROR_PARAMS)):
            return extra
        query = _Query(self)
        limit, offset = query.window()
        limit = query.page_limit(limit)
        refused = query.answer()
        if refused is not None:
            return refused
        allowed = V2_IMPORT_ERROR_ORDER if self.v2 else V1_IMPORT_ERROR_ORDER
        keys = query.order(allowed, "id" if self.v2 else "import_error_id")
        if isinstance(keys, web.Response):
            return keys
        errors = _ordered(
            list(self.dep.import_errors.values()),
            [(_IMPORT_ERROR_COLUMNS[column], descending) for column, descending in keys],
        )
        page = [self.dep.import_error_json(error) for error in errors[offset : offset + limit]]
        return self.reply(200, {"import_errors": page, "total_entries": len(errors)})

    # -- pools --------------------------------------------------------------------------

    def missing_pool(self, name: str) -> web.Response:
        return self.error(404, f"The Pool with name: `{name}` was not found", "Pool not found")

    def get_pool(self, name: str) -> web.Response:
        self.count("get_pool")
        pool = self.dep.pools.get(name)
        return self.reply(200, self.dep.pool_json(pool)) if pool else self.missing_pool(name)

    async def create_pool(self) -> web.Response:
        self.count("create_pool")
        body = await self.body()
        if not isinstance(body, dict):
            return self.invalid("body", "Input should be a valid dictionary", "dict_type")
        for key in body:
            if key not in POOL_FIELDS:
                return self.invalid(key, "Extra inputs are not permitted", "extra_forbidden")
        name, slots = body.get("name"), body.get("slots")
        if not isinstance(name, str) or not name:
            return self.invalid("name", "Field required", "missing")
        if not isinstance(slots, int) or isinstance(slots, bool) or slots < -1:
            return self.invalid("slots", "Input should be a valid integer", "int_type")
        if name in self.dep.pools:
            if self.v2:
                return self.unique_violation()
            return self.error(409, f"Pool: {name} already exists", "Conflict")
        pool = Pool(name, slots, body.get("description") or "", bool(body.get("include_deferred")))
        self.dep.pools[name] = pool
        return self.reply(201 if self.v2 else 200, self.dep.pool_json(pool))

    async def patch_pool(self, name: str) -> web.Response:
        self.count("patch_pool")
        pool = self.dep.pools.get(name)
        if pool is None:
            return self.missing_pool(name)
        body = await self.body()
        if not isinstance(body, dict):
            return self.invalid("body", "Input should be a valid dictionary", "dict_type")
        masks = self.request.query.getall("update_mask", [])
        if not self.v2:
            masks = [m.strip() for mask in masks for m in mask.split(",") if m.strip()]
        fields = {"slots", "description", "include_deferred"}
        if name == "default_pool" and (
            not masks or any(m not in ("slots", "include_deferred") for m in masks)
        ):
            if self.v2:
                return self.error(
                    400, "Only slots and included_deferred can be modified on Default Pool"
                )
            if body.get("name") != name:  # real 2.11.2's check, and its message
                return self.error(400, "Default Pool's name can't be modified")
        elif name != "default_pool" and self.v2:
            missing = [
                field
                for field, present in (
                    ("pool", bool({"name", "pool"} & body.keys())),
                    ("slots", "slots" in body),
                    ("include_deferred", "include_deferred" in body),
                )
                if not present
            ]
            if missing:
                # As real 3.3.2 words it: no "body" in loc, the body as input.
                items = [
                    {
                        "type": "missing",
                        "loc": [field],
                        "msg": "Field required",
                        "input": body,
                        "url": "https://errors.pydantic.dev/2.14/v/missing",
                    }
                    for field in missing
                ]
                return self.reply(422, {"detail": items})
        elif not self.v2 and not masks and "name" not in body:
            return self.error(400, "{'name': ['Missing data for required field.']}", "Bad Request")
        unknown = [m for m in masks if m not in fields | {"name", "pool"}]
        if unknown:
            return self.error(400, f"Invalid field: {unknown[0]}", "Bad Request")
        chosen = set(masks) & fields if masks else fields & body.keys()
        for key in chosen:
            if key not in body:
                continue
            value = body[key]
            if key == "slots" and (not isinstance(value, int) or isinstance(value, bool)):
                return self.invalid("slots", "Input should be a valid integer", "int_type")
            setattr(pool, key, value if key != "description" else (value or ""))
        return self.reply(200, self.dep.pool_json(pool))

    def delete_pool(self, name: str) -> web.Response:
        self.count("delete_pool")
        if name == "default_pool":
            return self.error(400, "Default Pool can't be deleted", "Bad Request")
        if self.dep.pools.pop(name, None) is None:
            return self.missing_pool(name)
        return web.Response(status=204)


_TITLES = {400: "Bad Request", 404: "Not Found", 409: "Conflict", 403: "Forbidden"}


class _Query:
    """A listing's query parameters, read as the version's framework reads them.

    FastAPI (v2) reports every bad parameter in one 422; connexion (v1) stops
    at the first, with a 400.
    """

    def __init__(self, api: Api) -> None:
        self.api = api
        self.query = api.request.query
        self.v2 = api.v2
        self.problems: list[dict[str, Any]] = []
        self.refusal: web.Response | None = None
        # Airflow 3 takes a zoneless date, and then its database layer refuses it.
        self.naive = False

    def one(self, name: str) -> str | None:
        values = self.query.getall(name, [])
        if not values:
            return None
        return str(values[-1] if self.v2 else values[0])  # Starlette reads the last

    def values(self, name: str) -> list[str]:
        values = [str(value) for value in self.query.getall(name, [])]
        if self.v2:
            return values
        # connexion also splits a form-style array on commas.
        return [part for value in values for part in value.split(",")]

    def refuse(self, detail: str | None, title: str = "Bad Request") -> None:
        if self.refusal is None:
            self.refusal = self.api.reply(400, problem(400, title, detail))

    def integer(self, name: str, default: int) -> int:
        raw = self.one(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            if self.v2:
                self.problems.append(
                    {
                        "type": "int_parsing",
                        "loc": ["query", name],
                        "msg": "Input should be a valid integer, unable to parse string as an "
                        "integer",
                        "input": raw,
                    }
                )
            else:
                self.refuse(f"Wrong type, expected 'integer' for query parameter '{name}'")
            return default
        if value >= 0:
            return value
        if self.v2:
            self.problems.append(
                {
                    "type": "greater_than_equal",
                    "loc": ["query", name],
                    "msg": "Input should be greater than or equal to 0",
                    "input": raw,
                    "ctx": {"ge": 0},
                }
            )
            return default
        if name == "offset":  # Airflow 2's spec bounds offset only; limit is checked later
            self.refuse(
                f"{value} is less than the minimum of 0\n\nFailed validating 'minimum' in schema:"
                f"\n    {{'type': 'integer', 'minimum': 0}}\n\nOn instance:\n    {value}"
            )
            return default
        return value

    def window(self) -> tuple[int, int]:
        """(limit, offset) as given; :meth:`page_limit` then applies the version's rules."""
        return self.integer("limit", V2_FALLBACK_PAGE if self.v2 else MAX_PAGE), self.integer(
            "offset", 0
        )

    def page_limit(self, limit: int) -> int:
        """Clamped silently to MAX_PAGE; Airflow 2 reads 0 as its fallback and refuses < 0."""
        if not self.v2:
            if limit < 0:
                self.refuse(None, "Page limit must be a positive integer")
            elif limit == 0:
                limit = MAX_PAGE
        return max(0, min(limit, MAX_PAGE))

    def instant(self, name: str) -> datetime | None:
        raw = self.one(name)
        if raw is None:
            return None
        if not self.v2:
            try:
                if _RFC3339.match(raw):
                    return datetime.fromisoformat(raw.upper())
            except ValueError:
                pass
            self.refuse(
                f"{raw!r} is not a 'date-time'\n\nFailed validating 'format' in schema:\n"
                f"    {{'type': 'string', 'format': 'date-time'}}\n\nOn instance:\n    {raw!r}"
            )
            return None
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            reason = (
                "input is too short"
                if len(raw) < 10
                else "unexpected extra characters at the end of the input"
            )
            self.problems.append(
                {
                    "type": "datetime_from_date_parsing",
                    "loc": ["query", name],
                    "msg": f"Input should be a valid datetime or date, {reason}",
                    "input": raw,
                    "ctx": {"error": reason},
                }
            )
            return None
        if moment.tzinfo is None:
            self.naive = True
            return None
        return moment

    def answer(self) -> web.Response | None:
        """The refusal of a bad parameter, if any."""
        if self.refusal is not None:
            return self.refusal
        if self.problems:
            return self.api.reply(422, {"detail": self.problems})
        return None

    def order(self, allowed: frozenset[str], default: str) -> list[tuple[str, bool]] | web.Response:
        """``order_by`` as (column, descending) keys, or the version's 400."""
        values = [str(value) for value in self.query.getall("order_by", [])] or [default]
        if not self.v2:
            values = values[:1]  # one attribute in Airflow 2
        elif len(values) > MAX_ORDER_BY:
            return self.api.error(
                400,
                f"Ordering with more than {MAX_ORDER_BY} parameters is not allowed. "
                f"Provided: {values}",
            )
        keys = []
        for value in values:
            name = value.lstrip("-")
            if name not in allowed:
                return self.api.error(
                    400,
                    f"Ordering with '{name}' is disallowed or the attribute does not exist on "
                    "the model",
                )
            keys.append((_ALIASES.get(name, name), value.startswith("-")))
        if self.v2 and all(column != "id" for column, _ in keys):
            keys.append(("id", keys[0][1]))  # Airflow 3's tie-break, the first key's way
        return keys


def _within(value: datetime | None, bound: str, moment: datetime, null_is: datetime | None) -> bool:
    if value is None:
        if null_is is None:
            return False  # SQL: a comparison with NULL is never true
        if bound in ("gte", "gt"):
            return True  # what has not started (ended) yet will, after any past bound
        value = null_is
    if bound == "gte":
        return value >= moment
    if bound == "gt":
        return value > moment
    if bound == "lte":
        return value <= moment
    return value < moment


def _ordered(rows: list[_Row], keys: Sequence[tuple[Callable[[_Row], Any], bool]]) -> list[_Row]:
    """``rows`` as Postgres orders them: NULLs last ascending, first descending."""
    for column, descending in reversed(keys):  # stable sorts, the least significant key first
        rows.sort(key=_nulls_last(column), reverse=descending)
    return rows


def _nulls_last(column: Callable[[_Row], Any]) -> Callable[[_Row], tuple[int, Any]]:
    def key(row: _Row) -> tuple[int, Any]:
        value = column(row)
        return (1, 0) if value is None else (0, value)

    return key
