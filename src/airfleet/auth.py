"""Credentials: one shared token per credential, refreshed single-flight.

Three parts, each with one job:

* a **strategy** per profile kind says what a credential is: its cache key
  (one per token: a ``client-credentials`` or ``token`` profile has one
  shared by every deployment naming it; a ``password`` profile one per
  Airflow 3 API server, since each signs its own JWTs), a fixed header when
  there is nothing to fetch (a ready token, basic auth on Airflow 2), or the
  token request to make and how to read its answer;
* the :class:`TokenCache` keeps fetched tokens and does no I/O: single
  flight (one fetch per key however many callers need it), generations (a
  call refused with an old token never throws away the fresh one another
  call just fetched), fetch times (a call refused by the server retries only
  with a token whose fetch began after the refusal: one fetched just before
  a revocation may be revoked too), refresh ahead (a token past 90 % of its life is
  replaced by the first caller that sees it while the others go on using
  it), and a short memory of a failed fetch so callers fail fast;
* :class:`Credentials` puts them together; the fetch itself (an HTTP request
  under the run's limits and the retry policy) is passed in by the engine.

The engine reads a credential after its request is admitted, immediately
before the bytes leave (see ``engine.py``): a call that queued behind a rate
for longer than a token lives still sends a valid one.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import anyio

from airfleet import redaction
from airfleet.clock import Clock
from airfleet.dialects.base import Dialect
from airfleet.errors import ApiError, AuthError, TransportError
from airfleet.inventory import (
    DEFAULT_NETWORK,
    AuthProfile,
    ClientCredentialsAuth,
    Deployment,
    Network,
    PasswordAuth,
    TokenAuth,
)
from airfleet.protocol import Response
from airfleet.retry import RetryPolicy

__all__ = ["AuthScope", "Credential", "Credentials", "TokenCache", "TokenRequest"]

DEFAULT_LIFETIME_S = 86_400.0
# A token is replaced from 90 % of its life and sent until 95 %: the last
# twentieth is left for the request to reach the server, and for clock skew.
REFRESH_AT = 0.90
USABLE_UNTIL = 0.95
# After a fetch failed for good, callers fail fast for this long instead of
# each hammering a token endpoint that is down.
FAILURE_COOLDOWN_S = 1.0


@dataclass(frozen=True, slots=True)
class AuthScope:
    """Who needs a credential: a deployment and the dialect it speaks."""

    deployment: Deployment
    profile: AuthProfile
    dialect: Dialect


@dataclass(frozen=True, slots=True)
class Credential:
    """An Authorization header value and where it came from (never printed)."""

    key: str
    generation: int
    header: str = field(repr=False)
    fetched_at: float = -math.inf  # when its fetch began (engine clock)
    usable_until: float | None = None
    refresh_at: float | None = None
    # The request headers that carry it, built once and read-only: every
    # request with this credential shares them.
    headers: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", MappingProxyType({"Authorization": self.header}))

    def __repr__(self) -> str:
        return f"Credential({self.key!r}, generation={self.generation})"

    def usable(self, now: float) -> bool:
        return self.usable_until is None or now < self.usable_until

    def due(self, now: float) -> bool:
        return self.refresh_at is not None and now >= self.refresh_at


@dataclass(frozen=True, slots=True)
class TokenRequest:
    """A token to fetch: where, with what body, under whose limits and policy."""

    url: str
    body: Mapping[str, Any] = field(repr=False)  # carries the secret
    what: str  # names the endpoint and profile in messages; never a secret
    deployment: Deployment | None  # whose server answers it (a JWT), or None
    policy: RetryPolicy
    network: Network = DEFAULT_NETWORK  # the profile's (a token service) or the deployment's


# The engine's side of a fetch: send the request (admitted, retried) and
# return the final answer, or raise a TransportError.
TokenFetch = Callable[[TokenRequest], Awaitable[Response]]


# -- strategies: one per profile kind ----------------------------------------------


class _Strategy(Protocol):
    def cache_key(self, scope: AuthScope) -> str: ...

    def fixed_header(self, scope: AuthScope) -> str | None: ...

    def token_request(self, scope: AuthScope) -> TokenRequest: ...


@dataclass(frozen=True, slots=True)
class _ClientCredentials:
    """OAuth client credentials: one token from the token service, shared."""

    profile: ClientCredentialsAuth

    def cache_key(self, scope: AuthScope) -> str:
        return self.profile.name

    def fixed_header(self, scope: AuthScope) -> str | None:
        return None

    def token_request(self, scope: AuthScope) -> TokenRequest:
        profile = self.profile
        body: dict[str, Any] = {
            "grant_type": "client_credentials",
            "client_id": profile.client_id,
            "client_secret": profile.client_secret.reveal(),
        }
        if profile.audience:
            body["audience"] = profile.audience
        return TokenRequest(
            profile.token_url,
            body,
            f"token endpoint {profile.token_url} (auth profile {profile.name!r})",
            None,
            RetryPolicy(retries=profile.retries, timeout_s=profile.timeout_s),
            profile.network,
        )


@dataclass(frozen=True, slots=True)
class _ReadyToken:
    """A bearer token given in the fleet file: nothing to fetch, nothing to renew."""

    profile: TokenAuth

    def cache_key(self, scope: AuthScope) -> str:
        return self.profile.name

    def fixed_header(self, scope: AuthScope) -> str | None:
        return f"Bearer {self.profile.token.reveal()}"

    def token_request(self, scope: AuthScope) -> TokenRequest:  # pragma: no cover - fixed
        raise AuthError(f"auth profile {self.profile.name!r} has a fixed token")


@dataclass(frozen=True, slots=True)
class _Password:
    """Username and password: basic auth on Airflow 2, a JWT per server on Airflow 3."""

    profile: PasswordAuth

    def cache_key(self, scope: AuthScope) -> str:
        if scope.dialect.login_style == "basic":
            return f"{self.profile.name}:basic"
        return f"{self.profile.name}@{scope.deployment.url}"

    def fixed_header(self, scope: AuthScope) -> str | None:
        if scope.dialect.login_style != "basic":
            return None
        raw = f"{self.profile.username}:{self.profile.password.reveal()}".encode()
        encoded = base64.b64encode(raw).decode("ascii")
        redaction.register(encoded)  # what a server quoting the header would show
        return "Basic " + encoded

    def token_request(self, scope: AuthScope) -> TokenRequest:
        profile = self.profile
        url = f"{scope.deployment.url}/auth/token"
        return TokenRequest(
            url,
            {"username": profile.username, "password": profile.password.reveal()},
            f"{url} (auth profile {profile.name!r})",
            scope.deployment,
            RetryPolicy(retries=profile.retries, timeout_s=profile.timeout_s),
            scope.deployment.network,
        )


_STRATEGIES: Mapping[type, Callable[[Any], _Strategy]] = {
    ClientCredentialsAuth: _ClientCredentials,
    TokenAuth: _ReadyToken,
    PasswordAuth: _Password,
}


# -- the cache: no I/O ---------------------------------------------------------------


@dataclass(slots=True)
class _Entry:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    current: Credential | None = None
    generation: int = 0
    failed_at: float = -math.inf
    failure: AuthError | None = None  # the last fetch's, until one succeeds
    claimed: int = 0  # the generation a background refresh was claimed for


class TokenCache:
    """Fetched tokens by key: single flight, generations, refresh ahead. No I/O.

    ``ready`` and ``usable`` never wait; :meth:`get` waits for a fetch, made
    by ``fetch`` (passed in) under a per-key lock, only if no caller before
    it in line got a good one meanwhile.
    """

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def ready(self, key: str, since: float = -math.inf) -> Credential | None:
        """A token to queue with now: fresh, or due but already being refreshed.

        None means the caller should :meth:`get` one first: there is none,
        it was refused, its fetch began before ``since``, or it is due for
        refresh and nobody is refreshing it.
        """
        entry = self._entries.get(key)
        current = entry.current if entry is not None else None
        if current is None or current.fetched_at < since:
            return None
        now = self._clock.now()
        if not current.usable(now):
            return None
        if (
            current.due(now)
            and entry is not None
            and not entry.lock.locked()
            and entry.claimed != current.generation  # nor claimed for a refresh
        ):
            return None
        return current

    def usable(self, key: str, since: float = -math.inf) -> Credential | None:
        """The token to send at this instant, if it is still good to send
        (and its fetch began at ``since`` or later)."""
        entry = self._entries.get(key)
        current = entry.current if entry is not None else None
        if current is None or current.fetched_at < since:
            return None
        return current if current.usable(self._clock.now()) else None

    async def get(
        self,
        key: str,
        fetch: Callable[[], Awaitable[tuple[str, float]]],
        *,
        since: float = -math.inf,
    ) -> Credential:
        """A usable token whose fetch began at ``since`` or later; fetched if need be.

        ``fetch`` returns the Authorization header value and the token's
        lifetime in seconds, or raises ``AuthError``.
        """
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry()
        async with entry.lock:
            now = self._clock.now()
            current = entry.current
            if (
                current is not None
                and current.fetched_at >= since
                and current.usable(now)
                and not current.due(now)
            ):
                return current  # fetched by the caller before us in line
            failure = entry.failure
            if failure is not None and now - entry.failed_at < FAILURE_COOLDOWN_S:
                raise AuthError(str(failure), status=failure.status)
            started = self._clock.now()
            try:
                header, lifetime = await fetch()
            except AuthError as exc:
                entry.failed_at = self._clock.now()
                entry.failure = exc
                raise
            entry.failure = None
            entry.generation += 1
            now = self._clock.now()
            entry.current = Credential(
                key,
                entry.generation,
                header,
                fetched_at=started,
                usable_until=now + lifetime * USABLE_UNTIL,
                refresh_at=now + lifetime * REFRESH_AT,
            )
            return entry.current

    def claim_refresh(self, credential: Credential) -> bool:
        """True once per token that is due with nobody refreshing it: the
        caller starts the refresh; every other caller goes on sending it."""
        entry = self._entries.get(credential.key)
        if (
            entry is None
            or entry.current is not credential
            or entry.claimed == credential.generation
            or entry.lock.locked()
            or not credential.due(self._clock.now())
        ):
            return False
        entry.claimed = credential.generation
        return True

    def invalidate(self, credential: Credential) -> bool:
        """Forget ``credential`` if it is still the current one; True if it was."""
        entry = self._entries.get(credential.key)
        if entry is None or entry.current is None:
            return False
        if entry.current.generation != credential.generation:
            return False
        entry.current = None
        return True


# -- putting them together -----------------------------------------------------------


class Credentials:
    """Hands out credentials for every profile of a fleet."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._cache = TokenCache(clock)
        self._strategies: dict[str, _Strategy] = {}
        self._fixed: dict[str, Credential] = {}
        self.on_fetch: Callable[[str, float], None] | None = None

    def _strategy(self, profile: AuthProfile) -> _Strategy:
        strategy = self._strategies.get(profile.name)
        if strategy is None:
            strategy = self._strategies[profile.name] = _STRATEGIES[type(profile)](profile)
        return strategy

    def key_for(self, scope: AuthScope) -> str:
        """The cache key (and per-credential rate key) a scope uses."""
        return self._strategy(scope.profile).cache_key(scope)

    def fixed(self, scope: AuthScope, key: str) -> Credential | None:
        """The scope's credential (cache key ``key``) if it needs no fetch: a
        ready token, or basic auth."""
        credential = self._fixed.get(key)
        if credential is None:
            header = self._strategy(scope.profile).fixed_header(scope)
            if header is None:
                return None
            credential = self._fixed[key] = Credential(key, 1, header)
        return credential

    def ready(self, key: str, since: float = -math.inf) -> Credential | None:
        """A fetched token to queue with now, or None (see :meth:`TokenCache.ready`)."""
        return self._cache.ready(key, since)

    def usable(self, key: str, since: float = -math.inf) -> Credential | None:
        """The fetched token to send at this instant, if still good."""
        return self._cache.usable(key, since)

    def claim_refresh(self, credential: Credential) -> bool:
        """Should this caller refresh the token it is about to send (due, and
        no other caller has claimed it)? See :meth:`TokenCache.claim_refresh`."""
        return credential.refresh_at is not None and self._cache.claim_refresh(credential)

    async def fetched(
        self, scope: AuthScope, fetch: TokenFetch, *, since: float = -math.inf
    ) -> Credential:
        """A fetched token whose fetch began at ``since`` or later (single flight)."""
        key = self.key_for(scope)
        request = self._strategy(scope.profile).token_request(scope)

        async def one() -> tuple[str, float]:
            started = self._clock.now()
            try:
                response = await fetch(request)
            except (TransportError, ApiError) as exc:  # no answer, or one too large
                raise AuthError(f"{request.what}: {exc}") from exc
            token, lifetime = self._read(request, response)
            if self.on_fetch is not None:
                self.on_fetch(key, self._clock.now() - started)
            return f"Bearer {token}", lifetime

        return await self._cache.get(key, one, since=since)

    def renewable(self, credential: Credential) -> bool:
        """Can a refused credential be replaced by fetching again?"""
        return credential.key not in self._fixed

    def invalidate(self, credential: Credential) -> bool:
        """Forget a refused token if it is still the current one."""
        return self._cache.invalidate(credential)

    def _read(self, request: TokenRequest, response: Response) -> tuple[str, float]:
        if response.status not in (200, 201):
            reason = _reason(response.body) or f"HTTP {response.status}"
            tried = f" (after {response.attempts} attempts)" if response.attempts > 1 else ""
            hint = (
                "; the token endpoint failed, try again later"
                if response.status >= 500 or response.status == 429
                else "; check the credentials of that profile"
            )
            said = redaction.scrub(reason)
            raise AuthError(
                f"{request.what} answered {response.status}: {said}{tried}{hint}",
                status=response.status,
            )
        body = response.body
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise AuthError(f"{request.what} answered without an access_token")
        token: str = body["access_token"]
        redaction.register(token, parts="ends")
        expires_in = body.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            return token, max(1.0, float(expires_in))
        exp = _jwt_exp(token)
        if exp is not None:
            return token, max(1.0, exp - self._clock.wall())
        return token, DEFAULT_LIFETIME_S


def _jwt_exp(token: str) -> float | None:
    """The ``exp`` claim of a JWT, read without verifying (the server verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except ValueError:
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _reason(body: Any) -> str:
    if not isinstance(body, dict):
        return ""
    for key in ("error_description", "detail", "error", "title", "message"):
        value = body.get(key)
        if isinstance(value, str) and value:
            return " ".join(value.split())[:200]
    return ""
