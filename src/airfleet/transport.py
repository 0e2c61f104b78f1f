"""The network boundary: a small ``Transport`` protocol and its aiohttp implementation.

Only this module (and ``airfleet.sim``) imports aiohttp. aiohttp's exceptions
are translated here, once, into :class:`~airfleet.errors.ConnectError` and
:class:`~airfleet.errors.TimeoutError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy

from airfleet import _json, errors

__all__ = ["AiohttpTransport", "HttpRequest", "HttpResponse", "Transport"]

# Bodies past this size are cut: a fleet tool must not be knocked over by one
# deployment answering with a 2 GB error page.
MAX_BODY_BYTES = 8 * 1024 * 1024
# Distinct query strings remembered (pages of a listing, update masks...).
MAX_CACHED_QUERIES = 1024


# HttpRequest and HttpResponse are built once per request: plain slotted
# classes, since a frozen dataclass's __init__ costs about 3x as much.
@dataclass(slots=True)
class HttpRequest:
    """A fully resolved HTTP request (treat as read-only)."""

    method: str
    url: str
    params: tuple[tuple[str, str], ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    timeout_s: float = 30.0

    def __repr__(self) -> str:
        # Headers are left out on purpose: they carry the Authorization header.
        return f"HttpRequest({self.method} {self.url})"


@dataclass(slots=True)
class HttpResponse:
    """Status, headers (case-insensitive names) and the raw body (treat as read-only)."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    truncated: bool = False

    def json(self) -> Any:
        """The body as JSON, or None when it is empty or not JSON."""
        if not self.body or self.truncated:
            return None
        return _json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body[:2000].decode("utf-8", errors="replace")


class Transport(Protocol):
    """Sends one request and returns its answer, or raises a ``TransportError``."""

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """One aiohttp ``ClientSession`` for the whole run.

    The connector has no connection cap of its own (``max_connections=0``):
    the engine's admission already bounds the requests in flight, run by run,
    and aiohttp's default of 100 would silently throttle a run whose limits
    allow more. Redirects are not followed: a 3xx becomes an answer like
    any other, so an Authorization header never travels to another origin.
    """

    def __init__(self, *, max_connections: int = 0, user_agent: str = "airfleet") -> None:
        self._max_connections = max_connections
        self._user_agent = user_agent
        self._session: aiohttp.ClientSession | None = None
        # Per-request costs paid once: a ClientTimeout per distinct timeout, an
        # encoded query string per distinct params (a fleet sends few shapes).
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}
        self._queries: dict[tuple[tuple[str, str], ...], str] = {}
        # Read-only header mappings (one per credential) converted once to
        # the multidict aiohttp would otherwise build from them per request.
        self._headers: dict[int, tuple[Mapping[str, str], CIMultiDictProxy[str]]] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily inside the running loop: aiohttp binds a session to it.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections, limit_per_host=0, ttl_dns_cache=300
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
                # We never want aiohttp's cookie jar: auth is explicit, per request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def send(self, request: HttpRequest) -> HttpResponse:
        session = self._get_session()
        timeout = self._timeouts.get(request.timeout_s)
        if timeout is None:
            timeout = self._timeouts[request.timeout_s] = aiohttp.ClientTimeout(
                total=request.timeout_s
            )
        url = request.url
        if request.params:
            # A pre-encoded query string is cheaper for yarl than params=.
            query = self._queries.get(request.params)
            if query is None:
                query = urlencode(request.params)
                if len(self._queries) < MAX_CACHED_QUERIES:
                    self._queries[request.params] = query
            url = f"{url}?{query}"
        headers: Mapping[str, str] = request.headers
        if type(headers) is MappingProxyType:
            known = self._headers.get(id(headers))
            if known is None or known[0] is not headers:
                if len(self._headers) >= MAX_CACHED_QUERIES:
                    self._headers.clear()
                known = (headers, CIMultiDictProxy(CIMultiDict(headers)))
                self._headers[id(headers)] = known
            headers = known[1]
        try:
            async with session.request(
                request.method,
                url,
                headers=headers,
                json=request.json,
                timeout=timeout,
                allow_redirects=False,
            ) as resp:
                expected = resp.content_length
                # Content-Length counts the bytes on the wire; aiohttp inflates
                # a compressed answer as it reads, so only the capped loop,
                # which counts what it hands back, bounds that one.
                encoded = "Content-Encoding" in resp.headers
                if expected is not None and expected <= MAX_BODY_BYTES and not encoded:
                    # The common case, read whole: aiohttp raises if the peer
                    # closes early, and read() spares the capped loop's
                    # flow-control round trip per answer.
                    body = await resp.read()
                    truncated = False
                else:
                    body = await _read_capped(resp.content)
                    truncated = len(body) > MAX_BODY_BYTES
                    if not encoded and expected is not None and len(body) < MAX_BODY_BYTES:
                        # read(n) hands back what arrived when the peer closes early.
                        raise errors.ConnectError("connection dropped in the middle of the answer")
                # aiohttp's headers are already case-insensitive; no copy.
                if truncated:
                    return HttpResponse(resp.status, resp.headers, body[:MAX_BODY_BYTES], True)
                return HttpResponse(resp.status, resp.headers, body)
        except TimeoutError as exc:
            raise errors.TimeoutError(f"no answer within {request.timeout_s:g} s") from exc
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise _translate(exc, request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(content: aiohttp.StreamReader) -> bytes:
    """The body, but no more than ``MAX_BODY_BYTES + 1`` bytes of it.

    ``StreamReader.read(n)`` returns what has arrived so far (at most ``n``
    bytes), not ``n`` bytes: one call reads only the first chunk of a large
    answer. Keep reading until the end or the cap.
    """
    body = await content.read(MAX_BODY_BYTES + 1)
    if not body or content.at_eof():
        return body
    chunks = [body]
    size = len(body)
    while size <= MAX_BODY_BYTES:
        chunk = await content.read(MAX_BODY_BYTES + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _translate(exc: BaseException, request: HttpRequest) -> errors.TransportError:
    """aiohttp's failure as ours: what happened, whether a retry can help, and
    whether the request may have reached the server."""
    host = _origin(request.url)
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return errors.TransportError(
            f"invalid URL for {host}", transient=False, may_have_acted=False
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        reason = getattr(exc, "certificate_error", None) or exc
        return errors.ConnectError(
            f"TLS with {host} failed: {_first_line(str(reason))}; if its certificate is "
            "signed by a private CA, point SSL_CERT_FILE at that CA's bundle",
            transient=False,
            may_have_acted=False,
        )
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return errors.ConnectError(
            f"cannot resolve the host name of {host}: is the deployment URL right?",
            transient=False,
            may_have_acted=False,
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        # Refused or unreachable: nothing was sent, and a server that is
        # restarting takes the same request a moment later.
        strerror = exc.os_error.strerror if exc.os_error is not None else None
        return errors.ConnectError(
            f"cannot connect to {exc.host}:{exc.port} ({strerror or _first_line(str(exc))})",
            may_have_acted=False,
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return errors.ConnectError("server closed the connection before answering")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return errors.ConnectError("connection dropped in the middle of the answer")
    if isinstance(exc, aiohttp.ClientResponseError):
        # A status line or headers aiohttp cannot parse: whatever answers
        # does not speak HTTP as expected, and answers the same way next time.
        return errors.ConnectError(
            f"{host} answered with a malformed HTTP response ({_first_line(exc.message)})",
            transient=False,
        )
    if isinstance(exc, aiohttp.ClientOSError | ConnectionResetError):
        return errors.ConnectError("connection reset by the server")
    return errors.ConnectError(_first_line(str(exc) or type(exc).__name__))


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL: never its user info, path or query."""
    try:
        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}"
    except ValueError:
        return "an unparsable URL"


def _first_line(text: str, limit: int = 200) -> str:
    lines = text.strip().splitlines()
    return lines[0][:limit] if lines else ""
