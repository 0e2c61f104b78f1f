"""The simulator's credentials: OAuth tokens, per-deployment JWTs (HS256), basic auth.

Verified tokens are cached, so checking one costs a dict lookup, not an HMAC.
Nothing here logs or returns a secret; stats name credentials by label only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Literal

__all__ = ["AuthVerdict", "SimCredentials", "TokenBook"]

Verdict = Literal["ok", "missing", "expired", "invalid"]


@dataclass(frozen=True, slots=True)
class SimCredentials:
    """Everything a client needs to talk to the simulator."""

    client_id: str
    client_secret: str
    audience: str
    api_token: str
    username: str
    password: str


@dataclass(frozen=True, slots=True)
class AuthVerdict:
    result: Verdict
    label: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenBook:
    """Issues and checks tokens. ``now`` is wall-clock seconds (JWTs carry epoch times)."""

    def __init__(self, credentials: SimCredentials) -> None:
        self.credentials = credentials
        self._oauth: dict[str, float] = {}  # token -> issued at
        self._jwt_ok: dict[str, tuple[str, float, float]] = {}  # token -> (deployment, iat, exp)
        self._revoked_before = 0.0
        self._basic_ok = "Basic " + base64.b64encode(
            f"{credentials.username}:{credentials.password}".encode()
        ).decode("ascii")

    def issued(self) -> list[str]:
        """Every token this book handed out (for tests that hunt for leaks)."""
        return [*self._oauth, *self._jwt_ok]

    def revoke_all(self, now: float) -> None:
        self._revoked_before = now

    def issue_oauth(self, now: float) -> str:
        token = "sim-oauth-" + secrets.token_urlsafe(24)
        self._oauth[token] = now
        return token

    def issue_jwt(self, deployment: str, secret: bytes, now: float, ttl: float) -> str:
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        iat = int(now)
        claims = {
            "sub": self.credentials.username,
            "aud": "apache-airflow",
            "iss": f"airfleet-sim/{deployment}",
            "iat": iat,
            "nbf": iat,
            "exp": now + ttl,
            "jti": secrets.token_hex(8),
        }
        payload = _b64(json.dumps(claims).encode())
        signing = f"{header}.{payload}".encode("ascii")
        signature = _b64(hmac.new(secret, signing, hashlib.sha256).digest())
        token = f"{header}.{payload}.{signature}"
        self._jwt_ok[token] = (deployment, now, now + ttl)
        return token

    def check(
        self,
        header: str | None,
        *,
        deployment: str,
        api: Literal["v1", "v2"],
        secret: bytes,
        now: float,
        ttl: float,
    ) -> AuthVerdict:
        """Is this Authorization header good for ``deployment`` at ``now``?"""
        if not header:
            return AuthVerdict("missing")
        if header.startswith("Basic "):
            if api == "v1" and hmac.compare_digest(header, self._basic_ok):
                return AuthVerdict("ok", f"basic:{self.credentials.username}")
            return AuthVerdict("missing" if api == "v2" else "invalid")
        if not header.startswith("Bearer "):
            return AuthVerdict("invalid")
        token = header[7:]
        if token == self.credentials.api_token:
            return AuthVerdict("ok", "api_token")
        issued = self._oauth.get(token)
        if issued is not None:
            if issued <= self._revoked_before or now >= issued + ttl:
                return AuthVerdict("expired")
            return AuthVerdict("ok", "oauth")
        known = self._jwt_ok.get(token)
        if known is None:
            known = self._verify_jwt(token, secret, deployment)
        if known is None or known[0] != deployment:
            return AuthVerdict("invalid")
        _, iat, exp = known
        if iat <= self._revoked_before or now >= exp:
            return AuthVerdict("expired")
        return AuthVerdict("ok", f"jwt:{deployment}")

    def _verify_jwt(
        self, token: str, secret: bytes, deployment: str
    ) -> tuple[str, float, float] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        signing = f"{parts[0]}.{parts[1]}".encode("ascii", errors="replace")
        expected = _b64(hmac.new(secret, signing, hashlib.sha256).digest())
        if not hmac.compare_digest(expected, parts[2]):
            return None
        try:
            claims = json.loads(_unb64(parts[1]))
            found = (deployment, float(claims["iat"]), float(claims["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        self._jwt_ok[token] = found
        return found
