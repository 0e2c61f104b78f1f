"""Credentials: one shared token per credential, refreshed single-flight.

Interface: ``await auth.get(scope) -> Credential`` and
``auth.invalidate(credential)``. A ``client-credentials`` or ``token`` profile
has one cache slot shared by every deployment naming it; a ``password``
profile has one slot per Airflow 3 API server (each signs its own JWTs) and
plain basic auth on Airflow 2.

Single flight: callers that find the token missing or expired queue on one
lock; the first fetches, the rest find the fresh token when they get the lock.
A token past 90 % of its life is refreshed by the first caller that sees it
while the others keep using it, so calls do not stall. ``invalidate`` drops a
token only if it is still the current generation: a call that failed with an
old token must not throw away the fresh one another call just fetched.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import anyio

from airfleet import redaction
from airfleet.dialects.base import Dialect
from airfleet.errors import AuthError, TransportError
from airfleet.inventory import (
    AuthProfile,
    ClientCredentialsAuth,
    Deployment,
    PasswordAuth,
    TokenAuth,
)
from airfleet.transport import HttpRequest, Transport

__all__ = ["AuthManager", "AuthScope", "Credential"]

DEFAULT_LIFETIME_S = 86_400.0
REFRESH_AT = 0.9
# After a fetch failed for good, callers fail fast for this long instead of
# each hammering a token endpoint that is down.
FAILURE_COOLDOWN_S = 1.0
FETCH_ATTEMPTS = 6
FETCH_BASE_S = 0.25
FETCH_CAP_S = 2.0
FETCH_TIMEOUT_S = 30.0

# Where a token request waits its turn under the engine's limits: the
# deployment it is for (an Airflow 3 JWT), or None for a shared token service.
Gate = Callable[[Deployment | None], AbstractAsyncContextManager[None]]


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
    expires_at: float | None = None
    refresh_at: float | None = None
    # The request headers that carry it, built once and read-only: every
    # request with this credential shares them.
    headers: Mapping[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "headers", MappingProxyType({"Authorization": self.header}))

    def __repr__(self) -> str:
        return f"Credential({self.key!r}, generation={self.generation})"


@dataclass(slots=True)
class _Slot:
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    current: Credential | None = None
    generation: int = 0
    failed_at: float | None = None
    failure: str = ""


class AuthManager:
    """Hands out credentials for every profile of a fleet."""

    def __init__(
        self,
        transport: Transport,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        gate: Gate | None = None,
        rng: random.Random | None = None,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self._transport = transport
        self._clock = clock
        self._wall = wall_clock
        self._gate = gate
        self._rng = rng or random.Random()
        self._sleep = sleep
        self._slots: dict[str, _Slot] = {}
        self._static: dict[str, Credential] = {}
        self.fetches = 0
        self.on_fetch: Callable[[str, float], None] | None = None

    @staticmethod
    def key_for(scope: AuthScope) -> str:
        """The cache slot (and per-credential rate key) a scope uses."""
        profile = scope.profile
        if isinstance(profile, PasswordAuth):
            if scope.dialect.login_style == "basic":
                return f"{profile.name}:basic"
            return f"{profile.name}@{scope.deployment.url}"
        return profile.name

    def ready(self, scope: AuthScope) -> Credential | None:
        """The credential :meth:`get` would return without waiting, or None.

        The hot path: a request whose token is at hand takes it without an
        ``await``; otherwise ``await get(scope)`` fetches or refreshes it.
        """
        key = self.key_for(scope)
        static = self._static.get(key)
        if static is not None:
            return static
        slot = self._slots.get(key)
        current = slot.current if slot is not None else None
        if current is None:
            return None
        now = self._clock()
        if _fresh(current, now):
            return current
        if _valid(current, now) and slot is not None and slot.lock.locked():
            return current  # being refreshed ahead of expiry; still good
        return None

    async def get(self, scope: AuthScope) -> Credential:
        """A valid credential for the scope, fetching one if needed (single flight)."""
        profile = scope.profile
        key = self.key_for(scope)
        static = self._static.get(key)
        if static is not None:
            return static
        if isinstance(profile, TokenAuth):
            static = Credential(key, 0, f"Bearer {profile.token.reveal()}")
        elif isinstance(profile, PasswordAuth) and scope.dialect.login_style == "basic":
            raw = f"{profile.username}:{profile.password.reveal()}".encode()
            static = Credential(key, 0, "Basic " + base64.b64encode(raw).decode("ascii"))
        if static is not None:
            self._static[key] = static
            return static

        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = _Slot()
        now = self._clock()
        current = slot.current
        if current is not None and _fresh(current, now):
            return current
        if current is not None and _valid(current, now) and slot.lock.locked():
            # Someone is refreshing ahead of expiry; this token still works.
            return current
        async with slot.lock:
            now = self._clock()
            current = slot.current
            if current is not None and _fresh(current, now):
                return current
            if slot.failed_at is not None and now - slot.failed_at < FAILURE_COOLDOWN_S:
                raise AuthError(slot.failure)
            try:
                header, lifetime = await self._fetch(scope)
            except AuthError as exc:
                slot.failed_at = self._clock()
                slot.failure = str(exc)
                raise
            slot.failed_at = None
            slot.generation += 1
            now = self._clock()
            slot.current = Credential(
                key,
                slot.generation,
                header,
                expires_at=now + lifetime,
                refresh_at=now + lifetime * REFRESH_AT,
            )
            return slot.current

    def invalidate(self, credential: Credential) -> bool:
        """Forget ``credential`` if it is still the current one; True if it was."""
        slot = self._slots.get(credential.key)
        if slot is None or slot.current is None:
            return False
        if slot.current.generation != credential.generation:
            return False
        slot.current = None
        return True

    def refreshable(self, credential: Credential) -> bool:
        """Can a refused credential be replaced by fetching again?"""
        return credential.key not in self._static

    # -- fetching -------------------------------------------------------------

    async def _fetch(self, scope: AuthScope) -> tuple[str, float]:
        profile = scope.profile
        if isinstance(profile, ClientCredentialsAuth):
            url = profile.token_url
            body: dict[str, Any] = {
                "grant_type": "client_credentials",
                "client_id": profile.client_id,
                "client_secret": profile.client_secret.reveal(),
            }
            if profile.audience:
                body["audience"] = profile.audience
            what = f"token endpoint {url} (auth profile {profile.name!r})"
            deployment = None
        elif isinstance(profile, PasswordAuth):
            url = f"{scope.deployment.url}/auth/token"
            body = {"username": profile.username, "password": profile.password.reveal()}
            what = f"{url} (auth profile {profile.name!r})"
            deployment = scope.deployment
        else:  # pragma: no cover - token profiles never fetch
            raise AuthError(f"auth profile {profile.name!r} cannot fetch tokens")

        request = HttpRequest("POST", url, json=body, timeout_s=FETCH_TIMEOUT_S)
        last = ""
        for attempt in range(1, FETCH_ATTEMPTS + 1):
            started = self._clock()
            try:
                if self._gate is None:
                    response = await self._transport.send(request)
                else:
                    async with self._gate(deployment):
                        response = await self._transport.send(request)
            except TransportError as exc:
                last = f"{what}: {exc}"
            else:
                self.fetches += 1
                if response.status in (200, 201):
                    token, lifetime = self._read_token(response.json(), what)
                    redaction.register(token)
                    if self.on_fetch is not None:
                        self.on_fetch(self.key_for(scope), self._clock() - started)
                    return f"Bearer {token}", lifetime
                reason = _reason(response.json()) or f"HTTP {response.status}"
                last = f"{what} answered {response.status}: {redaction.scrub(reason)}"
                if response.status not in (429, 500, 502, 503, 504):
                    raise AuthError(f"{last}; check the credentials of that profile")
            if attempt < FETCH_ATTEMPTS:
                ceiling = min(FETCH_CAP_S, FETCH_BASE_S * 2 ** (attempt - 1))
                # Equal jitter: at least half the ceiling, so a short outage
                # is always waited out rather than raced through.
                await self._sleep(ceiling / 2 + self._rng.uniform(0, ceiling / 2))
        raise AuthError(f"{last} (gave up after {FETCH_ATTEMPTS} attempts)")

    def _read_token(self, body: Any, what: str) -> tuple[str, float]:
        if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            raise AuthError(f"{what} answered without an access_token")
        token: str = body["access_token"]
        expires_in = body.get("expires_in")
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            return token, max(1.0, float(expires_in))
        exp = _jwt_exp(token)
        if exp is not None:
            return token, max(1.0, exp - self._wall())
        return token, DEFAULT_LIFETIME_S


def _fresh(credential: Credential, now: float) -> bool:
    return credential.refresh_at is None or now < credential.refresh_at


def _valid(credential: Credential, now: float) -> bool:
    return credential.expires_at is None or now < credential.expires_at


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
            return value[:200]
    return ""
