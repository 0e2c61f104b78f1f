"""The one exception tree of airfleet.

::

    AirfleetError                 exit code 1 unless the subclass says otherwise
    ├── UsageError                2  bad command line: selection, --conf, options
    ├── ConfigError               2  fleet.yaml, pools.yaml, job files: carries file, line, key
    ├── DiscoveryError            2  a platform's deployment list could not be read (Astro)
    ├── AuthError                 1  a token could not be obtained, or was refused
    ├── TransportError            1  the request got no HTTP answer
    │   ├── ConnectError              connection refused, reset or dropped
    │   └── TimeoutError              no answer within the per-request timeout
    └── ApiError                  1  an HTTP answer that was not success: status, body excerpt

Every error says whether the request it ends may still have acted on the
server (``may_have_acted``): a POST that got no answer may have made its run;
one refused at connect, or answered 401, did not. Callers decide on that
field, never on the exception's type.

Library code raises these and only these. Foreign exceptions (aiohttp, pydantic,
yaml) are translated once, where they enter, with ``raise ... from exc``.
Messages say what went wrong, where, and what to do; they never contain a
secret, a token or an Authorization header.
"""

from __future__ import annotations

__all__ = [
    "AirfleetError",
    "ApiError",
    "AuthError",
    "ConfigError",
    "ConnectError",
    "DiscoveryError",
    "TimeoutError",
    "TransportError",
    "UsageError",
]

_BODY_EXCERPT = 200


class AirfleetError(Exception):
    """Root of every error airfleet raises on purpose.

    ``may_have_acted``: an attempt of the request this error ends may have
    reached the server and acted without its answer being seen.
    """

    exit_code: int = 1
    may_have_acted: bool = False


class UsageError(AirfleetError):
    """The command line asks for something that cannot be done; nothing was sent."""

    exit_code = 2


class ConfigError(AirfleetError):
    """A configuration file is invalid; nothing was sent.

    ``file``, ``line`` and ``key`` say where, as far as they are known.
    """

    exit_code = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key = key
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        prefix = f"{where}: " if where else ""
        key = f"{self.key}: " if self.key else ""
        return f"{prefix}{key}{self.message}"


class DiscoveryError(AirfleetError):
    """A platform named in ``discover:`` could not be read; nothing was sent to a deployment.

    Exit 2, as for a bad fleet file: the inventory is what is missing.
    """

    exit_code = 2


class AuthError(AirfleetError):
    """A credential could not be obtained, or the server refused it.

    ``status`` is the HTTP status of the refusal, when there was one.
    """

    def __init__(
        self, message: str, *, status: int | None = None, may_have_acted: bool = False
    ) -> None:
        self.status = status
        self.may_have_acted = may_have_acted
        super().__init__(message)


class TransportError(AirfleetError):
    """The request got no HTTP answer.

    ``transient``: the same request may succeed later (a reset, a refused
    connection, a timeout); false for what no retry can fix (a certificate
    that does not verify, a host name that does not resolve, a malformed
    answer). ``may_have_acted``: the request may have reached the server
    (false when it failed before a byte was sent).
    """

    def __init__(
        self, message: str, *, transient: bool = True, may_have_acted: bool = True
    ) -> None:
        self.transient = transient
        self.may_have_acted = may_have_acted
        super().__init__(message)


class ConnectError(TransportError):
    """The connection failed, was reset, or dropped before a full answer."""


class TimeoutError(TransportError):  # noqa: A001 - ours, exported as airfleet.TimeoutError
    """No answer arrived within the per-request timeout."""


class ApiError(AirfleetError):
    """The server answered with a status that is not success."""

    def __init__(
        self, status: int, message: str, *, body: str = "", may_have_acted: bool = False
    ) -> None:
        self.status = status
        self.body_excerpt = body[:_BODY_EXCERPT]
        self.may_have_acted = may_have_acted
        super().__init__(f"HTTP {status}: {message}")
