"""The Astro platform API of the simulated fleet: its organization, workspaces and statuses.

Served under ``/astro``: ``GET /astro/v1/organizations/{org}/deployments`` and
``.../workspaces``, with the shapes of Astro's v1 API (see DESIGN.md): offset
and limit paging with ``totalCount``, a ``workspaceIds`` filter, bearer auth
with the simulator's API token, and the documented per-token rate (GET 25/s)
enforced with 429 and ``Retry-After``. What a real platform does that a
client must survive is the default: pages smaller than the ``limit`` asked
for, no ``workspaceName`` on a deployment (the workspaces endpoint has it),
URLs without a scheme (when served over https) and with the API prefix, and
deployments that hibernate, whose Airflow answers nothing useful.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airfleet.sim.responses import reply
from airfleet.sim.state import SimDeployment
from airfleet.sim.stats import Window

__all__ = ["AstroEntry", "AstroOrg", "serve_platform"]

AIRFLOW_VERSIONS = {"v1": "2.11.0", "v2": "3.1.2"}
RUNTIME_VERSIONS = {"v1": "12.10.0", "v2": "3.1-2"}


@dataclass(slots=True)
class AstroEntry:
    """One deployment as the platform knows it."""

    id: str
    workspace_id: str
    status: str = "HEALTHY"
    development: bool = False


@dataclass
class AstroOrg:
    """An organization over the simulator's deployments, and what its API saw.

    ``page_max``: the most deployments one page holds, whatever ``limit``
    asks. ``limit_max``: a ``limit`` above it is refused with 400 (None:
    never). ``per_second``: GETs a token may make in any second; more get
    429 with ``Retry-After: 1``. ``workspace_names``: each deployment carries
    ``workspaceName`` (real answers may not). ``echo_credentials``: a
    refusal quotes the Authorization header it was sent. ``latency_ms``:
    how long each answer takes (an ``asyncio.sleep``). ``first_arrival_ms``:
    how much later than it was sent the first request arrives (a TLS
    handshake across the world), so it lands among the ones sent after it.
    """

    organization: str
    workspaces: dict[str, str]  # id -> name
    entries: dict[str, AstroEntry]  # deployment name -> entry
    page_max: int = 50
    limit_max: int | None = None
    per_second: float = 25.0
    workspace_names: bool = False
    echo_credentials: bool = False
    latency_ms: float = 0.0
    first_arrival_ms: float = 0.0
    # What the platform API saw.
    requests: Counter[str] = field(default_factory=Counter)
    rate_limited: int = 0
    refused: int = 0
    arrived: bool = False
    windows: defaultdict[str, Window] = field(default_factory=lambda: defaultdict(Window))
    limits_asked: list[int | None] = field(default_factory=list)

    def hibernating(self, name: str) -> bool:
        entry = self.entries.get(name)
        return entry is not None and entry.status == "HIBERNATING"

    def reset_stats(self) -> None:
        self.arrived = False
        self.requests.clear()
        self.rate_limited = 0
        self.refused = 0
        self.windows.clear()
        self.limits_asked.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "requests": sum(self.requests.values()),
            "requests_by_endpoint": dict(self.requests),
            "rate_limited": self.rate_limited,
            "refused": self.refused,
            # Arrivals in any one second per token, refused ones included.
            "max_per_second": max((w.peak for w in self.windows.values()), default=0),
            "limits_asked": list(self.limits_asked),
        }


async def serve_platform(
    request: web.Request,
    org: AstroOrg,
    deployments: dict[str, SimDeployment],
    *,
    api_token: str,
    now: float,
    tls: bool,
) -> web.Response:
    """Answer one platform API request (``/astro/v1/...``)."""
    if org.first_arrival_ms and not org.arrived:
        org.arrived = True
        await asyncio.sleep(org.first_arrival_ms / 1000.0)
        now = time.monotonic()
    org.arrived = True
    tail = request.match_info["tail"].strip("/").split("/")
    if request.method != "GET":
        return reply(405, {"message": "Method Not Allowed", "statusCode": 405})
    if (
        len(tail) != 4
        or tail[:2] != ["v1", "organizations"]
        or tail[3]
        not in (
            "deployments",
            "workspaces",
        )
    ):
        return reply(404, {"message": "Not Found", "statusCode": 404})
    endpoint = tail[3]
    org.requests[endpoint] += 1
    if org.latency_ms:
        await asyncio.sleep(org.latency_ms / 1000.0)
    header = request.headers.get("Authorization", "")
    token = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
    if token != api_token:
        org.refused += 1
        said = (
            f"Unauthorized: {header!r} is not a valid token"
            if org.echo_credentials
            else ("Unauthorized: invalid or expired token")
        )
        return reply(401, {"message": said, "statusCode": 401})
    window = org.windows[token[-8:]]
    if window.count(now) >= org.per_second:
        window.arrive(now)
        org.rate_limited += 1
        return reply(
            429,
            {"message": "Too Many Requests: rate limit exceeded", "statusCode": 429},
            {"Retry-After": "1"},
        )
    window.arrive(now)
    if tail[2] != org.organization:
        return reply(404, {"message": f"Organization {tail[2]} not found", "statusCode": 404})
    try:
        offset = int(request.query.get("offset", "0"))
        asked = int(request.query["limit"]) if "limit" in request.query else None
    except ValueError:
        return reply(400, {"message": "offset and limit must be integers", "statusCode": 400})
    org.limits_asked.append(asked)
    limit = 20 if asked is None else asked
    if offset < 0 or limit < 1 or (org.limit_max is not None and limit > org.limit_max):
        return reply(400, {"message": f"invalid offset or limit ({limit})", "statusCode": 400})
    count = min(limit, org.page_max)
    if endpoint == "workspaces":
        rows = [
            {"id": ident, "name": name, "organizationId": org.organization}
            for ident, name in org.workspaces.items()
        ]
        page = rows[offset : offset + count]
        return reply(
            200, {"workspaces": page, "limit": count, "offset": offset, "totalCount": len(rows)}
        )
    wanted = {w for value in request.query.getall("workspaceIds", []) for w in value.split(",")}
    host = request.host
    matching = [
        (name, entry)
        for name, entry in org.entries.items()
        if not wanted or entry.workspace_id in wanted
    ]
    page = [
        _item(org, name, entry, deployments[name], host, tls)
        for name, entry in matching[offset : offset + count]
    ]
    return reply(
        200, {"deployments": page, "limit": count, "offset": offset, "totalCount": len(matching)}
    )


def _item(
    org: AstroOrg, name: str, entry: AstroEntry, dep: SimDeployment, host: str, tls: bool
) -> dict[str, Any]:
    # As Astro gives it: no scheme, the API prefix on. A plain-http simulator
    # says http://, since a URL without a scheme means https.
    base = f"{host}/d/{name}" if tls else f"http://{host}/d/{name}"
    item: dict[str, Any] = {
        "id": entry.id,
        "name": name,
        "organizationId": org.organization,
        "workspaceId": entry.workspace_id,
        "status": entry.status,
        "airflowVersion": AIRFLOW_VERSIONS[dep.api],
        "astroRuntimeVersion": RUNTIME_VERSIONS[dep.api],
        "type": "STANDARD",
        "isDevelopmentMode": entry.development,
        "cloudProvider": "AWS",
        "region": "us-east-1",
        "webServerUrl": base,
        "webServerAirflowApiUrl": f"{base}/api/{dep.api}",
    }
    if org.workspace_names:
        item["workspaceName"] = org.workspaces[entry.workspace_id]
    return item
