"""Airflow 3: ``/api/v2``, ``{"detail": ...}`` errors, JWTs from ``/auth/token``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from airfleet.dialects.base import Dialect, PoolFields, seg
from airfleet.protocol import Request, Response

__all__ = ["AirflowV2"]

DEFAULT_POOL = "default_pool"


class AirflowV2(Dialect):
    """The Airflow 3 REST API."""

    name: ClassVar[Literal["v1", "v2"]] = "v2"
    prefix: ClassVar[str] = "/api/v2"
    runs_since: ClassVar[str] = "run_after_gte"
    runs_newest_first: ClassVar[str] = "-run_after"
    login_style: ClassVar[Literal["basic", "jwt"]] = "jwt"

    def health(self) -> Request:
        return Request("GET", f"{self.prefix}/monitor/health")

    def trigger(
        self,
        dag_id: str,
        *,
        run_id: str,
        conf: Mapping[str, Any] | None,
        logical_date: str | None,
        note: str | None,
    ) -> Request:
        # Airflow 3 requires the logical_date key (null: a run without one,
        # where `{{ ds }}` is undefined) and rejects unknown fields.
        body: dict[str, Any] = {
            "dag_run_id": run_id,
            "logical_date": logical_date,
            "conf": dict(conf or {}),
        }
        if note is not None:
            body["note"] = note
        return Request("POST", f"{self.prefix}/dags/{seg(dag_id)}/dagRuns", json=body)

    def update_pool(self, name: str, fields: PoolFields, *, current: Mapping[str, Any]) -> Request:
        masks = [
            key
            for key, value in (
                ("slots", fields.slots),
                ("description", fields.description),
                ("include_deferred", fields.include_deferred),
            )
            if value is not None
        ]
        body: dict[str, Any]
        if name == DEFAULT_POOL:
            # default_pool takes only the masked fields; anything else is a 400.
            body = {key: getattr(fields, key) for key in masks}
        else:
            # Other pools must carry name, slots and include_deferred even
            # with a mask (422 otherwise); only the masked fields change.
            body = {
                "name": name,
                "slots": fields.slots if fields.slots is not None else current.get("slots", 0),
                "include_deferred": (
                    fields.include_deferred
                    if fields.include_deferred is not None
                    else bool(current.get("include_deferred", False))
                ),
            }
            if fields.description is not None:
                body["description"] = fields.description
        # Airflow 3 repeats the parameter for several masks.
        params = tuple(("update_mask", key) for key in masks)
        return Request("PATCH", f"{self.prefix}/pools/{seg(name)}", params=params, json=body)

    def _is_error_shape(self, body: Mapping[str, Any]) -> bool:
        # FastAPI's {"detail": <text or object>}; its bare "Not Found" is a
        # route it lacks (3.3 says {"error": "API route not found"} instead).
        return "detail" in body and body["detail"] != "Not Found"

    def is_auth_failure(self, response: Response) -> bool:
        # An expired JWT is a 401; a JWT this server cannot verify (signed by
        # another API server, or after a secret rotation) is a 403.
        if response.status == 401:
            return True
        return response.status == 403 and _detail(response.body) == "Invalid JWT token"


def _detail(body: Any) -> Any:
    return body.get("detail") if isinstance(body, dict) else None
