"""Which API does a deployment speak? Ask ``/api/v2/version``, then ``/api/v1/version``."""

from __future__ import annotations

from collections.abc import Generator

from airfleet.dialects.base import Dialect
from airfleet.dialects.v1 import AirflowV1
from airfleet.dialects.v2 import AirflowV2
from airfleet.errors import ApiError
from airfleet.protocol import Request, Response

__all__ = ["DIALECTS", "DetectionConversation", "detect", "dialect_named"]

DIALECTS: dict[str, Dialect] = {"v1": AirflowV1(), "v2": AirflowV2()}

# A route that exists but wants credentials still proves the API version.
_PRESENT = frozenset({200, 401, 403})

DetectionConversation = Generator[Request, Response, tuple[Dialect, str | None]]


def dialect_named(name: str) -> Dialect:
    """The dialect for ``v1`` or ``v2``."""
    return DIALECTS[name]


def detect() -> DetectionConversation:
    """Conversation that returns the deployment's dialect and, if it said, its version.

    Detection runs once per deployment per run; its requests pass through the
    same limits and retries as any other.
    """
    for dialect in (DIALECTS["v2"], DIALECTS["v1"]):
        response = yield dialect.version()
        if response.status in _PRESENT:
            version = response.body.get("version") if isinstance(response.body, dict) else None
            return dialect, version if isinstance(version, str) else None
        if response.status != 404:
            raise ApiError(
                response.status,
                f"cannot tell the Airflow API version: {dialect.prefix}/version answered "
                f"{response.status}; set 'api: v1' or 'api: v2' on the deployment",
            )
    raise ApiError(
        404,
        "neither /api/v2/version nor /api/v1/version exists: is the URL the Airflow "
        "(or Astro Deployment) URL, without /api/...?",
    )
