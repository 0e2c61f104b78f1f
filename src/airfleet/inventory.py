"""The fleet inventory: fleet.yaml turned into frozen value objects.

The loader (``load_fleet`` / ``parse_fleet``) validates with pydantic at this
edge and hands the rest of airfleet plain frozen dataclasses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from airfleet._gc import DEFAULT_THRESHOLD, first_threshold_at_least
from airfleet.errors import ConfigError

__all__ = [
    "ApiChoice",
    "AuthProfile",
    "ClientCredentialsAuth",
    "Deployment",
    "Fleet",
    "FleetLimits",
    "PasswordAuth",
    "Secret",
    "TokenAuth",
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


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """A ready bearer token (Astro Deployment, Workspace or Organization API token)."""

    name: str
    token: Secret
    max_per_second: float | None = None
    kind: Literal["token"] = "token"


@dataclass(frozen=True, slots=True)
class PasswordAuth:
    """Username and password: a JWT from ``{url}/auth/token`` on Airflow 3, basic auth on 2."""

    name: str
    username: str
    password: Secret
    max_per_second: float | None = None
    kind: Literal["password"] = "password"


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

    def __repr__(self) -> str:
        return f"Deployment({self.name!r}, {self.url!r}, api={self.api!r})"


@dataclass(frozen=True, slots=True)
class Fleet:
    """A validated fleet: limits, auth profiles and deployments in file order."""

    deployments: tuple[Deployment, ...]
    auth: Mapping[str, AuthProfile] = field(default_factory=dict)
    limits: FleetLimits = field(default_factory=FleetLimits)
    source: str = "<memory>"

    def profile_for(self, deployment: Deployment) -> AuthProfile:
        """The auth profile a deployment names (validated to exist at load time)."""
        return self.auth[deployment.auth]

    def __repr__(self) -> str:
        return f"Fleet({len(self.deployments)} deployments, source={self.source!r})"


# -- loading ---------------------------------------------------------------------

__all__ += ["load_fleet", "parse_fleet"]


def load_fleet(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Fleet:
    """Read and validate a fleet.yaml; raise ``ConfigError`` (file, line, key) if invalid."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such file; point at your inventory with -c FILE or $AIRFLEET_CONFIG",
            file=source,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=source) from exc
    return parse_fleet(text, source=source, env=env)


def parse_fleet(
    text: str, *, source: str = "<string>", env: Mapping[str, str] | None = None
) -> Fleet:
    """Validate fleet.yaml text; only ``ConfigError`` ever escapes."""
    from airfleet._inventory_schema import build_fleet

    # A large fleet file makes objects that all live until it is validated:
    # paced, the collector walks them 46 times instead of 649 for 10,000
    # deployments.
    with first_threshold_at_least(DEFAULT_THRESHOLD):
        return build_fleet(text, source=source, env=os.environ if env is None else env)
