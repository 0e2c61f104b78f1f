"""Faults the simulator can inject, each a constructor argument and an ``airfleet sim`` flag."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Faults"]


@dataclass(frozen=True, slots=True)
class Faults:
    """What goes wrong, and how often. Everything is off by default.

    Rates are fractions of API requests (``/d/<name>/api/...``). An injected
    error, 429, reset or slow answer does not act, except ``slow`` (the server
    acts, then answers too late) and ``commit_then_fail`` (trigger POSTs only:
    the run is recorded, then the client gets a 503 or a dropped connection).
    ``throttle_rate`` answers that fraction with 429 and ``Retry-After:
    throttle_retry_after_s`` at random, whatever the request rate (a gateway's
    own throttling, unlike ``rate_limit_per_s``).

    Hostile ways of answering, each off by default: ``gateway`` puts an auth
    gateway in front of every deployment (as on Astro): a request without a
    credential the deployment accepts is answered by the gateway with a 401
    HTML page, on every path, version and health included (the login
    endpoint ``/auth/token`` passes). ``echo_credentials`` makes every
    refusal quote what it was sent (the Authorization header, the login or
    client-credentials body; the gateway quotes the header cut short).
    ``compress`` gzips every answer to a client that accepts it.
    """

    latency_ms: float = 0.0
    latency_spread_ms: float = 0.0
    error_rate: float = 0.0
    rate_limit_per_s: float | None = None
    throttle_rate: float = 0.0
    throttle_retry_after_s: float = 1.0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 60.0
    commit_then_fail_rate: float = 0.0
    token_ttl_s: float = 3600.0
    token_outage_start_s: float = 0.0
    token_outage_s: float = 0.0
    gateway: bool = False
    echo_credentials: bool = False
    compress: bool = False

    def __post_init__(self) -> None:
        for name in (
            "error_rate",
            "reset_rate",
            "slow_rate",
            "commit_then_fail_rate",
            "throttle_rate",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        if self.token_ttl_s <= 0:
            raise ValueError("token_ttl_s must be positive")
