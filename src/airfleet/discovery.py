"""Discovery: the deployments an Astro organization has, read from its platform API.

A fleet file's ``discover:`` sources (:class:`~airfleet.inventory.AstroSource`)
are asked once per invocation, before anything is planned: :func:`discover`
reads every page of ``GET {api_url}/v1/organizations/{org}/deployments``
(and of ``.../workspaces`` when a deployment comes without its workspace's
name) and returns a fleet of the static deployments plus the discovered
ones, each with its API version declared from ``airflowVersion``, so no
detection request is ever sent to it.

What the platform says is taken as it is, one deployment at a time: a
hibernating one, or one without a usable Airflow API URL yet, is kept in the
fleet but marked ``unavailable`` (its calls are skipped with that reason);
one odd entry never fails the whole discovery. A failure to read the
platform itself (a refused token, an unreachable API, a page that is not the
API's JSON) is a :class:`~airfleet.errors.DiscoveryError`: nothing has been
sent to any deployment.

Requests to the platform are paced per token with the engine's
:class:`~airfleet.limits.Pacer` (GCRA, at the documented 25 GETs a second),
one at a time, with a guard over answers (see :class:`_Lane`), and
retried with the engine's :class:`~airfleet.retry.RetryPolicy`: a 429 waits
at least its ``Retry-After``.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import random
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import anyio

from airfleet import redaction
from airfleet.clock import Clock, SystemClock
from airfleet.errors import ConfigError, DiscoveryError, TransportError
from airfleet.events import AttemptFinished, Event
from airfleet.inventory import AstroSource, Deployment, Fleet, Secret, server_of
from airfleet.limits import WINDOW_S, Pacer
from airfleet.network import is_loopback
from airfleet.retry import RetryPolicy
from airfleet.transport import AiohttpTransport, HttpRequest, HttpResponse, Transport

__all__ = ["PAGE_SIZE", "astro_api_url", "deployment_from_astro", "discover"]

# Asked for per page (the API's default is 20): 250 deployments in 3 pages.
PAGE_SIZE = 100
HIBERNATING = "HIBERNATING"
_NAME_RUN = re.compile(r"[^A-Za-z0-9._-]+")
_TAG_RUN = re.compile(r"[^a-z0-9._-]+")
_API_SUFFIX = re.compile(r"/api/v[12]/?$")
# A DNS name or an IP address (an IPv6 one is unbracketed by urlsplit).
_HOST = re.compile(r"[A-Za-z0-9.-]+|[0-9A-Fa-f:.]+")
_LABEL = "astro platform"

Listener = Callable[[Event], None]


async def discover(
    fleet: Fleet,
    *,
    transport: Transport | None = None,
    clock: Clock | None = None,
    listeners: Sequence[Listener] = (),
    seed: int | None = None,
) -> Fleet:
    """``fleet`` with the deployments its ``discovery`` sources list added to its own.

    Sources are read concurrently; sources sharing a token share its rate.
    Raises :class:`~airfleet.errors.DiscoveryError` when a platform cannot be
    read, and :class:`~airfleet.errors.ConfigError` when a discovered
    deployment has the name or URL of a static one.
    """
    if not fleet.discovery:
        return fleet
    own = transport is None
    sender: Transport = transport or AiohttpTransport()
    clock = clock or SystemClock()
    lanes: dict[Secret, _Lane] = {}
    found: list[list[Deployment]] = [[] for _ in fleet.discovery]
    rng = random.Random(seed)

    async def one(index: int, source: AstroSource) -> None:
        lane = lanes.get(source.token)
        if lane is None:
            pacer = Pacer(source.max_per_second, clock=clock)
            lane = lanes[source.token] = _Lane(pacer, clock)
        platform = _Platform(source, sender, lane, clock, rng, listeners)
        found[index] = await platform.deployments()

    try:
        async with anyio.create_task_group() as group:
            for index, source in enumerate(fleet.discovery):
                group.start_soon(one, index, source)
    except BaseExceptionGroup as group_error:
        # The first failure says it all; the others are the same outage.
        first = group_error.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None
    finally:
        if own:
            await sender.aclose()
    discovered = _merge(fleet, found)
    return dataclasses.replace(fleet, deployments=(*fleet.deployments, *discovered), discovery=())


def astro_api_url(value: str) -> str | None:
    """The deployment URL in a ``webServerAirflowApiUrl``, or None if it is not one.

    The platform gives it without a scheme (https, as the Astro CLI assumes)
    and with the API's prefix, which airfleet adds itself per version.
    """
    url = value.strip()
    if not url:
        return None
    if "://" not in url:
        url = "https://" + url
    url = _API_SUFFIX.sub("", url).rstrip("/")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host or port == 0:
        return None
    if not _HOST.fullmatch(parts.hostname or ""):
        return None
    if "@" in parts.netloc or parts.query or parts.fragment or any(c.isspace() for c in url):
        return None
    if parts.scheme == "http" and not is_loopback(host):
        return None  # a credential goes with every request: https only, off this machine
    return url


def deployment_from_astro(
    item: Mapping[str, Any], source: AstroSource, workspace_name: str | None
) -> Deployment | None:
    """One platform entry as a Deployment (None: it is not a deployment at all).

    Hibernating deployments and those without a usable API URL are kept,
    marked ``unavailable``; every other status is attempted and carried in
    ``status``.
    """
    ident = item.get("id")
    raw_name = item.get("name")
    if not isinstance(ident, str) or not ident or not isinstance(raw_name, str):
        return None
    name = _NAME_RUN.sub("-", raw_name).strip("-") or ident
    status = item.get("status") if isinstance(item.get("status"), str) else None
    version = item.get("airflowVersion")
    major = version.split(".", 1)[0] if isinstance(version, str) else ""
    api = {"2": "v1", "3": "v2"}.get(major, "auto")
    tags = {_tag(workspace_name or str(item.get("workspaceId") or ""))}
    if major in ("2", "3"):
        tags.add(f"airflow{major}")
    if item.get("isDevelopmentMode") is True:
        tags.add("dev")
    for tag, globs in source.tags.items():
        if any(fnmatch.fnmatchcase(name, g) for g in globs):
            tags.add(tag)
    tags.discard("")
    raw_url = item.get("webServerAirflowApiUrl")
    url = astro_api_url(raw_url) if isinstance(raw_url, str) else None
    unavailable = None
    if status == HIBERNATING:
        unavailable = "hibernating (Astro status HIBERNATING)"
    elif url is None:
        shown = redaction.scrub(raw_url[:120]) if isinstance(raw_url, str) and raw_url else ""
        unavailable = (
            f"the platform gives no usable Airflow API URL ({shown!r})"
            if shown
            else f"the platform gives no Airflow API URL yet (status {status or 'unknown'})"
        )
    return dataclasses.replace(
        source.template,
        name=name,
        url=url or f"https://unavailable.invalid/{ident}",
        tags=frozenset(tags),
        api=api,  # type: ignore[arg-type]
        status=status,
        unavailable=unavailable,
    )


class _Lane:
    """One token's requests: one at a time, on the pacer's schedule, and never more
    than the rate's worth answered within a window of the next departure.

    The pacer spaces departures; what the platform counts is arrivals, which
    a slow first request (its TLS handshake) can push close to the next
    ones: paced by departures alone, 26 landed in one of its seconds. A
    request arrives between its departure and its answer, and, one at a
    time, every earlier one was answered before the next leaves; so if fewer
    than the rate's worth were answered within the last window, no window
    of the platform's can hold more. When answers take longer than the
    interval, this costs nothing (benchmarks/README.md, "Discovery").
    """

    def __init__(self, pacer: Pacer, clock: Clock) -> None:
        self.pacer = pacer
        self.lock = anyio.Lock()
        self._clock = clock
        self._most = int(pacer.per_second) or 1
        self._answers: deque[float] = deque()

    async def depart(self) -> None:
        """Wait for the window to hold room, then for the pacer's slot."""
        clock, answers = self._clock, self._answers
        while True:
            now = clock.now()
            while answers and answers[0] + WINDOW_S <= now:
                answers.popleft()
            if len(answers) < self._most:
                break
            await clock.sleep(answers[0] + WINDOW_S - now)
        await self.pacer.book()

    def answered(self) -> None:
        self._answers.append(self._clock.now())


@dataclass(slots=True)
class _Found:
    deployment: Deployment
    ident: str
    workspace: str


class _Platform:
    """One source's platform API: paced, retried, paged GETs."""

    def __init__(
        self,
        source: AstroSource,
        transport: Transport,
        lane: _Lane,
        clock: Clock,
        rng: random.Random,
        listeners: Sequence[Listener],
    ) -> None:
        self.source = source
        self._transport = transport
        self._lane = lane
        self._clock = clock
        self._rng = rng
        self._listeners = listeners
        self._policy = RetryPolicy(retries=source.retries, timeout_s=source.timeout_s)
        self._base = f"{source.api_url}/v1/organizations/{quote(source.organization, safe='')}"
        self._headers = {
            "Authorization": f"Bearer {source.token.reveal()}",
            "Accept": "application/json",
        }

    async def deployments(self) -> list[Deployment]:
        source = self.source
        filters = tuple(("workspaceIds", w) for w in source.workspaces)
        items = await self._pages("/deployments", "deployments", filters)
        wanted = set(source.workspaces)
        items = [i for i in items if not wanted or i.get("workspaceId") in wanted]
        names: dict[str, str] = {}
        if any(not isinstance(i.get("workspaceName"), str) for i in items):
            for entry in await self._pages("/workspaces", "workspaces", ()):
                if isinstance(entry.get("id"), str) and isinstance(entry.get("name"), str):
                    names[entry["id"]] = entry["name"]
        found: list[_Found] = []
        for item in items:
            workspace_id = str(item.get("workspaceId") or "")
            given = item.get("workspaceName")
            workspace = given if isinstance(given, str) else names.get(workspace_id)
            deployment = deployment_from_astro(item, source, workspace)
            if deployment is not None:
                found.append(_Found(deployment, str(item["id"]), _tag(workspace or workspace_id)))
        return _unique_names(found)

    async def _pages(
        self, path: str, key: str, filters: tuple[tuple[str, str], ...]
    ) -> list[Mapping[str, Any]]:
        items: dict[str, Mapping[str, Any]] = {}
        offset = 0
        limit: int | None = PAGE_SIZE
        while True:
            paging = (("offset", str(offset)),) + ((("limit", str(limit)),) if limit else ())
            try:
                body = await self._get(path, (*paging, *filters))
            except _Refused as refused:
                if limit is not None and offset == 0 and refused.status in (400, 422):
                    limit = None  # a page larger than it allows: its default it is
                    continue
                raise self._refusal(path, refused.response) from None
            page = body.get(key) if isinstance(body, dict) else None
            if not isinstance(page, list):
                raise self._error(
                    path, f"the answer has no {key!r} list; is api_url the Astro API?"
                )
            before = len(items)
            for item in page:
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    items.setdefault(item["id"], item)
            offset += len(page)
            total = body.get("totalCount")
            if not page or len(items) == before:
                break  # an empty page, or one that repeats: nothing more to read
            if isinstance(total, int) and not isinstance(total, bool):
                if offset >= total:
                    break
            elif limit is not None and len(page) < limit:
                break  # no total: a page shorter than asked is the last (else: an empty one)
        return list(items.values())

    async def _get(self, path: str, params: tuple[tuple[str, str], ...]) -> Any:
        clock = self._clock
        request = HttpRequest(
            "GET",
            self._base + path,
            params,
            self._headers,
            timeout_s=self.source.timeout_s,
            network=self.source.network,
        )
        started = clock.now()
        attempt = 0
        while True:
            attempt += 1
            response: HttpResponse | None = None
            try:
                async with self._lane.lock:
                    await self._lane.depart()
                    try:
                        response = await self._transport.send(request)
                    finally:
                        self._lane.answered()
            except TransportError as exc:
                delay = self._policy.delay(
                    exc,
                    attempt=attempt,
                    elapsed_s=clock.now() - started,
                    idempotent=True,
                    rng=self._rng,
                )
                self._attempted(path, attempt, None, str(exc), delay)
                if delay is None:
                    raise self._error(path, str(exc)) from None
            else:
                if 200 <= response.status < 300:
                    self._attempted(path, attempt, response.status, None, None)
                    return _parse(response, lambda why: self._error(path, why))
                delay = self._policy.delay(
                    response.status,
                    attempt=attempt,
                    elapsed_s=clock.now() - started,
                    idempotent=True,
                    rng=self._rng,
                    headers=response.headers,
                )
                self._attempted(path, attempt, response.status, None, delay)
                if delay is None:
                    raise _Refused(response)
            await clock.sleep(delay)

    def _attempted(
        self, path: str, attempt: int, status: int | None, reason: str | None, delay: float | None
    ) -> None:
        if self._listeners:
            event = AttemptFinished(
                _LABEL,
                "GET",
                f"/v1/organizations/.../{path.lstrip('/')}",
                attempt,
                status,
                reason,
                delay,
            )
            for listener in self._listeners:
                listener(event)

    def _where(self) -> str:
        source = self.source
        where = f"{source.file}:{source.line}" if source.file and source.line else source.file
        return f"discover: Astro organization {source.organization!r}" + (
            f" ({where})" if where else ""
        )

    def _error(self, path: str, why: str) -> DiscoveryError:
        url = f"{self._base}{path}"
        return DiscoveryError(redaction.scrub(f"{self._where()}: GET {url}: {why}"))

    def _refusal(self, path: str, response: HttpResponse) -> DiscoveryError:
        status = response.status
        detail = _detail(response)
        if status in (401, 403):
            why = (
                f"HTTP {status}{detail}: the platform refused the token; check that "
                "it is an Organization or Workspace API token of this organization, "
                "not expired, with access to its deployments"
            )
        elif status == 404:
            why = f"HTTP 404{detail}: no such organization here; check organization and api_url"
        elif status == 429:
            why = f"HTTP 429{detail}: still rate-limited after {self._policy.max_attempts} tries"
        else:
            why = f"HTTP {status}{detail}"
        return self._error(path, why)


class _Refused(Exception):
    def __init__(self, response: HttpResponse) -> None:
        self.response = response
        self.status = response.status


def _parse(response: HttpResponse, error: Callable[[str], DiscoveryError]) -> Any:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = response.headers.get("content-type", "no content type")
        raise error(f"HTTP {response.status} answer is not the API's JSON ({kind})")
    return body


def _detail(response: HttpResponse) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str) or not message.strip():
        return ""
    return f" ({redaction.scrub(' '.join(message.split())[:160])})"


def _unique_names(found: list[_Found]) -> list[Deployment]:
    """Discovered names made unique: a name two workspaces share gets its workspace."""
    by_name: dict[str, list[_Found]] = {}
    for entry in found:
        by_name.setdefault(entry.deployment.name, []).append(entry)
    out: list[Deployment] = []
    for name, entries in by_name.items():
        if len(entries) == 1:
            out.append(entries[0].deployment)
            continue
        qualified = [f"{name}.{e.workspace}" for e in entries]
        if len(set(qualified)) < len(qualified):
            qualified = [f"{name}.{e.ident}" for e in entries]
        for entry, unique in zip(entries, qualified, strict=True):
            out.append(dataclasses.replace(entry.deployment, name=unique))
    return sorted(out, key=lambda d: d.name)


def _merge(fleet: Fleet, found: Iterable[list[Deployment]]) -> list[Deployment]:
    static = {d.name for d in fleet.deployments}
    names = {d.name: d for d in fleet.deployments}
    servers = {server_of(d.url): d for d in fleet.deployments}
    merged: list[Deployment] = []
    for source, deployments in zip(fleet.discovery, found, strict=True):
        for deployment in deployments:
            other = names.get(deployment.name)
            if other is not None:
                raise _clash(source, deployment, other, "name", other.name in static)
            names[deployment.name] = deployment
            if deployment.unavailable is None:
                server = server_of(deployment.url)
                other = servers.get(server)
                # No opt-out here: a static entry for a deployment the platform
                # lists already is the slip that would call it twice.
                if other is not None:
                    raise _clash(source, deployment, other, "URL", other.name in static)
                servers[server] = deployment
            merged.append(deployment)
    return merged


def _clash(
    source: AstroSource, found: Deployment, other: Deployment, what: str, static: bool
) -> ConfigError:
    kind = "static" if static else "discovered"
    fix = (
        "rename the static one, or leave it out and use the discovered one"
        if static
        else "discover each organization once, or narrow one with workspaces:"
    )
    return ConfigError(
        f"discovered deployment {found.name!r} ({found.url}) has the same {what} as the "
        f"{kind} deployment {other.name!r} ({other.url}); {fix}",
        file=source.file,
        line=source.line,
    )


def _tag(text: str) -> str:
    return _TAG_RUN.sub("-", text.lower()).strip("-")
