"""Which API does a deployment speak, and what to say when neither answers.

Most deployments never need :func:`detect`: the engine lets a call's own
first request settle the version (see ``Engine``). The probe here runs only
when that request proved nothing (a server error, a refused credential),
and is sent with the deployment's credential, since a gateway in front of
Airflow answers every anonymous request itself.
"""

from __future__ import annotations

from collections.abc import Generator

from airfleet.dialects.base import Dialect
from airfleet.dialects.v1 import AirflowV1
from airfleet.dialects.v2 import AirflowV2
from airfleet.errors import ApiError
from airfleet.protocol import Request, Response

__all__ = ["DIALECTS", "DetectionConversation", "detect", "dialect_named", "no_api_error"]

DIALECTS: dict[str, Dialect] = {"v1": AirflowV1(), "v2": AirflowV2()}

DetectionConversation = Generator[Request, Response, tuple[Dialect, str | None]]

_URL_HINT = "is the URL the Airflow (or Astro Deployment) URL, without /api/...?"


def dialect_named(name: str) -> Dialect:
    """The dialect for ``v1`` or ``v2``."""
    return DIALECTS[name]


def detect() -> DetectionConversation:
    """Conversation that returns the deployment's dialect and its version.

    Only the version JSON (``{"version": ...}`` from a route that exists)
    proves a version: an HTML page with 200 (Airflow 3's UI under a wrong
    prefix), a refusal or a redirect (a gateway) prove nothing.
    """
    v2, v1 = DIALECTS["v2"], DIALECTS["v1"]
    first = yield v2.version()
    version = _version(v2, first)
    if version is not None:
        return v2, version
    if not v2.route_missing(first):
        raise _no_proof(v2, first)
    second = yield v1.version()
    version = _version(v1, second)
    if version is not None:
        return v1, version
    if v1.route_missing(second):
        raise no_api_error(v1, second, declared=False)
    raise _no_proof(v1, second)


def no_api_error(dialect: Dialect, response: Response, *, declared: bool) -> ApiError:
    """The error for an answer that says this API is not at the deployment's URL.

    ``declared``: the API was set in fleet.yaml (else both were tried).
    It is a URL or API-version problem, never a credentials one.
    """
    body = response.body
    error = body.get("error") if isinstance(body, dict) else None
    if dialect.name == "v1" and isinstance(error, str) and "removed in Airflow 3" in error:
        if declared:
            return ApiError(
                response.status,
                "this is Airflow 3, where /api/v1 has been removed: "
                "set 'api: v2' (or 'api: auto') on the deployment",
            )
        return ApiError(
            response.status, f"/api/v2 is missing but /api/v1 is Airflow 3's: {_URL_HINT}"
        )
    said = dialect.error_message(response)
    if not declared:
        return ApiError(
            response.status, f"neither /api/v2 nor /api/v1 answers here ({said}): {_URL_HINT}"
        )
    other = "v1" if dialect.name == "v2" else "v2"
    major = "2" if dialect.name == "v2" else "3"
    return ApiError(
        response.status,
        f"no Airflow API at {dialect.prefix} here ({said}): {_URL_HINT} "
        f"If this is Airflow {major}, set 'api: {other}' (or 'api: auto') on the deployment",
    )


def _version(dialect: Dialect, response: Response) -> str | None:
    body = response.body
    if not (response.ok and isinstance(body, dict) and dialect.is_own_answer(response)):
        return None
    version = body.get("version")
    return version if isinstance(version, str) and version else None


def _no_proof(dialect: Dialect, response: Response) -> ApiError:
    return ApiError(
        response.status,
        f"cannot tell the Airflow version: {dialect.prefix}/version answered "
        f"{response.status} ({dialect.error_message(response)}); "
        "set 'api: v1' or 'api: v2' on the deployment, or fix what the answer says",
    )
