"""The simulator's HTTP surface: one catch-all route per area, dispatched by hand.

aiohttp's router would be fine for a few routes; with 10,000 deployments and
thousands of requests a second, one regex-free split of the path is cheaper.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from airfleet.sim import endpoints
from airfleet.sim.astro import serve_platform
from airfleet.sim.responses import (
    drop_connection,
    gateway_refusal,
    problem,
    reply,
    ui_page,
    v1_not_found_page,
)
from airfleet.sim.state import SimDeployment
from airfleet.sim.world import SimWorld

__all__ = ["build_app"]

V2_GONE = {
    "error": "/api/v1 has been removed in Airflow 3, "
    "please use its upgraded version /api/v2 instead."
}
Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]
_R = TypeVar("_R", bound=web.StreamResponse)


def build_app(sim: SimWorld) -> web.Application:
    """The server for ``sim``: the Airflow API per deployment, token and control endpoints."""
    app = web.Application(client_max_size=4 * 1024 * 1024)
    handler = _Handler(sim)
    app.router.add_route("*", "/d/{name}/{tail:.*}", handler.deployment)
    app.router.add_post("/oauth/token", handler.oauth_token)
    app.router.add_route("*", "/astro/{tail:.*}", handler.platform)
    app.router.add_get("/_sim/stats", handler.stats)
    app.router.add_post("/_sim/reset_stats", handler.reset_stats)
    app.router.add_post("/_sim/revoke", handler.revoke)
    app.router.add_patch("/_sim/faults", handler.set_faults)
    return app


class _Handler:
    def __init__(self, sim: SimWorld) -> None:
        self.sim = sim

    # -- control endpoints ------------------------------------------------------------

    async def stats(self, request: web.Request) -> web.Response:
        detail = request.query.get("detail", "1") != "0"
        return reply(200, self.sim.stats(detail=detail))

    async def reset_stats(self, request: web.Request) -> web.Response:
        self.sim.reset_stats()
        return reply(200, {"ok": True})

    async def revoke(self, request: web.Request) -> web.Response:
        self.sim.revoke_all_tokens()
        return reply(200, {"ok": True})

    async def set_faults(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            self.sim.set_faults(**changes)
        except (ValueError, TypeError) as exc:
            return reply(400, {"detail": str(exc)})
        return reply(200, {"ok": True})

    # -- token endpoints --------------------------------------------------------------

    def _token_outage(self) -> bool:
        faults = self.sim.faults
        if faults.token_outage_s <= 0:
            return False
        since = time.monotonic() - self.sim.started_at
        start = faults.token_outage_start_s
        return start <= since < start + faults.token_outage_s

    async def oauth_token(self, request: web.Request) -> web.Response:
        self.sim.stats_.oauth_requests += 1
        if self._token_outage():
            self.sim.stats_.token_fetch_failures += 1
            return reply(503, {"error": "temporarily_unavailable"})
        body = await _json_body(request)
        creds = self.sim.credentials
        good = (
            isinstance(body, dict)
            and body.get("client_id") == creds.client_id
            and body.get("client_secret") == creds.client_secret
            and body.get("grant_type", "client_credentials") == "client_credentials"
        )
        if not good:
            self.sim.stats_.token_fetch_failures += 1
            said = f"Unauthorized: {body}" if self.sim.faults.echo_credentials else "Unauthorized"
            return self._compressed(
                reply(401, {"error": "access_denied", "error_description": said})
            )
        self.sim.stats_.oauth_fetches += 1
        token = self.sim.tokens.issue_oauth(time.time())
        ttl = self.sim.faults.token_ttl_s
        return self._compressed(
            reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl})
        )

    def _compressed(self, response: _R) -> _R:
        # A streamed answer (a dropped connection) is already under way.
        if self.sim.faults.compress and isinstance(response, web.Response):
            response.enable_compression()
            self.sim.stats_.faults["compressed"] += 1
        return response

    async def _jwt_token(self, request: web.Request, dep: SimDeployment) -> web.Response:
        if dep.api != "v2":
            # Airflow 2 has no login endpoint; a client that tried one (to
            # tell the version) had a token request refused, as it counts it.
            self.sim.stats_.token_fetch_failures += 1
            return v1_not_found_page()
        if self._token_outage():
            self.sim.stats_.token_fetch_failures += 1
            return reply(503, {"detail": "Service Unavailable"})
        body = await _json_body(request)
        creds = self.sim.credentials
        if not (
            isinstance(body, dict)
            and body.get("username") == creds.username
            and body.get("password") == creds.password
        ):
            self.sim.stats_.token_fetch_failures += 1
            if self.sim.faults.echo_credentials and isinstance(body, dict):
                said = f"Invalid credentials for {body.get('username')}:{body.get('password')}"
                return reply(401, {"detail": said})
            return reply(401, {"detail": "Invalid credentials"})
        self.sim.stats_.jwt_fetches[dep.name] += 1
        token = self.sim.tokens.issue_jwt(
            dep.name, dep.jwt_secret, time.time(), self.sim.faults.token_ttl_s
        )
        return reply(201, {"access_token": token})

    # -- the Astro platform API --------------------------------------------------------

    async def platform(self, request: web.Request) -> web.Response:
        astro = self.sim.astro
        if astro is None:
            return reply(404, {"detail": "the Astro platform API is not enabled"})
        return await serve_platform(
            request,
            astro,
            self.sim.deployments,
            api_token=self.sim.credentials.api_token,
            now=time.monotonic(),
            tls=self.sim.served_over_tls,
        )

    # -- deployments ------------------------------------------------------------------

    async def deployment(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        dep = self.sim.deployments.get(name)
        if dep is None:
            return reply(404, {"detail": f"no simulated deployment {name!r}"})
        stats = self.sim.stats_
        stats.arrive(name, time.monotonic())
        astro = self.sim.astro
        if astro is not None and astro.hibernating(name):
            stats.leave(name)
            return reply(503, {"message": "This Deployment is hibernating"})
        try:
            return self._compressed(await self._serve(request, dep))
        finally:
            stats.leave(name)

    async def _serve(self, request: web.Request, dep: SimDeployment) -> web.StreamResponse:
        sim = self.sim
        faults = sim.faults
        if faults.latency_ms or faults.latency_spread_ms:
            spread = faults.latency_spread_ms
            delay = faults.latency_ms + (sim.rng.uniform(-spread, spread) if spread else 0.0)
            await asyncio.sleep(max(0.0, delay) / 1000.0)
        tail = request.match_info["tail"]
        login = tail == "auth/token" and request.method == "POST"
        passed = False  # the gateway checked the credential already
        if faults.gateway and not login:
            refusal = self._authenticate(request, dep, gateway=True)
            if refusal is not None:
                return refusal
            passed = True
        if login:
            return await self._jwt_token(request, dep)
        parts = tail.split("/")
        if len(parts) < 2 or parts[0] != "api" or parts[1] not in ("v1", "v2"):
            # A wrong path prefix: Airflow 3 answers with its UI (GET) or 405.
            if dep.api == "v1":
                return v1_not_found_page()
            if request.method == "GET":
                return ui_page()
            return reply(405, {"detail": "Method Not Allowed"})
        if parts[1] != dep.api:
            if dep.api == "v2":
                return reply(404, V2_GONE)
            return v1_not_found_page()
        route = parts[2:]
        public = route in (["version"], ["health"], ["monitor", "health"])
        injected = self._inject(dep)
        if injected is not None:
            return await injected(request)
        if not public and not passed:
            refusal = self._authenticate(request, dep)
            if refusal is not None:
                return refusal
        api = endpoints.Api(sim, dep, request)
        response = await api.dispatch(request.method, route)
        if sim.rng.random() < faults.slow_rate:
            sim.stats_.faults["slow"] += 1
            await asyncio.sleep(faults.slow_s)
        return response

    def _inject(self, dep: SimDeployment) -> Answer | None:
        """A fault that answers instead of the API, or None."""
        sim = self.sim
        faults = sim.faults
        if faults.rate_limit_per_s is not None:
            window = sim.limit_windows[dep.name]
            if window.count(time.monotonic()) >= faults.rate_limit_per_s:
                sim.stats_.faults["rate_limited"] += 1
                body = (
                    {"detail": "Rate limit exceeded"}
                    if dep.api == "v2"
                    else problem(429, "Too Many Requests", "Rate limit exceeded")
                )

                async def too_many(_: web.Request) -> web.Response:
                    return reply(429, body, {"Retry-After": "1"})

                return too_many
            window.arrive(time.monotonic())
        if faults.throttle_rate and sim.rng.random() < faults.throttle_rate:
            sim.stats_.faults["throttled"] += 1
            throttled = (
                {"detail": "Too many requests"}
                if dep.api == "v2"
                else problem(429, "Too Many Requests", "Too many requests")
            )
            retry_after = {"Retry-After": f"{faults.throttle_retry_after_s:g}"}

            async def throttle(_: web.Request) -> web.Response:
                return reply(429, throttled, retry_after)

            return throttle
        if faults.error_rate and sim.rng.random() < faults.error_rate:
            sim.stats_.faults["error"] += 1
            status = sim.rng.choice((500, 502, 503))

            async def error(_: web.Request) -> web.Response:
                return reply(status, {"detail": "simulated server error"})

            return error
        if faults.reset_rate and sim.rng.random() < faults.reset_rate:
            sim.stats_.faults["reset"] += 1
            return drop_connection
        return None

    def _authenticate(
        self, request: web.Request, dep: SimDeployment, *, gateway: bool = False
    ) -> web.Response | None:
        sim = self.sim
        header = request.headers.get("Authorization")
        verdict = sim.tokens.check(
            header,
            deployment=dep.name,
            api=dep.api,
            secret=dep.jwt_secret,
            now=time.time(),
            ttl=sim.faults.token_ttl_s,
        )
        if verdict.result == "ok":
            sim.stats_.credential(verdict.label, time.monotonic())
            return None
        sim.stats_.auth_failures += 1
        echo = f"Authorization: {header}" if sim.faults.echo_credentials and header else None
        if gateway:
            sim.stats_.faults["gateway_refused"] += 1
            # A gateway quotes a cut header, as logs and excerpts often do.
            return gateway_refusal(echo[:-5] + "..." if echo else None)
        if dep.api == "v1":
            status = sim.v1_auth_failure_status
            title = "Unauthorized" if status == 401 else "Forbidden"
            return reply(status, problem(status, title, f"refused {echo}" if echo else None))
        if verdict.result == "missing":
            return reply(401, {"detail": "Not authenticated"})
        detail = "Token Expired" if verdict.result == "expired" else "Invalid JWT token"
        if echo:
            detail = f"{detail}: {echo}"
        status = 401 if verdict.result == "expired" else 403
        return reply(status, {"detail": detail})


async def _json_body(request: web.Request) -> Any:
    try:
        return await request.json()
    except ValueError:
        return None
