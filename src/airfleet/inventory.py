"""The fleet inventory: frozen value objects for a fleet, its auth profiles and deployments.

Models only. :mod:`airfleet.fleet_file` reads fleet.yaml into them; nothing
here loads a file, so the rest of airfleet can use a Fleet without the loader.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from airfleet import redaction

__all__ = [
    "ASTRO_API_URL",
    "DEFAULT_NETWORK",
    "ApiChoice",
    "AstroSource",
    "AuthProfile",
    "ClientCredentialsAuth",
    "Deployment",
    "Fleet",
    "FleetLimits",
    "Network",
    "PasswordAuth",
    "Proxy",
    "Secret",
    "Tls",
    "TokenAuth",
    "server_of",
]

ApiChoice = Literal["auto", "v1", "v2"]

# Built-in defaults, documented in the README ("Limits and defaults").
DEFAULT_FLEET_MAX_IN_FLIGHT = 64
DEFAULT_FLEET_MAX_PER_SECOND: float | None = None
DEFAULT_MAX_IN_FLIGHT = 4
DEFAULT_MAX_PER_SECOND: float | None = 10.0
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_RETRIES = 4


class Secret:
    """A secret string that never shows itself in ``repr``, ``str`` or f-strings."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        # A server may quote what it was sent (a 401 echoing the header, a
        # token service echoing the client secret): every text airfleet
        # writes is scrubbed of each secret it was configured with.
        redaction.register(value)

    def reveal(self) -> str:
        """The secret itself: only for building a request."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True, slots=True)
class Tls:
    """How to check a server's certificate, and which certificate to show it.

    ``ca_bundle``: a PEM file of CA certificates trusted *in addition to* the
    system store (None: ``REQUESTS_CA_BUNDLE`` / ``CURL_CA_BUNDLE`` if set).
    ``client_cert``: a PEM certificate chain, which may hold the key too;
    ``client_key``: its key, when in a file of its own. ``verify=False``
    checks nothing (and is warned about on every run). Paths are absolute
    once loaded from a fleet file.
    """

    ca_bundle: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True


@dataclass(frozen=True, slots=True)
class Proxy:
    """A forward proxy: its URL without user info, and its credentials if any.

    ``url`` is ``http://host:port``, safe to print; the password is a
    :class:`Secret` and so never shows.
    """

    url: str
    username: str | None = None
    password: Secret | None = None

    def __repr__(self) -> str:
        user = f", username={self.username!r}" if self.username is not None else ""
        return f"Proxy({self.url!r}{user})"


@dataclass(frozen=True, slots=True)
class Network:
    """How requests reach one server: through which proxy, with which TLS settings.

    ``proxy``: a :class:`Proxy`; ``False`` to go direct even when the
    environment names a proxy; None (the default) to follow the environment
    (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``, as requests does).
    Hashable and shared: requests with equal settings share one SSL context
    and one connection pool.
    """

    proxy: Proxy | Literal[False] | None = None
    tls: Tls = Tls()


# Nothing configured: the environment's proxies and the system trust store.
DEFAULT_NETWORK = Network()


@dataclass(frozen=True, slots=True)
class FleetLimits:
    """Fleet-wide limits: requests in flight and requests per second (None: unlimited)."""

    max_in_flight: int = DEFAULT_FLEET_MAX_IN_FLIGHT
    max_per_second: float | None = DEFAULT_FLEET_MAX_PER_SECOND


@dataclass(frozen=True, slots=True)
class ClientCredentialsAuth:
    """OAuth client credentials (the seed's Astro Deployment API key flow): one shared token."""

    name: str
    token_url: str
    client_id: str
    client_secret: Secret
    audience: str | None = None
    max_per_second: float | None = None
    kind: Literal["client-credentials"] = "client-credentials"
    # Each of this profile's token fetches; fleet.yaml defaults them from `defaults`.
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    # How its token URL is reached (fleet.yaml: `defaults`, then the profile's keys).
    network: Network = DEFAULT_NETWORK


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """A ready bearer token (Astro Deployment, Workspace or Organization API token)."""

    name: str
    token: Secret
    max_per_second: float | None = None
    kind: Literal["token"] = "token"
    # Each of this profile's token fetches; fleet.yaml defaults them from `defaults`.
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """Username and password: a JWT from ``{url}/auth/token`` on Airflow 3, basic auth on 2.

    The token URL is the deployment's own, so it is reached with the
    deployment's :class:`Network`.
    """

    name: str
    username: str
    password: Secret
    max_per_second: float | None = None
    kind: Literal["password"] = "password"
    # Each of this profile's token fetches; fleet.yaml defaults them from `defaults`.
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES


AuthProfile = ClientCredentialsAuth | TokenAuth | PasswordAuth


@dataclass(frozen=True, slots=True)
class Deployment:
    """One Airflow deployment, with its defaults already applied."""

    name: str
    url: str
    auth: str
    tags: frozenset[str] = frozenset()
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    max_per_second: float | None = DEFAULT_MAX_PER_SECOND
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    api: ApiChoice = "auto"
    allow_insecure: bool = False
    # Proxy and TLS, for its API and (password profiles) its /auth/token.
    network: Network = DEFAULT_NETWORK
    # Set by discovery: the platform's status of the deployment (each of its
    # results carries it), and why no request may go to it (its calls are
    # skipped with that reason), e.g. a hibernating Astro deployment.
    status: str | None = None
    unavailable: str | None = None

    def __repr__(self) -> str:
        return f"Deployment({self.name!r}, {self.url!r}, api={self.api!r})"


ASTRO_API_URL = "https://api.astronomer.io"


@dataclass(frozen=True, slots=True)
class AstroSource:
    """Where discovery lists deployments: one Astro organization (fleet.yaml ``discover:``).

    ``template`` is what every deployment found here starts from (the
    fleet's defaults and the profile named by ``auth``); discovery fills in
    its name, URL, API version, tags and status. ``tags`` adds a tag to the
    deployments whose name matches any of its globs. ``token`` authenticates
    to the platform API, at ``max_per_second`` (the documented per-token
    rate of its GETs). ``file`` and ``line`` say where the source was
    written, for errors.
    """

    organization: str
    token: Secret
    template: Deployment
    workspaces: tuple[str, ...] = ()
    api_url: str = ASTRO_API_URL
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_per_second: float = 25.0
    timeout_s: float = DEFAULT_TIMEOUT_S
    retries: int = DEFAULT_RETRIES
    network: Network = DEFAULT_NETWORK
    file: str | None = None
    line: int | None = None

    def __repr__(self) -> str:
        return f"AstroSource({self.organization!r}, api_url={self.api_url!r})"


@dataclass(frozen=True, slots=True)
class Fleet:
    """A validated fleet: limits, auth profiles and deployments in file order.

    ``discovery``: the platforms still to ask for more deployments
    (:func:`airfleet.discover` asks them and returns a fleet without any);
    ``deployments`` are then the static ones alone.
    """

    deployments: tuple[Deployment, ...]
    auth: Mapping[str, AuthProfile] = field(default_factory=dict)
    limits: FleetLimits = field(default_factory=FleetLimits)
    source: str = "<memory>"
    discovery: tuple[AstroSource, ...] = ()

    def profile_for(self, deployment: Deployment) -> AuthProfile:
        """The auth profile a deployment names (validated to exist at load time)."""
        return self.auth[deployment.auth]

    def __repr__(self) -> str:
        return f"Fleet({len(self.deployments)} deployments, source={self.source!r})"


_DEFAULT_PORTS = {"http": 80, "https": 443}
# The shape of nearly every deployment URL: http(s), a host name or IPv4
# address in lower case, perhaps a port, a path of unreserved characters.
_USUAL_URL = re.compile(r"(https?)://([a-z0-9.-]+)(?::([1-9][0-9]{0,4}))?((?:/[A-Za-z0-9._~-]*)*)")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
# RFC 3986's unreserved characters: "%7E" and "~" are the same path.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def server_of(url: str) -> str:
    """The server and path a deployment URL names, as RFC 3986 compares them.

    Scheme and host in lower case (a trailing dot and an IPv6 address's
    spelling too), the default port dropped, percent-escapes of unreserved
    characters decoded and the rest upper-cased, ``.`` and ``..`` segments
    resolved, trailing slashes dropped. Two URLs with the same result reach
    the same Airflow; the path keeps its case, as servers do. Different host
    names for one machine (``localhost`` and ``127.0.0.1``) are not merged:
    only DNS knows those.
    """
    scheme, host, port, path = _split(url)
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{_path(path)}"


def usual_url(url: str) -> tuple[str, str, int | None, str] | None:
    """Scheme, host, port and path of a URL of the usual shape, read by one match
    (no user info, query, fragment, escape or IPv6 address; a port from 1 to
    65535); None for any other URL, which urlsplit reads."""
    usual = _USUAL_URL.fullmatch(url)
    if usual is None or int(usual[3] or 0) > 65535:
        return None
    scheme, host, port, path = usual.groups()
    return scheme, host, int(port) if port else None, path


def _split(url: str) -> tuple[str, str, int | None, str]:
    """Scheme and host in lower case (the host without a trailing dot), port, path."""
    usual = usual_url(url)
    if usual is not None:
        scheme, host, port, path = usual
        return scheme, host.rstrip("."), port, path
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if ":" in host:  # IPv6, which has many spellings; IPv4 has one that parses
        with contextlib.suppress(ValueError):
            host = f"[{ipaddress.IPv6Address(host)}]"
    return parts.scheme.lower(), host, parts.port, parts.path


def _path(path: str) -> str:
    if "%" not in path and "/." not in path and "//" not in path:
        return path.rstrip("/")  # the common case, fast for 10,000 deployments

    def unescape(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else f"%{match.group(1).upper()}"

    segments: list[str] = []
    for segment in _ESCAPE.sub(unescape, path).split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    return "".join(f"/{s}" for s in segments)
