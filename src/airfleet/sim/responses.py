"""Building answers: JSON replies, Airflow 2 problem JSON, and a dropped connection."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

__all__ = ["drop_connection", "problem", "reply"]

_DOCS = "https://airflow.apache.org/docs/apache-airflow/2.11.2/stable-rest-api-ref.html"


def reply(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON answer."""
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type="application/json",
        headers=headers,
    )


def problem(status: int, title: str, detail: str | None) -> dict[str, Any]:
    """Airflow 2's problem JSON body."""
    anchor = title.replace(" ", "")
    return {
        "type": f"{_DOCS}#section/Errors/{anchor}",
        "title": title,
        "status": status,
        "detail": detail,
    }


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
