"""A scripted in-memory transport for pure engine unit tests (no network)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from airfleet.transport import HttpRequest, HttpResponse

Handler = Callable[[HttpRequest], HttpResponse | Exception]


def answer(status: int, body: Any = None, **headers: str) -> HttpResponse:
    raw = b"" if body is None else json.dumps(body).encode()
    return HttpResponse(status, {k.replace("_", "-").lower(): v for k, v in headers.items()}, raw)


class MockTransport:
    """Answers each request with ``handler(request)``; records what it was sent."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.sent: list[HttpRequest] = []
        self.closed = False

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.sent.append(request)
        outcome = self.handler(request)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True
