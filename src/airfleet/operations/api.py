"""Any endpoint of the Airflow API, on every deployment: ``airfleet api``.

The path is relative to the API root; each deployment's own prefix
(``/api/v1`` or ``/api/v2``) is put before it, so one command reads or
changes the same resource across Airflow 2 and 3 where the two spell it the
same. The result's ``data`` is the deployment's JSON answer.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from airfleet.dialects.base import Dialect
from airfleet.errors import UsageError
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, failed
from airfleet.plan import Call, Plan
from airfleet.protocol import Conversation, Request, Response, Verdict
from airfleet.results import Outcome

__all__ = [
    "IDEMPOTENT_POSTS",
    "METHODS",
    "ApiSpec",
    "check_api_path",
    "place_fields",
    "plan_api",
]

METHODS = ("GET", "POST", "PATCH", "PUT", "DELETE")
# POSTs whose body names the resource they make, which the endpoint refuses
# to make twice (409): a resend after a lost answer cannot double it, so
# they are retried like reads. Any other POST is sent once.
IDEMPOTENT_POSTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^/dags/[^/]+/dagRuns$"), "dag_run_id"),
    (re.compile(r"^/pools$"), "name"),
    (re.compile(r"^/variables$"), "key"),
    (re.compile(r"^/connections$"), "connection_id"),
)
# Pages of --paginate past which a server that ignores offset is given up on.
MAX_PAGES = 10_000
_PLACEHOLDER = re.compile(r"\{[^}]*\}")


def check_api_path(path: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``PATH`` as given to ``airfleet api``: the path and the query it carries.

    Raises ``UsageError`` for what would reach the wrong place: a full URL,
    an API prefix (each deployment's own is added), a ``{placeholder}`` left
    in, ``..``.
    """
    text = path.strip()
    if "://" in text:
        raise UsageError(f"{text!r}: give a path relative to the API root, like /dags")
    if not text.startswith("/"):
        text = "/" + text
    path_part, _, query = text.partition("?")
    if re.match(r"^/api/v\d+(/|$)", path_part):
        raise UsageError(
            f"{text!r}: leave out the API prefix; each deployment's own (/api/v1 or "
            "/api/v2) is added"
        )
    placeholder = _PLACEHOLDER.search(path_part)
    if placeholder is not None:
        raise UsageError(f"{text!r}: fill in {placeholder.group(0)}")
    if any(part in (".", "..") for part in path_part.split("/")):
        raise UsageError(f"{text!r}: '.' and '..' are not allowed in the path")
    # Decoded here, encoded once when sent: "%2B00:00" stays a plus sign.
    params = tuple(parse_qsl(query, keep_blank_values=True))
    return path_part.rstrip("/") or "/", params


@dataclass(frozen=True, slots=True)
class ApiSpec:
    """One request to ``path`` under each deployment's API root.

    ``body`` is the JSON body (None: none). ``paginate``: follow ``offset``
    and ``limit`` to the end of a listing and merge its list field.
    """

    method: str
    path: str
    params: tuple[tuple[str, str], ...] = ()
    body: Any = None
    paginate: bool = False

    @property
    def idempotent(self) -> bool:
        """Whether a lost answer may be resent (see ``IDEMPOTENT_POSTS``)."""
        if self.method != "POST":
            return True
        return any(
            pattern.match(self.path) and isinstance(self.body, dict) and field in self.body
            for pattern, field in IDEMPOTENT_POSTS
        )

    def request(self, dialect: Dialect, extra: tuple[tuple[str, str], ...] = ()) -> Request:
        return Request(
            self.method,
            dialect.prefix + self.path,
            params=(*self.params, *extra),
            json=self.body,
            idempotent=self.idempotent,
        )

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return (self.request(dialect),)

    def converse(self, dialect: Dialect) -> Conversation:
        if self.paginate:
            return (yield from self._pages(dialect))
        answer = yield from ask(self.request(dialect))
        if not answer.ok:
            return failed(dialect, answer)
        return Verdict(Outcome.OK, data=_as_data(answer), status=answer.status)

    def _pages(self, dialect: Dialect) -> Conversation:
        given = dict(self.params)
        params = tuple((k, v) for k, v in self.params if k not in ("limit", "offset"))
        spec = ApiSpec(self.method, self.path, params, self.body)
        limit = int(given.get("limit") or dialect.page_limit)
        offset = int(given.get("offset") or 0)
        merged: list[Any] = []
        previous: list[Any] = []
        first: dict[str, Any] | None = None
        key = None
        for _ in range(MAX_PAGES):
            paging = (("limit", str(limit)), ("offset", str(offset)))
            answer = yield from ask(spec.request(dialect, paging))
            if not answer.ok:
                return failed(dialect, answer)
            body = answer.body
            key = key or _list_field(body)
            if key is None or not isinstance(body, dict):
                return Verdict(
                    Outcome.FAILED,
                    error="--paginate: the answer has no list field to follow",
                    status=answer.status,
                )
            page = body.get(key)
            items = page if isinstance(page, list) else []
            if first is None:
                first = body
            elif items == previous:
                break  # the same page again: a server that ignores offset
            previous = items
            merged.extend(items)
            offset += len(items)
            total = body.get("total_entries")
            if not items or (isinstance(total, int) and len(merged) >= total):
                break
            if not isinstance(total, int) and len(items) < limit:
                break
        assert first is not None  # noqa: S101 - the loop ran once
        assert key is not None  # noqa: S101 - found on the first page
        data = {**first, key: merged}
        return Verdict(Outcome.OK, data=data, status=200)


def plan_api(
    deployments: Sequence[Deployment],
    method: str,
    path: str,
    *,
    params: tuple[tuple[str, str], ...] = (),
    body: Any = None,
    paginate: bool = False,
) -> Plan:
    """One request per deployment; ``path`` is checked with :func:`check_api_path`."""
    method = method.upper()
    if method not in METHODS:
        raise UsageError(f"method {method!r}: use one of {', '.join(METHODS)}")
    if paginate and method != "GET":
        raise UsageError("--paginate follows a listing: it goes with GET only")
    clean, query = check_api_path(path)
    everything = (*query, *params)
    if paginate:
        for key, value in everything:
            if key in ("limit", "offset") and not (
                value.isdigit() and int(value) >= (key == "limit")
            ):
                raise UsageError(f"{key}={value!r}: --paginate needs a whole number here")
    spec = ApiSpec(method, clean, everything, body, paginate)
    target = f"{method} {clean}"
    return Plan("api", tuple(Call(d, "api", target, spec) for d in deployments))


def place_fields(
    method: str, fields: Sequence[tuple[str, Any]], body: Any = None
) -> tuple[tuple[tuple[str, str], ...], Any]:
    """Where fields go, as ``gh api`` puts them: the query of a GET or DELETE, or when a
    body is given; otherwise the JSON body. Returns the query and the body."""
    if method.upper() in ("GET", "DELETE") or body is not None:
        # true, 3, null in a query: as the API spells them.
        return tuple((k, v if isinstance(v, str) else json.dumps(v)) for k, v in fields), body
    return (), dict(fields) or None


def _as_data(answer: Response) -> dict[str, Any]:
    body = answer.body
    if isinstance(body, dict):
        return body
    if body is None:
        return {"text": answer.text} if answer.text else {}
    return {"body": body}


def _list_field(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    lists = [k for k, v in body.items() if isinstance(v, list)]
    return lists[0] if len(lists) == 1 else None
