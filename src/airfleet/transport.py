"""The network boundary: a small ``Transport`` protocol and its aiohttp implementation.

Only this module (and ``airfleet.sim``) imports aiohttp. aiohttp's exceptions
are translated here, once, into :class:`~airfleet.errors.ConnectError` and
:class:`~airfleet.errors.TimeoutError`.

Proxies and TLS (see :mod:`airfleet.network`): each request names its
:class:`~airfleet.inventory.Network`; the transport resolves it once into an
SSL context (one per distinct settings) and a proxy, and passes both per
request. The environment's proxy variables are read by the transport, not
by aiohttp's ``trust_env``, which costs two thread hops per request (3x the
time of a request at 0 ms) and reads ``~/.netrc``, whose entry for a host
would collide with the request's own Authorization header.
"""

from __future__ import annotations

import asyncio
import base64
import re
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

import aiohttp
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from airfleet import _json, errors, redaction
from airfleet.inventory import DEFAULT_NETWORK, Network, Proxy, Tls
from airfleet.network import (
    EnvironmentProxies,
    TlsFileError,
    environment_ca_bundle,
    ssl_context,
)

__all__ = ["AiohttpTransport", "HttpRequest", "HttpResponse", "Transport"]

# Bodies past this size are cut: a fleet tool must not be knocked over by one
# deployment answering with a 2 GB error page.
MAX_BODY_BYTES = 8 * 1024 * 1024
# Distinct query strings remembered (pages of a listing, update masks...).
MAX_CACHED_QUERIES = 1024
# Origins whose environment proxy is remembered (a fleet has one per server).
MAX_CACHED_ORIGINS = 65_536


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
    # Proxy and TLS; None: the environment's proxies and the system trust store.
    network: Network | None = None

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
    """Sends one request and returns its answer, or raises a ``TransportError``.

    A transport may also offer ``async prepare(targets)``, an iterable of
    ``(url, network)`` pairs: the engine calls it, when there, before a run,
    so that what is costly to set up (an SSL context takes tens of
    milliseconds) is not paid by a request its limits already admitted.
    """

    async def send(self, request: HttpRequest) -> HttpResponse: ...

    async def aclose(self) -> None: ...


class AiohttpTransport:
    """One aiohttp ``ClientSession`` for the whole run.

    The connector has no connection cap of its own (``max_connections=0``):
    the engine's admission already bounds the requests in flight, run by run,
    and aiohttp's default of 100 would silently throttle a run whose limits
    allow more. Redirects are not followed: a 3xx becomes an answer like
    any other, so an Authorization header never travels to another origin.

    Each request's :class:`~airfleet.inventory.Network` is resolved once
    per transport: the environment is read at the first request (a later
    change to ``HTTPS_PROXY`` or ``REQUESTS_CA_BUNDLE`` takes effect in the
    next transport, that is the next engine).
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
        # Each request's network, by identity (fleet files share one object
        # per distinct setting), then by value: one _Path, so one SSL context
        # and one connection pool, per distinct setting.
        self._networks: dict[int, tuple[Network | None, _Path]] = {}
        self._paths: dict[Network, _Path] = {}
        self._contexts: dict[tuple[Tls, str | None], ssl.SSLContext] = {}
        self._building = asyncio.Lock()
        self._environment: _Environment | None = None

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
        network = request.network
        path = self._known_path(network) or await self._path_for(network)
        if path.ssl is None and url.startswith("https:"):
            await self._context_for(path)
        if path.error is not None:
            raise errors.ConnectError(path.error, transient=False, may_have_acted=False)
        proxy = path.proxy
        if path.environment is not None:
            proxy = path.environment.proxy_for(url)
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
                ssl=path.ssl if path.ssl is not None else True,
                proxy=proxy.aiohttp_url if proxy is not None else None,
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
            raise _translate(exc, request, proxy, path.client_cert) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def prepare(self, targets: Iterable[tuple[str, Network | None]]) -> None:
        """Build the SSL context of each https target's settings now."""
        for url, network in targets:
            path = self._known_path(network) or await self._path_for(network)
            if path.ssl is None and url.startswith("https:"):
                await self._context_for(path)

    def _known_path(self, network: Network | None) -> _Path | None:
        """The path already built for this very object (fleet files share one per
        distinct setting), found by identity: no hash of the settings."""
        known = self._networks.get(id(network))
        return known[1] if known is not None and known[0] is network else None

    async def _path_for(self, network: Network | None) -> _Path:
        """How requests with ``network`` leave; built on first use (not on the hot path)."""
        settings = network if network is not None else DEFAULT_NETWORK
        path = self._paths.get(settings)
        if path is None:
            # One build at a time: a cold start of 1,000 calls with the same
            # settings builds its SSL context once, not 1,000 times.
            async with self._building:
                path = self._paths.get(settings)
                if path is None:
                    path = self._paths[settings] = await self._build(settings)
        if len(self._networks) >= MAX_CACHED_QUERIES:
            self._networks.clear()
        self._networks[id(network)] = (network, path)
        return path

    async def _build(self, network: Network) -> _Path:
        environment = self._environment
        if environment is None:
            environment = self._environment = _Environment()
        tls = network.tls
        # The explicit key wins: a ca_bundle set in the file, not the variable.
        env_bundle = environment.ca_bundle if tls.ca_bundle is None else None
        client_cert = tls.client_cert is not None
        proxy: _ProxyRoute | None = None
        per_origin: _EnvironmentRoutes | None = None
        if isinstance(network.proxy, Proxy):
            proxy = _ProxyRoute(network.proxy)
        elif network.proxy is None and environment.proxies:
            per_origin = environment.routes
        if tls == Tls() and env_bundle is None:
            return _Path(True, proxy, per_origin, client_cert)  # aiohttp's default context
        # The context is built at the first https request (or prepare()): a
        # plain-http fleet never pays for one.
        return _Path(None, proxy, per_origin, client_cert, context_key=(tls, env_bundle))

    async def _context_for(self, path: _Path) -> None:
        """Build (or find) the SSL context of ``path``, once."""
        async with self._building:
            if path.ssl is not None or path.context_key is None:
                return
            key = path.context_key
            context = self._contexts.get(key)
            if context is None:
                tls, env_bundle = key
                try:
                    # About 50 ms (the system store is parsed): off the loop.
                    context = await asyncio.to_thread(ssl_context, tls, env_bundle)
                except TlsFileError as exc:
                    where = exc.key if exc.key.isupper() else f"tls.{exc.key}"
                    path.error = f"{where}: {exc}"
                    path.ssl = True
                    return
                self._contexts[key] = context
            path.ssl = context


class _ProxyRoute:
    """A proxy as aiohttp takes it: a URL built once, credentials inside it.

    aiohttp sends credentials given in the proxy URL to the proxy both ways
    (``Proxy-Authorization`` on a plain request, and on the CONNECT of an
    https one); its ``proxy_headers`` reach only the CONNECT.
    """

    __slots__ = ("aiohttp_url", "host", "origin", "port")

    def __init__(self, proxy: Proxy) -> None:
        self.origin = proxy.url  # no user info: what messages show
        url = URL(proxy.url)
        self.host = url.host
        self.port = url.port
        if proxy.username is not None:
            password = proxy.password.reveal() if proxy.password is not None else ""
            url = url.with_user(proxy.username).with_password(password)
            # What a proxy quoting the header back would show.
            redaction.register(
                base64.b64encode(f"{proxy.username}:{password}".encode()).decode("ascii")
            )
        self.aiohttp_url = url


class _EnvironmentRoutes:
    """The environment's proxy for each origin, decided once per origin."""

    __slots__ = ("_by_origin", "_proxies", "_routes")

    def __init__(self, proxies: EnvironmentProxies) -> None:
        self._proxies = proxies
        self._by_origin: dict[str, _ProxyRoute | None] = {}
        self._routes: dict[Proxy, _ProxyRoute] = {}

    def proxy_for(self, url: str) -> _ProxyRoute | None:
        # scheme://authority, by string slicing: a urlsplit per request
        # would cost more than the lookup it saves.
        end = url.find("/", url.find("//") + 2)
        origin = url if end < 0 else url[:end]
        if origin in self._by_origin:
            return self._by_origin[origin]
        try:
            proxy = self._proxies.proxy_for(url)
        except ValueError as exc:
            raise errors.ConnectError(str(exc), transient=False, may_have_acted=False) from None
        route = None
        if proxy is not None:
            route = self._routes.get(proxy)
            if route is None:
                route = self._routes[proxy] = _ProxyRoute(proxy)
        if len(self._by_origin) >= MAX_CACHED_ORIGINS:
            self._by_origin.clear()
        self._by_origin[origin] = route
        return route


class _Environment:
    """What the environment says about networks, read once per transport."""

    __slots__ = ("ca_bundle", "proxies", "routes")

    def __init__(self) -> None:
        self.ca_bundle = environment_ca_bundle()
        self.proxies = EnvironmentProxies()
        self.routes = _EnvironmentRoutes(self.proxies)


@dataclass(slots=True)
class _Path:
    """How requests with one network setting leave."""

    # True: aiohttp's default context (the system store); None: not built yet.
    ssl: ssl.SSLContext | bool | None
    proxy: _ProxyRoute | None  # a proxy the fleet file names
    environment: _EnvironmentRoutes | None  # else the environment's, per origin
    client_cert: bool  # one is configured (shapes the message of a refused handshake)
    error: str | None = None  # a setting that cannot be used: every request fails with it
    context_key: tuple[Tls, str | None] | None = None  # what its context is built from


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


def _translate(
    exc: BaseException,
    request: HttpRequest,
    proxy: _ProxyRoute | None = None,
    client_cert: bool = False,
) -> errors.TransportError:
    """aiohttp's failure as ours: what happened, whether a retry can help, and
    whether the request may have reached the server."""
    host = _origin(request.url)
    if proxy is not None:
        failure = _proxy_failure(exc, host, proxy)
        if failure is not None:
            return failure
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return errors.ConnectError(
            f"TLS with {host} failed: {_certificate_problem(exc.certificate_error)}",
            transient=False,
            may_have_acted=False,
        )
    tls_error = _ssl_error(exc)
    if tls_error is not None and (
        isinstance(exc, aiohttp.ClientSSLError) or (tls_error.reason or "") in _HANDSHAKE_ALERTS
    ):
        # A failed handshake, which no retry mends. A TLS 1.3 server refuses
        # a missing client certificate only after the client's side of the
        # handshake is done, so that refusal arrives with the first read;
        # either way the server never read the request. Any other TLS error
        # while reading is a dropped connection, as below.
        return errors.ConnectError(
            f"TLS with {host} failed: {_handshake_problem(tls_error, client_cert)}",
            transient=False,
            may_have_acted=False,
        )
    # After the certificate checks: aiohttp's certificate error is a ValueError too.
    if isinstance(exc, aiohttp.InvalidURL | ValueError):
        return errors.TransportError(
            f"invalid URL for {host}", transient=False, may_have_acted=False
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


def _proxy_failure(
    exc: BaseException, host: str, proxy: _ProxyRoute
) -> errors.TransportError | None:
    """The failure, if it was the proxy's: said so, with its origin only."""
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        # The proxy answered the CONNECT of an https request with a refusal.
        hint = (
            "; check the proxy's user name and password (the user info of its URL)"
            if exc.status == 407
            else ""
        )
        return errors.ConnectError(
            f"the proxy {proxy.origin} refused to open a tunnel to {host}: "
            f"HTTP {exc.status} {_first_line(exc.message)}{hint}",
            transient=exc.status >= 500,  # it could not reach the server: maybe later
            may_have_acted=False,
        )
    if isinstance(exc, aiohttp.ClientConnectorError) and (exc.host, exc.port) == (
        proxy.host,
        proxy.port,
    ):
        if isinstance(exc, aiohttp.ClientConnectorDNSError):
            return errors.ConnectError(
                f"cannot resolve the host name of the proxy {proxy.origin}: "
                "is the proxy URL right?",
                transient=False,
                may_have_acted=False,
            )
        strerror = exc.os_error.strerror if exc.os_error is not None else None
        return errors.ConnectError(
            f"cannot connect to the proxy {proxy.origin} on the way to {host} "
            f"({strerror or 'no connection'})",
            may_have_acted=False,
        )
    return None


# OpenSSL's verify codes (X509_V_ERR_*) that mean "signed by a CA not trusted here".
_UNKNOWN_ISSUER = frozenset({2, 18, 19, 20, 21})
_NAME_MISMATCH = frozenset({62, 64})  # host name, IP address
_EXPIRED = 10
_CA_FIX = (
    "set tls.ca_bundle (on the deployment, in defaults, or on the auth profile for a "
    "token URL) or REQUESTS_CA_BUNDLE to the PEM file of the CA that signed it"
)


def _certificate_problem(error: BaseException) -> str:
    """Why the server's certificate did not verify, and which option fixes it."""
    code = getattr(error, "verify_code", None)
    message = getattr(error, "verify_message", None) or _first_line(str(error))
    if code in _UNKNOWN_ISSUER:
        return f"its certificate is not signed by a CA airfleet trusts ({message}); {_CA_FIX}"
    if code in _NAME_MISMATCH:
        return (
            f"its certificate is not valid for that name ({message}); the URL must use "
            "a name the certificate lists"
        )
    if code == _EXPIRED:
        return f"its certificate has expired ({message}); it must be renewed on the server"
    return f"its certificate does not verify ({message})"


# Alerts a server sends when it wanted a client certificate and got none
# (TLS 1.3: certificate_required; TLS 1.2: handshake_failure), and those
# with which it refuses one it was shown.
_CERTIFICATE_WANTED = frozenset(
    {"TLSV13_ALERT_CERTIFICATE_REQUIRED", "SSLV3_ALERT_HANDSHAKE_FAILURE"}
)
_CERTIFICATE_REFUSED = frozenset(
    {
        "TLSV13_ALERT_CERTIFICATE_REQUIRED",
        "SSLV3_ALERT_BAD_CERTIFICATE",
        "SSLV3_ALERT_CERTIFICATE_UNKNOWN",
        "SSLV3_ALERT_CERTIFICATE_EXPIRED",
        "SSLV3_ALERT_CERTIFICATE_REVOKED",
        "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
        "TLSV1_ALERT_UNKNOWN_CA",
        "TLSV1_ALERT_ACCESS_DENIED",
        "TLSV1_ALERT_DECRYPT_ERROR",
    }
)


_HANDSHAKE_ALERTS = _CERTIFICATE_WANTED | _CERTIFICATE_REFUSED | {"WRONG_VERSION_NUMBER"}


def _handshake_problem(error: ssl.SSLError, client_cert: bool) -> str:
    reason = error.reason or ""
    said = _ssl_text(error)
    if not client_cert and reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return f"the server requires a client certificate ({said}); set tls.client_cert{_KEY_TOO}"
    if not client_cert and reason in _CERTIFICATE_WANTED:
        # TLS 1.2 has no alert of its own for it: the likeliest cause, said as such.
        return (
            f"the server refused the handshake ({said}); if it requires a client "
            f"certificate, set tls.client_cert{_KEY_TOO}"
        )
    if client_cert and reason in _CERTIFICATE_REFUSED:
        return (
            f"the server refused the client certificate of tls.client_cert ({said}); "
            "is it one the server trusts, and not expired?"
        )
    if reason == "WRONG_VERSION_NUMBER":
        return f"the server does not speak TLS there ({said}); is the URL http://?"
    return said


_KEY_TOO = " (and tls.client_key if the key is in a file of its own)"
_SSL_NOISE = re.compile(r"^\[SSL: [A-Z0-9_]+\] |\s*\(_ssl\.c:\d+\)$")


def _ssl_text(error: ssl.SSLError) -> str:
    """OpenSSL's words for it, without the ``[SSL: CODE]`` and ``(_ssl.c:N)`` around them."""
    text = _first_line(str(error.strerror or error.reason or error))
    return _SSL_NOISE.sub("", text) or text


def _ssl_error(exc: BaseException) -> ssl.SSLError | None:
    """The ``ssl.SSLError`` behind an aiohttp error, if any."""
    seen: BaseException | None = exc
    for _ in range(4):  # aiohttp wraps once or twice
        if seen is None:
            return None
        # aiohttp's own TLS errors subclass ssl.SSLError without its fields:
        # the real one is their os_error.
        os_error = getattr(seen, "os_error", None)
        if isinstance(os_error, ssl.SSLError):
            return os_error
        if isinstance(seen, ssl.SSLError) and not isinstance(
            seen, ssl.CertificateError | aiohttp.ClientError
        ):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


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
