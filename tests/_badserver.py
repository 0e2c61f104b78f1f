"""A loopback HTTP server that answers badly on purpose (real HTTP, not a mocked transport).

Every path under ``/<case>/`` gets that case's answer, whatever the method,
so a deployment whose URL is ``{url}/<case>`` answers every API call that way.
A second server, the *other origin*, records every request it receives: a
redirect points there, so a test can prove nothing (no Authorization header,
no client secret) ever reaches it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["BIG_OK_POOLS", "CASES", "HUGE_BYTES", "BadServer", "bad_server"]

# Past the transport's 8 MiB cap, and (for the valid big answer) well under it
# but far larger than one socket read.
HUGE_BYTES = 9 * 1024 * 1024
BIG_OK_BYTES = 3 * 1024 * 1024

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>Sign in</title></head>"
    b"<body><h1>Please sign in</h1><form method='post'></form></body></html>"
)
NGINX_502 = (
    b"<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>"
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


_POOL = {
    "name": "",
    "slots": 1,
    "occupied_slots": 0,
    "queued_slots": 0,
    "open_slots": 1,
    "description": "x" * 200,
    "include_deferred": False,
}


def _pool_count(size: int) -> int:
    return size // (len(json.dumps(_POOL)) + 10)


def _big_pools(size: int) -> bytes:
    """A valid pool list of about ``size`` bytes."""
    pool = _POOL
    count = _pool_count(size)
    pools = [{**pool, "name": f"pool_{i:06d}"} for i in range(count)]
    return json.dumps({"pools": pools, "total_entries": count}).encode()


def _json(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json")


@dataclass
class BadServer:
    """Where the bad server and the other origin listen, and what the other origin saw."""

    url: str
    other_url: str
    other_seen: list[dict[str, str]] = field(default_factory=list)

    def deployment_url(self, case: str) -> str:
        return f"{self.url}/{case}"


def _cases(other_url: str, big_body: bytes, huge_body: bytes) -> dict[str, Handler]:
    async def html(_: web.Request) -> web.Response:
        return web.Response(status=200, body=HTML_PAGE, content_type="text/html")

    async def html_502(_: web.Request) -> web.Response:
        return web.Response(status=502, body=NGINX_502, content_type="text/html")

    async def empty(_: web.Request) -> web.Response:
        return web.Response(status=200, body=b"", content_type="application/json")

    async def truncated(_: web.Request) -> web.Response:
        # A complete HTTP answer whose JSON stops half-way.
        return _json(200, b'{"dag_run_id": "x", "state": "que')

    async def wrong_shape(_: web.Request) -> web.Response:
        return _json(200, b'[{"unexpected": true}, 2, "three"]')

    async def wrong_fields(_: web.Request) -> web.Response:
        return _json(200, b'{"dag_run_id": 17, "pools": "none", "dags": {"a": 1}, "state": null}')

    async def huge(_: web.Request) -> web.Response:
        return _json(200, huge_body)

    async def huge_chunked(request: web.Request) -> web.StreamResponse:
        # No Content-Length: the client cannot know the size up front.
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        step = 256 * 1024
        for start in range(0, len(huge_body), step):
            try:
                await response.write(huge_body[start : start + step])
            except (ConnectionError, RuntimeError):
                break  # the client stopped reading, as it should
        return response

    async def cut_short(request: web.Request) -> web.StreamResponse:
        # Content-Length promises more than is sent before the connection closes.
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = 4096
        await response.prepare(request)
        await response.write(b'{"pools": [' + b" " * 1000)
        assert request.transport is not None
        request.transport.close()
        return response

    async def cut_short_huge(request: web.Request) -> web.StreamResponse:
        # The same past the cap: the client reads in capped pieces then.
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.content_length = HUGE_BYTES
        await response.prepare(request)
        await response.write(huge_body[: 1024 * 1024])
        assert request.transport is not None
        request.transport.close()
        return response

    async def big_ok(_: web.Request) -> web.Response:
        return _json(200, big_body)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{other_url}/stolen{request.path_qs}")

    async def redirect_301(request: web.Request) -> web.Response:
        raise web.HTTPMovedPermanently(f"{other_url}/stolen{request.path_qs}")

    return {
        "html": html,
        "html_502": html_502,
        "empty": empty,
        "truncated": truncated,
        "wrong_shape": wrong_shape,
        "wrong_fields": wrong_fields,
        "huge": huge,
        "huge_chunked": huge_chunked,
        "cut_short": cut_short,
        "cut_short_huge": cut_short_huge,
        "big_ok": big_ok,
        "redirect": redirect,
        "redirect_301": redirect_301,
    }


BIG_OK_POOLS = _pool_count(BIG_OK_BYTES)

CASES = (
    "html",
    "html_502",
    "empty",
    "truncated",
    "wrong_shape",
    "wrong_fields",
    "huge",
    "huge_chunked",
    "cut_short",
    "cut_short_huge",
    "redirect",
    "redirect_301",
)


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on a free loopback port; the caller cleans the runner up."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port: int = runner.addresses[0][1]
    return runner, port


@asynccontextmanager
async def bad_server() -> AsyncIterator[BadServer]:
    """Serve the bad answers and the other origin on free loopback ports."""
    other = web.Application()
    box = BadServer(url="", other_url="")

    async def record(request: web.Request) -> web.Response:
        box.other_seen.append({"path": request.path_qs, **dict(request.headers)})
        return _json(200, b'{"stolen": true}')

    other.router.add_route("*", "/{tail:.*}", record)
    other_runner, other_port = await _serve(other)
    # A different origin: another port (and the name, not the address).
    box.other_url = f"http://localhost:{other_port}"

    cases = _cases(box.other_url, _big_pools(BIG_OK_BYTES), _big_pools(HUGE_BYTES))

    async def dispatch(request: web.Request) -> web.StreamResponse:
        handler = cases.get(request.match_info["case"])
        if handler is None:
            return _json(404, b'{"detail": "no such case"}')
        return await handler(request)

    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_route("*", "/{case}/{tail:.*}", dispatch)
    runner, port = await _serve(app)
    box.url = f"http://127.0.0.1:{port}"
    try:
        yield box
    finally:
        await runner.cleanup()
        await other_runner.cleanup()
