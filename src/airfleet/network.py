"""How requests reach a server: proxies from the environment or the fleet file, and TLS.

No aiohttp here (the transport applies what this module decides): proxy URLs
are parsed into :class:`~airfleet.inventory.Proxy`, the environment's proxy
variables are resolved per URL exactly as requests resolves them, and
:class:`ssl.SSLContext` objects are built from :class:`~airfleet.inventory.Tls`
settings. The fleet file loader uses the same code to check, at load time,
that every file a ``tls:`` mapping names can be read and used.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from airfleet import redaction
from airfleet.inventory import ClientCredentialsAuth, Fleet, Proxy, Secret, Tls

# ssl and urllib.request (with http.client and email) are imported where they
# are used: a fleet file without tls: or proxies is read, and its errors told,
# without them.
if TYPE_CHECKING:
    import ssl

__all__ = [
    "EnvironmentProxies",
    "TlsFileError",
    "check_tls_files",
    "environment_ca_bundle",
    "is_loopback",
    "parse_proxy_url",
    "ssl_context",
    "summarize",
    "unverified_owners",
    "without_user_info",
]

# The variables requests reads for extra trust, in its order of precedence.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
_CA_PEM = "a PEM file of CA certificates"
_CERT_PEM = (
    "a PEM certificate with its private key (the key in the same file, or named by client_key)"
)
# Names listed in one warning line before "and N more".
_MAX_NAMED = 5


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address: where plain http carries no credential off
    this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- proxies ------------------------------------------------------------------------


def parse_proxy_url(text: str, *, assume_http: bool = False) -> Proxy:
    """``http://[user:password@]host[:port]`` as a :class:`Proxy`; ValueError if not one.

    ``assume_http``: a URL without a scheme is taken as ``http://``, as curl
    takes the environment's variables. The error message never
    quotes the user info. The password is registered for redaction.
    """
    if assume_http and "://" not in text:
        text = "http://" + text
    shown = without_user_info(text)
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise ValueError(f"{shown!r} is not a proxy URL; use http://host:port") from None
    if parts.scheme != "http" or not host or (not _HOST.match(host) and not _is_ip(host)):
        raise ValueError(
            f"{shown!r} is not a proxy URL; use http://host:port (airfleet speaks plain "
            "http to a proxy; https requests go through it in a CONNECT tunnel)"
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{shown!r}: a proxy URL is only http://host:port, without a path")
    netloc = f"[{host}]" if ":" in host else host
    url = f"http://{netloc}" + (f":{port}" if port is not None else "")
    if parts.username is None and parts.password is None:
        return Proxy(url)
    username = unquote(parts.username or "")
    password = unquote(parts.password or "")
    # The password as written in the URL, too: a message quoting the raw
    # variable would show it percent-encoded.
    redaction.register(parts.password)
    return Proxy(url, username, Secret(password))


_HOST = re.compile(r"^[A-Za-z0-9._-]+$")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def without_user_info(url: str) -> str:
    """The URL with whatever stands before its last ``@`` masked.

    The last ``@`` of the whole URL, not of the authority as parsed: a
    password with an unencoded ``/``, ``?`` or ``#`` would otherwise end the
    authority early and show its first part. A proxy URL has no path to lose.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" not in rest:
        return url
    prefix = f"{scheme}://" if sep else ""
    return f"{prefix}***@{rest.rpartition('@')[2]}"


class EnvironmentProxies:
    """The proxies the environment names, chosen per URL as requests chooses them.

    Read when made (urllib's own bypass test, which requests also asks,
    reads ``no_proxy`` as it is then): ``http_proxy``/``HTTP_PROXY``, ``https_proxy``,
    ``all_proxy`` (lower case wins, as in urllib and requests) and
    ``no_proxy``/``NO_PROXY``: host names (matching the name and its
    subdomains, with or without the port), IPv4 addresses and CIDR
    ranges, or ``*``. Nothing bypasses a proxy by default, loopback
    included: say ``NO_PROXY=127.0.0.1,localhost`` for that.
    """

    def __init__(self) -> None:
        import urllib.request

        self._proxies = {
            key: value for key, value in urllib.request.getproxies().items() if key != "no"
        }
        self._no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY")
        self._parsed: dict[str, Proxy] = {}

    def __bool__(self) -> bool:
        """Does the environment name any proxy at all?"""
        return bool(self._proxies)

    def proxy_for(self, url: str) -> Proxy | None:
        """The proxy for ``url``, or None to go direct; ValueError if the variable
        that applies is not a usable proxy URL."""
        parts = urlsplit(url)
        host = parts.hostname
        if host is None or _bypassed(host, parts.port, self._no_proxy):
            return None
        for key in (f"{parts.scheme}://{host}", parts.scheme, f"all://{host}", "all"):
            raw = self._proxies.get(key)
            if raw is not None:
                break
        else:
            return None
        proxy = self._parsed.get(raw)
        if proxy is None:
            try:
                proxy = self._parsed[raw] = parse_proxy_url(raw, assume_http=True)
            except ValueError as exc:
                variable = f"{key.partition('://')[0]}_proxy".upper()
                raise ValueError(f"{variable} in the environment: {exc}") from None
        return proxy


def _bypassed(host: str, port: int | None, no_proxy: str | None) -> bool:
    """requests' ``should_bypass_proxies``, line for line in what it decides."""
    if no_proxy:
        entries = [entry for entry in no_proxy.replace(" ", "").split(",") if entry]
        if _is_ipv4(host):
            for entry in entries:
                if "/" in entry:
                    if _in_network(host, entry):
                        return True
                elif host == entry:
                    return True
        else:
            with_port = f"{host}:{port}" if port else host
            for entry in entries:
                entry = entry.lstrip(".")
                if host == entry or with_port == entry:
                    return True
                if host.endswith("." + entry) or with_port.endswith("." + entry):
                    return True
    # urllib's own test (on Linux: no_proxy again, with '*' for everything;
    # on macOS and Windows: the system's proxy exceptions), as requests asks it.
    import urllib.request

    try:
        return bool(urllib.request.proxy_bypass(host))
    except (TypeError, OSError):
        return False


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _in_network(host: str, cidr: str) -> bool:
    try:
        return ipaddress.IPv4Address(host) in ipaddress.IPv4Network(cidr, strict=False)
    except ValueError:
        return False


# -- TLS ------------------------------------------------------------------------------


class TlsFileError(ValueError):
    """A file a TLS setting names cannot be used; ``key`` is that setting's name."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        super().__init__(message)


class _Encrypted(Exception):
    """Raised by the passphrase callback: the key is encrypted."""


def _no_passphrase() -> str:
    # Without a callback OpenSSL would prompt on the terminal, and a cron
    # job would hang there.
    raise _Encrypted


def environment_ca_bundle() -> str | None:
    """The CA bundle ``REQUESTS_CA_BUNDLE`` (else ``CURL_CA_BUNDLE``) names, if any."""
    for variable in CA_BUNDLE_VARIABLES:
        value = os.environ.get(variable)
        if value:
            return value
    return None


def ssl_context(tls: Tls, env_bundle: str | None = None) -> ssl.SSLContext:
    """A client context for ``tls``: the system store (which reads
    ``SSL_CERT_FILE``/``SSL_CERT_DIR`` through OpenSSL) plus ``tls.ca_bundle``,
    or else ``env_bundle``; the client certificate; verification as set.

    Costly (about 50 ms: the system store is parsed): build one per
    distinct settings and keep it. Raises :class:`TlsFileError`.
    """
    import ssl

    context = ssl.create_default_context()
    _load(context, tls, env_bundle)
    if not tls.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    # As aiohttp's own default context: the transport speaks HTTP/1.1.
    context.set_alpn_protocols(("http/1.1",))
    return context


def check_tls_files(tls: Tls) -> None:
    """Raise :class:`TlsFileError` unless every file ``tls`` names loads.

    A bare context, without the system store, so a fleet file is checked
    in microseconds per distinct setting.
    """
    import ssl

    _load(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT), tls, None)


def _load(context: ssl.SSLContext, tls: Tls, env_bundle: str | None) -> None:
    import ssl

    for key in ("ca_bundle", "client_cert", "client_key"):
        value = getattr(tls, key)
        if value is not None and "\0" in value:
            raise TlsFileError(key, "a file name cannot hold a NUL character")
    if env_bundle is not None and "\0" in env_bundle:
        raise TlsFileError(CA_BUNDLE_VARIABLES[0], "a file name cannot hold a NUL character")
    if tls.client_key is not None and tls.client_cert is None:
        raise TlsFileError(
            "client_key", "client_key needs client_cert (the certificate it belongs to)"
        )
    bundle, key = (tls.ca_bundle, "ca_bundle")
    if bundle is None and env_bundle is not None:
        variable = next(v for v in CA_BUNDLE_VARIABLES if os.environ.get(v) == env_bundle)
        bundle, key = env_bundle, variable
    if bundle is not None:
        try:
            if os.path.isdir(bundle):
                context.load_verify_locations(capath=bundle)  # requests accepts a directory too
            else:
                context.load_verify_locations(cafile=bundle)
        except (OSError, ssl.SSLError) as exc:
            raise TlsFileError(key, f"{bundle}: {_why(exc, _CA_PEM)}") from None
    if tls.client_cert is not None:
        try:
            context.load_cert_chain(tls.client_cert, tls.client_key, password=_no_passphrase)
        except _Encrypted:
            where = "client_key" if tls.client_key else "client_cert"
            raise TlsFileError(
                where,
                f"{tls.client_key or tls.client_cert}: the private key is encrypted, and "
                "airfleet reads no passphrase; decrypt it (openssl pkey -in KEY -out KEY.plain)",
            ) from None
        except (OSError, ssl.SSLError) as exc:
            where = _failing_file(exc, tls)
            name = tls.client_key if where == "client_key" else tls.client_cert
            raise TlsFileError(where, f"{name}: {_why(exc, _CERT_PEM)}") from None


def _failing_file(exc: OSError | ssl.SSLError, tls: Tls) -> str:
    """Which of client_cert and client_key a load_cert_chain failure is about."""
    import ssl

    filename = getattr(exc, "filename", None)
    if filename is not None and filename == tls.client_key:
        return "client_key"
    if not isinstance(exc, ssl.SSLError) or tls.client_key is None:
        return "client_cert"
    reason = (exc.reason or "").upper()
    return "client_key" if "KEY" in reason and "MISMATCH" not in reason else "client_cert"


def _why(exc: OSError | ssl.SSLError, wanted: str) -> str:
    import ssl

    if isinstance(exc, ssl.SSLError):
        reason = (exc.reason or exc.strerror or "").replace("_", " ").lower()
        if "key values mismatch" in reason:
            return "the certificate and the key do not belong together"
        return f"not {wanted}" + (f" ({reason})" if reason and "pem lib" not in reason else "")
    if isinstance(exc, FileNotFoundError):
        return "no such file"
    if isinstance(exc, PermissionError):
        return "cannot read it (permission denied)"
    return f"cannot read it ({exc.strerror or exc})"


# -- verify: false ------------------------------------------------------------------


def unverified_owners(fleet: Fleet) -> list[str]:
    """Who has ``tls.verify: false``: ``deployment NAME`` and ``auth profile NAME``."""
    names = [f"deployment {d.name}" for d in fleet.deployments if not d.network.tls.verify]
    used = {d.auth for d in fleet.deployments}
    names += [
        f"auth profile {name}"
        for name, profile in fleet.auth.items()
        if name in used
        and isinstance(profile, ClientCredentialsAuth)
        and not profile.network.tls.verify
    ]
    return names


def summarize(names: Iterable[str]) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 12 more``."""
    listed = list(names)
    if len(listed) <= _MAX_NAMED:
        return ", ".join(listed)
    return ", ".join(listed[:_MAX_NAMED]) + f" and {len(listed) - _MAX_NAMED} more"
