"""Airflow 2: ``/api/v1``, problem-JSON errors, basic auth, 403 for any auth failure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from airfleet.dialects.base import Dialect, PoolFields, seg
from airfleet.errors import UsageError
from airfleet.protocol import Request, Response

__all__ = ["AirflowV1"]


class AirflowV1(Dialect):
    """The Airflow 2 REST API."""

    name: ClassVar[Literal["v1", "v2"]] = "v1"
    prefix: ClassVar[str] = "/api/v1"
    login_style: ClassVar[Literal["basic", "jwt"]] = "basic"

    def health(self) -> Request:
        return Request("GET", f"{self.prefix}/health")

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any] | None,
        logical_date: str | None,
        note: str | None,
    ) -> Request:
        if logical_date is None:
            # Airflow 2 answers null with a 400 and fills in its own "now"
            # when the field is left out: neither is a run without a date.
            raise UsageError(
                "Airflow 2 cannot make a run without a logical date (--logical-date none "
                "is for Airflow 3); leave --logical-date out to use this invocation's instant"
            )
        body: dict[str, Any] = {
            "dag_run_id": run_id,
            "logical_date": logical_date,
            "conf": dict(conf or {}),
        }
        if note is not None:
            body["note"] = note
        return Request("POST", f"{self.prefix}/dags/{seg(dag_id)}/dagRuns", json=body)

    def update_pool(self, name: str, fields: PoolFields, *, current: Mapping[str, Any]) -> Request:
        body: dict[str, Any] = {}
        if fields.slots is not None:
            body["slots"] = fields.slots
        if fields.description is not None:
            body["description"] = fields.description
        if fields.include_deferred is not None:
            body["include_deferred"] = fields.include_deferred
        # Airflow 2 takes several masks comma-separated in one parameter.
        params = (("update_mask", ",".join(body)),)
        return Request("PATCH", f"{self.prefix}/pools/{seg(name)}", params=params, json=body)

    def _is_error_shape(self, body: Mapping[str, Any]) -> bool:
        # Connexion's problem JSON: {"type", "title", "status", "detail"};
        # but a route /api/v1 lacks answers it with Flask's generic text.
        detail = body.get("detail")
        generic = isinstance(detail, str) and detail.startswith("The requested URL was not found")
        return "title" in body and "status" in body and not generic

    def is_auth_failure(self, response: Response) -> bool:
        # With its default public role, Airflow 2 answers 403 to every auth
        # failure (wrong password, unknown bearer token), not 401.
        return response.status in (401, 403)
