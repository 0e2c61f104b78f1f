"""Building answers: JSON replies, Airflow 2 problem JSON, and a dropped connection."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = [
    "drop_connection",
    "gateway_refusal",
    "problem",
    "reply",
    "server_error_page",
    "ui_page",
    "v1_not_found_page",
]

_DOCS = "https://airflow.apache.org/docs/apache-airflow/2.11.2/stable-rest-api-ref.html"


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


# The "type" anchors real Airflow 2.11.2 uses, by status (any other: Unknown).
_ANCHORS = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "PermissionDenied",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "AlreadyExists",
}

# What Airflow 2's webserver answers for a path outside its API (e.g. /api/v2/...
# or /auth/token): its HTML 404 page, not problem JSON.
_V1_NOT_FOUND_PAGE = """
<!DOCTYPE html>
<html lang="en">
  <head>
    <title>Airflow 404</title>
  </head>
  <body>
    <h1>Airflow 404</h1>
    <p>Page cannot be found.</p>
  </body>
</html>
"""


# What Airflow 3's API server answers for a GET outside its API: its UI.
_UI_PAGE = """<!doctype html>
<html style="height: 100%" dir="ltr" lang="en">
  <head><meta charset="UTF-8" /><base href="/" /><title>Airflow</title></head>
  <body><div id="root"></div></body>
</html>
"""

# What an auth gateway in front of a deployment answers without a good credential.
_GATEWAY_PAGE = """<html>
<head><title>401 Authorization Required</title></head>
<body><center><h1>401 Authorization Required</h1></center><hr><center>gateway</center></body>
</html>
"""


def problem(status: int, title: str, detail: str | None) -> dict[str, Any]:
    """Airflow 2's problem JSON body."""
    anchor = _ANCHORS.get(status, "Unknown")
    return {
        "type": f"{_DOCS}#section/Errors/{anchor}",
        "title": title,
        "status": status,
        "detail": detail,
    }


# What Airflow 2's webserver answers when a request raises (a run id outside
# its pattern fails in the ORM, outside the API's error handling).
_SERVER_ERROR_PAGE = """<!DOCTYPE html>
<html lang="en">
  <head><title>Airflow 500</title></head>
  <body><h1>Ooops!</h1><pre>Something bad has happened.</pre></body>
</html>
"""


def server_error_page() -> web.Response:
    """Airflow 2's HTML 500."""
    return web.Response(status=500, text=_SERVER_ERROR_PAGE, content_type="text/html")


def v1_not_found_page() -> web.Response:
    """Airflow 2's 404 for a path outside ``/api/v1``."""
    return web.Response(status=404, text=_V1_NOT_FOUND_PAGE, content_type="text/html")


def ui_page() -> web.Response:
    """Airflow 3's answer to a GET outside its API (a wrong path prefix): 200 HTML."""
    return web.Response(status=200, text=_UI_PAGE, content_type="text/html")


def gateway_refusal(echo: str | None = None) -> web.Response:
    """An auth gateway's 401: an HTML page, or JSON quoting ``echo`` (the
    gateways that echo answer API clients in JSON)."""
    headers = {"WWW-Authenticate": "Bearer"}
    if echo is not None:
        return reply(401, {"detail": f"gateway refused {echo}"}, headers)
    return web.Response(status=401, text=_GATEWAY_PAGE, content_type="text/html", headers=headers)


async def drop_connection(request: web.Request) -> web.StreamResponse:
    """Send headers and part of a body, then cut the connection."""
    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
    response.content_length = 4096
    await response.prepare(request)
    await response.write(b'{"partial": ')
    transport = request.transport
    if transport is not None:
        transport.close()
    return response
