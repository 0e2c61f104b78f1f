"""Airflow REST endpoints as the simulator answers them, for /api/v1 and /api/v2.

Paths, fields and status codes follow real Airflow 2.11 and 3.3, as recorded
in tests/fixtures/ and replayed against both (tests/test_sim_fixtures.py): v2
errors are ``{"detail": ...}`` with 422 for validation, v1 errors are problem
JSON with 400.
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import datetime
from typing import Any

from aiohttp import web

from airfleet.sim.responses import drop_connection, problem, reply, server_error_page
from airfleet.sim.state import VERSIONS, DagRun, Pool, SimDeployment, iso, run_times, utcnow
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
        """Airflow 3.3's 409 for a duplicate row: the SQL is hidden, an error id is given."""
        detail = {
            "reason": "Unique constraint violation",
            "statement": "hidden",
            "orig_error": "hidden",
            "message": "Serious error when handling your request. Check logs for more details - "
            f"you will find it in api server when you look for ID {secrets.token_urlsafe(6)}",
        }
        return self.reply(409, {"detail": detail})

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
        run = DagRun(dag_id, run_id, logical, now, time.monotonic(), conf, note)
        runs[run_id] = run
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
        self.count("list_runs")
        if dag_id not in self.dep.dags:
            return self.missing_dag(dag_id)
        runs = [self.run_body(r) for r in self.dep.runs.get(dag_id, {}).values()]
        return self.page(runs, "dag_runs")

    async def patch_run(self, dag_id: str, run_id: str) -> web.Response:
        self.count("patch_run")
        run = self.dep.runs.get(dag_id, {}).get(run_id)
        if run is None:
            return self.missing_run(dag_id, run_id)
        body = await self.body()
        state = body.get("state") if isinstance(body, dict) else None
        if state not in ("success", "failed", "queued"):
            return self.invalid("state", "Input should be 'queued', 'success' or 'failed'", "enum")
        run.forced = state
        return self.reply(200, self.run_body(run))

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
