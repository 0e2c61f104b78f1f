"""structlog set-up (called once, by the CLI) and the engine-event log listener.

Output format is a processor chain: console on a terminal, JSON otherwise.
A redaction processor sits in the chain before rendering, so no secret
reaches a log line even if a caller binds one by mistake.

structlog itself is imported by :func:`configure_logging` and by the first
line logged, not with this module: every ``airfleet`` command imports this
module, and structlog, which loads rich and asyncio with it, would be among
the largest imports a bad fleet file waits for (benchmarks/README.md,
"Start-up").
"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import MutableMapping
from typing import Any, Literal, TextIO

from airfleet import redaction
from airfleet.events import (
    AttemptFinished,
    CallFinished,
    DialectDetected,
    Event,
    ReAuthenticating,
    RunFinished,
    TokenFetched,
)
from airfleet.inventory import Fleet
from airfleet.network import summarize, unverified_owners
from airfleet.results import Outcome

__all__ = [
    "LogFormat",
    "configure_logging",
    "log_event",
    "redact_processor",
    "warn_unverified_tls",
]

LogFormat = Literal["console", "json"]

# Keys whose values are always masked, whatever they hold.
_SECRET_KEYS = frozenset(
    {"authorization", "password", "client_secret", "token", "access_token", "secret", "headers"}
)


def redact_processor(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask secret-named keys and any registered secret value in the event."""
    for key, value in list(event_dict.items()):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = redaction.MASK
        elif isinstance(value, str):
            event_dict[key] = redaction.scrub(value)
    return event_dict


def configure_logging(
    *, fmt: LogFormat | None = None, verbose: bool = False, stream: TextIO | None = None
) -> None:
    """Configure structlog for the process: logs go to ``stream`` (stderr)."""
    import structlog

    stream = stream or sys.stderr
    if fmt is None:
        fmt = "console" if stream.isatty() else "json"
    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=stream.isatty())
    global _threshold
    _threshold = logging.DEBUG if verbose else logging.WARNING
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.DEBUG if verbose else logging.WARNING
        ),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


@functools.cache
def _logger() -> Any:
    """airfleet's structlog logger (a proxy that follows structlog's configuration)."""
    import structlog

    return structlog.get_logger("airfleet")


# The level configure_logging() set (NOTSET: structlog's own configuration,
# which logs everything). log_event checks it before building a line: a bound
# logger costs microseconds, and a run finishes one call per deployment.
_threshold = logging.NOTSET


def log_event(event: Event) -> None:
    """Engine listener: one info line per finished call, the rest at debug."""
    if isinstance(event, CallFinished):
        result = event.result
        # A planned skip (a hibernating deployment, a step after a failed
        # one) is news, not a problem: only an interruption's skips warn.
        quiet = result.outcome is Outcome.OK or (
            result.outcome is Outcome.SKIPPED and not result.data.get("interrupted")
        )
        if _threshold > (logging.INFO if quiet else logging.WARNING):
            return
        log = _logger().bind(
            deployment=result.deployment,
            operation=result.operation,
            target=result.target,
            attempts=result.attempts,
        )
        if result.outcome is Outcome.OK:
            log.info("call ok", status=result.status, latency_ms=round(result.latency_ms, 1))
        elif quiet:
            log.info("call skipped", reason=result.error)
        else:
            log.warning(f"call {result.outcome.value}", status=result.status, error=result.error)
    elif _threshold > logging.DEBUG:
        return  # everything below is debug
    elif isinstance(event, AttemptFinished):
        _logger().debug(
            "attempt",
            deployment=event.deployment or "token service",
            method=event.method,
            path=event.path,
            status=event.status,
            attempt=event.attempt,
            delay_s=None if event.delay_s is None else round(event.delay_s, 3),
            **({"reason": event.reason} if event.reason else {}),
        )
    elif isinstance(event, ReAuthenticating):
        _logger().debug(
            "credential refused; fetching a fresh one",
            deployment=event.deployment,
            credential=event.key,
            status=event.status,
        )
    elif isinstance(event, TokenFetched):
        _logger().debug(
            "token fetched", credential=event.key, duration_s=round(event.duration_s, 3)
        )
    elif isinstance(event, DialectDetected):
        if event.error is not None:
            _logger().debug("detection failed", deployment=event.deployment, error=event.error)
        else:
            _logger().debug(
                "detected", deployment=event.deployment, api=event.api, version=event.version
            )
    elif isinstance(event, RunFinished):
        _logger().info(
            "run finished",
            operation=event.operation,
            ok=event.ok,
            failed=event.failed,
            skipped=event.skipped,
            duration_s=round(event.duration_s, 3),
        )


def warn_unverified_tls(fleet: Fleet) -> None:
    """Warn, naming them, about the deployments and profiles with ``tls.verify: false``.

    The CLI calls it at the start of every run that sends requests, so a
    setting meant for a day of debugging does not go unnoticed for a year.
    """
    owners = unverified_owners(fleet)
    if owners:
        _logger().warning(
            "TLS certificates are not verified (tls.verify: false): anyone on the "
            "network path can read and change these requests",
            applies_to=summarize(owners),
            count=len(owners),
        )
