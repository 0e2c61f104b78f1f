"""What every dialect offers: request builders and answer readers, no I/O."""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from airfleet.dialects.dates import utc_text
from airfleet.protocol import Request, Response

__all__ = ["DagRunInfo", "Dialect", "PoolFields"]

TERMINAL_STATES = frozenset({"success", "failed"})
# The longest reason an error message quotes from a server's answer.
MAX_REASON = 300


def seg(value: str) -> str:
    """Quote one path segment (DAG ids and pool names may hold any character)."""
    return quote(value, safe="")


@dataclass(frozen=True, slots=True)
class DagRunInfo:
    """The part of a DAG run the reports use, dates in UTC ``Z`` form.

    ``conf`` and ``note`` are what the server holds (``None`` when the answer
    did not say), so a trigger that finds its run id taken can tell whether
    the run is the one it asked for.
    """

    dag_run_id: str
    state: str
    logical_date: str | None
    start_date: str | None = None
    end_date: str | None = None
    conf: Mapping[str, Any] | None = None
    note: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in TERMINAL_STATES

    def as_data(self) -> dict[str, Any]:
        return {
            "dag_run_id": self.dag_run_id,
            "state": self.state,
            "logical_date": self.logical_date,
        }


@dataclass(frozen=True, slots=True)
class PoolFields:
    """Desired values for a pool; None means "leave as is"."""

    slots: int | None = None
    description: str | None = None
    include_deferred: bool | None = None


class Dialect(ABC):
    """Base of the two dialects: shared shapes, with the differences overridden."""

    name: ClassVar[Literal["v1", "v2"]]
    prefix: ClassVar[str]
    # How a `password` profile authenticates: Airflow 2 takes basic auth,
    # Airflow 3 wants a JWT from {url}/auth/token.
    login_style: ClassVar[Literal["basic", "jwt"]]
    page_limit: ClassVar[int] = 100
    # A run listing's "since": when the run started on Airflow 2; on Airflow 3
    # when it may run (run_after), which a run still queued has too. Newest
    # first by the same field.
    runs_since: ClassVar[str] = "start_date_gte"
    runs_newest_first: ClassVar[str] = "-start_date"

    def __repr__(self) -> str:
        return f"<dialect {self.name}>"

    # -- requests -------------------------------------------------------------

    def version(self) -> Request:
        # Public on Airflow itself, but a gateway in front of it (Astro's,
        # a corporate proxy's) answers only requests that carry a credential.
        return Request("GET", f"{self.prefix}/version")

    @abstractmethod
    def health(self) -> Request:
        """The health check (public on Airflow, sent with the credential for gateways)."""

    @abstractmethod
    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any] | None,
        logical_date: str | None,
        note: str | None,
    ) -> Request:
        """Create a DAG run with our own ``dag_run_id`` (so a resend is recognisable).

        ``logical_date``: a UTC instant, or ``None`` for a run without one
        (Airflow 3 only: Airflow 2 raises ``UsageError``, sending nothing).
        """

    def get_run(self, dag_id: str, run_id: str) -> Request:
        return Request("GET", f"{self.prefix}/dags/{seg(dag_id)}/dagRuns/{seg(run_id)}")

    def get_dag(self, dag_id: str) -> Request:
        # A trigger's answer does not say whether the DAG is paused; this does.
        return Request("GET", f"{self.prefix}/dags/{seg(dag_id)}")

    def list_dags(self, *, limit: int, offset: int) -> Request:
        return _page(f"{self.prefix}/dags", limit, offset, (("order_by", "dag_id"),))

    def set_paused(self, dag_id: str, *, paused: bool) -> Request:
        return Request(
            "PATCH",
            f"{self.prefix}/dags/{seg(dag_id)}",
            params=(("update_mask", "is_paused"),),
            json={"is_paused": paused},
        )

    def list_pools(self, *, limit: int, offset: int) -> Request:
        return _page(f"{self.prefix}/pools", limit, offset)

    def list_runs(
        self,
        dag_id: str | None,
        *,
        limit: int,
        offset: int,
        states: tuple[str, ...] = (),
        since: str | None = None,
    ) -> Request:
        """A page of a DAG's runs (``None``: every DAG's, Airflow's ``~``), newest first."""
        extra = [("order_by", self.runs_newest_first), *(("state", s) for s in states)]
        if since is not None:
            extra.append((self.runs_since, since))
        path = f"{self.prefix}/dags/{'~' if dag_id is None else seg(dag_id)}/dagRuns"
        return _page(path, limit, offset, tuple(extra))

    def list_import_errors(self, *, limit: int, offset: int) -> Request:
        return _page(f"{self.prefix}/importErrors", limit, offset)

    def create_pool(self, name: str, fields: PoolFields) -> Request:
        body: dict[str, Any] = {
            "name": name,
            "slots": fields.slots if fields.slots is not None else 128,
        }
        if fields.description is not None:
            body["description"] = fields.description
        if fields.include_deferred is not None:
            body["include_deferred"] = fields.include_deferred
        # A create is safe to resend: a duplicate answers 409, which the
        # audit reads as "already there".
        return Request("POST", f"{self.prefix}/pools", json=body)

    @abstractmethod
    def update_pool(self, name: str, fields: PoolFields, *, current: Mapping[str, Any]) -> Request:
        """Change only the given fields of a pool (``current`` is what the server has)."""

    def delete_pool(self, name: str) -> Request:
        return Request("DELETE", f"{self.prefix}/pools/{seg(name)}")

    # -- answers --------------------------------------------------------------

    def error_message(self, response: Response) -> str:
        """A one-line reason from an error body (both dialects' shapes are read),
        at most ``MAX_REASON`` characters: a server's schema dump or stack
        trace would otherwise fill a report's error column."""
        return _one_line(self._reason(response), MAX_REASON)

    def _reason(self, response: Response) -> str:
        body = response.body
        if 300 <= response.status < 400:
            where = response.headers.get("Location") or "elsewhere"
            return (
                f"redirected to {_excerpt(where)}; airfleet does not follow redirects "
                "(is the deployment URL right?)"
            )
        if isinstance(body, dict):
            detail = body.get("detail")
            title = body.get("title")
            if isinstance(detail, str) and detail:
                return detail if not title else f"{title}: {detail}"
            if isinstance(detail, list) and detail:
                return "; ".join(_validation_item(item) for item in detail[:3])
            if isinstance(detail, dict):
                reason = detail.get("reason") or detail.get("message")
                if isinstance(reason, str):
                    return reason
            if isinstance(title, str) and title:
                return title
            error = body.get("error")
            if isinstance(error, str):
                return error
        if response.text:
            return _excerpt(response.text)
        return "empty body"

    def is_auth_failure(self, response: Response) -> bool:
        """Does this answer mean "your credential was refused"?"""
        return response.status == 401

    def route_missing(self, response: Response, method: str = "GET") -> bool:
        """Does this answer mean "no such route here": this API is not at this URL?

        A wrong path prefix, or the other Airflow major version, answers so,
        and nothing has happened on the server. A route that exists answers
        in this API's JSON even when it refuses (an unknown DAG is a JSON
        404), so a web page where JSON belongs is a missing route: Airflow 2
        answers an unknown path with an HTML 404, Airflow 3 with its UI's
        HTML (200) for a GET and a 405 for other methods. airfleet never
        sends a method that a route it uses does not accept, so a 405 says
        the same. A success page answering a change (``method`` other than
        GET) is not taken for one: something may have acted on it.
        """
        status = response.status
        body = response.body
        if status == 405:
            return True
        if status == 404:
            # Airflow 3's own "API route not found", and its answer on the
            # removed /api/v1, are JSON too, but not its routes' error shape.
            return not (isinstance(body, dict) and self._is_error_shape(body))
        return (
            method == "GET"
            and 200 <= status < 300
            and body is None
            and _looks_like_html(response.text)
        )

    def is_own_answer(self, response: Response) -> bool:
        """Is this answer, beyond doubt, from this API (proof of the Airflow version)?

        Only this API's JSON, from a route that exists, counts: not a refusal
        (a gateway refuses on every path), not a redirect (a login page), not
        a server error or a throttle (a proxy may have made it).
        """
        status = response.status
        if status in (401, 403, 407, 429) or 300 <= status < 400 or status >= 500:
            return False
        if self.route_missing(response):
            return False
        body = response.body
        if 200 <= status < 300:
            return body is not None
        return isinstance(body, dict) and self._is_error_shape(body)

    @abstractmethod
    def _is_error_shape(self, body: Mapping[str, Any]) -> bool:
        """Is ``body`` this API's error object (what its routes answer when they refuse)?"""

    def read_run(self, body: Any) -> DagRunInfo:
        run = _require_mapping(body, "DAG run")
        conf = run.get("conf")
        return DagRunInfo(
            dag_run_id=_require_str(run, "dag_run_id"),
            state=_require_str(run, "state"),
            logical_date=_optional_date(run, "logical_date"),
            start_date=_optional_date(run, "start_date"),
            end_date=_optional_date(run, "end_date"),
            # A null conf is an empty one; an answer without the key says nothing.
            conf=conf if isinstance(conf, Mapping) else ({} if "conf" in run else None),
            note=_optional_str(run, "note"),
        )

    def read_dags(self, body: Any) -> tuple[list[dict[str, Any]], int | None]:
        """The page's DAGs as report rows, and ``total_entries`` if given."""
        dags, page = _list_page(body, "dags", "DAG")
        rows = [
            {
                "dag_id": _require_str(dag, "dag_id"),
                "is_paused": bool(dag.get("is_paused")),
                "tags": sorted(_tag_names(dag.get("tags"))),
            }
            for dag in dags
        ]
        return rows, _total(page)

    def read_pools(self, body: Any) -> tuple[list[dict[str, Any]], int | None]:
        """Every pool of a page with its settings (what an audit compares)."""
        page = _pool_page(body)
        return [self.read_pool(item) for item in page["pools"]], _total(page)

    def read_pool_rows(self, body: Any) -> tuple[list[dict[str, Any]], int | None]:
        """Every pool of a page as the pools report shows it (no settings)."""
        page = _pool_page(body)
        return [_pool_row(item) for item in page["pools"]], _total(page)

    def read_pool(self, body: Any) -> dict[str, Any]:
        pool = _pool_row(body)
        pool["description"] = body.get("description") or ""
        pool["include_deferred"] = bool(body.get("include_deferred", False))
        return pool

    def read_dag(self, body: Any) -> dict[str, Any]:
        dag = _require_mapping(body, "DAG")
        return {"dag_id": _require_str(dag, "dag_id"), "is_paused": bool(dag.get("is_paused"))}

    def read_runs(self, body: Any) -> tuple[list[dict[str, Any]], int | None]:
        """A page of runs as report rows (dates in UTC ``Z``), and ``total_entries``."""
        runs, page = _list_page(body, "dag_runs", "DAG run")
        rows = [
            {
                "dag_id": _require_str(run, "dag_id"),
                "dag_run_id": _require_str(run, "dag_run_id"),
                "state": _optional_str(run, "state"),
                "logical_date": _optional_date(run, "logical_date"),
                "start_date": _optional_date(run, "start_date"),
                "end_date": _optional_date(run, "end_date"),
                "run_type": _optional_str(run, "run_type"),
            }
            for run in runs
        ]
        return rows, _total(page)

    def read_import_errors(self, body: Any) -> tuple[list[dict[str, Any]], int | None]:
        """A page of import errors: file, time, the exception's line and the whole trace."""
        errors, page = _list_page(body, "import_errors", "import error")
        rows = []
        for error in errors:
            trace = _optional_str(error, "stack_trace") or ""
            rows.append(
                {
                    "import_error_id": error.get("import_error_id"),
                    "filename": _require_str(error, "filename"),
                    "timestamp": _optional_date(error, "timestamp"),
                    "message": _exception_line(trace),
                    "stack_trace": trace,
                }
            )
        return rows, _total(page)

    def read_dag_paused(self, body: Any) -> bool:
        """Is the DAG paused? (A DAG answer without the flag is not an answer.)"""
        paused = _require_mapping(body, "DAG").get("is_paused")
        if not isinstance(paused, bool):
            raise ValueError("DAG answer lacks the boolean field 'is_paused'")
        return paused


def _list_page(body: Any, key: str, what: str) -> tuple[list[Mapping[str, Any]], Mapping[str, Any]]:
    """A listing's items (each a JSON object) and the page holding them."""
    page = _require_mapping(body, f"{what} list")
    items = page.get(key)
    if not isinstance(items, list):
        raise ValueError(f"{what} list answer has no {key!r} array")
    return [_require_mapping(item, what) for item in items], page


def _pool_page(body: Any) -> Mapping[str, Any]:
    page = _require_mapping(body, "pool list")
    if not isinstance(page.get("pools"), list):
        raise ValueError("pool list answer has no 'pools' array")
    return page


def _pool_row(body: Any) -> dict[str, Any]:
    """A pool's name and slot counts: the pools report's row."""
    pool = _require_mapping(body, "pool")
    return {
        "name": _require_str(pool, "name"),
        "slots": _int(pool.get("slots")),
        "occupied_slots": _int(pool.get("occupied_slots")),
        "queued_slots": _int(pool.get("queued_slots")),
        "open_slots": _int(pool.get("open_slots")),
    }


@functools.lru_cache(maxsize=1024)
def _page(path: str, limit: int, offset: int, extra: tuple[tuple[str, str], ...] = ()) -> Request:
    """One page of a listing. Every deployment asks for the same few pages, and
    a Request is frozen, so each is made once and shared."""
    return Request("GET", path, params=(("limit", str(limit)), ("offset", str(offset)), *extra))


def _exception_line(trace: str) -> str:
    """What went wrong, in one line: a Python traceback's last line (its first is
    "Traceback (most recent call last):"), else the first."""
    lines = [line.strip() for line in trace.splitlines() if line.strip()]
    if not lines:
        return ""
    return lines[-1] if lines[0].startswith("Traceback") else lines[0]


def _validation_item(item: Any) -> str:
    if isinstance(item, dict):
        loc = item.get("loc")
        where = ".".join(str(p) for p in loc) if isinstance(loc, list) else ""
        msg = item.get("msg") or item.get("type") or "invalid"
        return f"{where}: {msg}" if where else str(msg)
    return str(item)


def _looks_like_html(text: str) -> bool:
    return text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _excerpt(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    if flat.lstrip().lower().startswith(("<!doctype", "<html")):
        return "an HTML page instead of JSON"
    return flat if len(flat) <= limit else flat[:limit] + "..."


def _require_mapping(body: Any, what: str) -> Mapping[str, Any]:
    if type(body) is dict:  # what JSON gives; skips the slower ABC check
        return body
    if not isinstance(body, Mapping):
        raise ValueError(f"{what} answer is not a JSON object")
    return body


def _require_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ValueError(f"answer lacks the string field {key!r}")
    return value


def _optional_str(obj: Mapping[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) else None


def _optional_date(obj: Mapping[str, Any], key: str) -> str | None:
    value = _optional_str(obj, key)
    return None if value is None else utc_text(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _total(page: Mapping[str, Any]) -> int | None:
    total = page.get("total_entries")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _tag_names(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        return []
    names = []
    for tag in tags:
        if isinstance(tag, dict) and isinstance(tag.get("name"), str):
            names.append(tag["name"])
        elif isinstance(tag, str):
            names.append(tag)
    return names
