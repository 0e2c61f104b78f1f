"""fleet.yaml -> Fleet: reading, pydantic validation at this edge, translation to value objects.

The value objects themselves live in :mod:`airfleet.inventory`, which imports
nothing from here: the rest of airfleet uses a Fleet without loading one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    field_validator,
)

from airfleet._yaml import Located, config_error_from, did_you_mean, load_located, substitute_env
from airfleet.errors import ConfigError, UsageError
from airfleet.inventory import (
    ASTRO_API_URL,
    DEFAULT_FLEET_MAX_IN_FLIGHT,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_PER_SECOND,
    DEFAULT_NETWORK,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT_S,
    AstroSource,
    AuthProfile,
    ClientCredentialsAuth,
    Deployment,
    Fleet,
    FleetLimits,
    Network,
    PasswordAuth,
    Proxy,
    Secret,
    Tls,
    TokenAuth,
    server_of,
    usual_url,
)
from airfleet.network import (
    TlsFileError,
    check_tls_files,
    is_loopback,
    parse_proxy_url,
    without_user_info,
)
from airfleet.selection import parse_selectors

__all__ = ["astro_profile_name", "load_fleet", "parse_fleet", "read_fleet_text"]


def load_fleet(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Fleet:
    """Read and validate a fleet.yaml; raise ``ConfigError`` (file, line, key) if invalid."""
    source = os.fspath(path)
    return parse_fleet(
        read_fleet_text(source), source=source, env=env, base_dir=Path(source).parent
    )


def read_fleet_text(path: str | os.PathLike[str]) -> str:
    """A fleet file's text; ``ConfigError`` naming the file when it cannot be read."""
    source = os.fspath(path)
    try:
        return Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such file; point at your inventory with -c FILE or $AIRFLEET_CONFIG",
            file=source,
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=source) from exc


def parse_fleet(
    text: str,
    *,
    source: str = "<string>",
    env: Mapping[str, str] | None = None,
    base_dir: str | os.PathLike[str] | None = None,
) -> Fleet:
    """Validate fleet.yaml text; ``${VAR}`` reads ``env`` (default: os.environ).

    Relative paths in ``tls:`` resolve against ``base_dir`` (default: the
    current directory; :func:`load_fleet` passes the file's own).
    Only ``ConfigError`` ever escapes.
    """
    located = load_located(text, source=source)
    raw = located.data
    if raw is None:
        raise ConfigError("the file is empty; start from configs/fleet.yaml", file=source)
    if not isinstance(raw, dict):
        raise located.error((), "the top level must be a mapping with version and deployments")
    _no_network_on_other_profiles(located, raw)
    _no_duplicate_opt_out_in_defaults(located, raw)
    raw = _with_env(located, raw, os.environ if env is None else env)
    try:
        model = _Fleet.model_validate(raw)
    except ValidationError as exc:
        raise config_error_from(located, exc, _allowed(raw)) from None
    return _to_fleet(located, model, Path(base_dir) if base_dir is not None else Path.cwd())


# -- the schema ----------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9._-]+$")
PositiveInt = Annotated[int, Field(strict=True, gt=0)]
Rate = Annotated[float, Field(gt=0)]
Timeout = Annotated[float, Field(gt=0)]
Retries = Annotated[int, Field(strict=True, ge=0, le=20)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


PathText = Annotated[StrictStr, Field(min_length=1)]


class _Tls(_Strict):
    ca_bundle: PathText | None = None
    client_cert: PathText | None = None
    client_key: PathText | None = None
    verify: StrictBool = True


# A URL, false (direct), or null/absent (the environment's): checked when
# converted, where the message can say what to write instead (pydantic's
# union errors would name its member types, not the key).
ProxySetting = Any


class _Limits(_Strict):
    max_in_flight: PositiveInt = DEFAULT_FLEET_MAX_IN_FLIGHT
    max_per_second: Rate | None = None


class _Defaults(_Strict):
    auth: str | None = None
    max_per_second: Rate | None = DEFAULT_MAX_PER_SECOND
    max_in_flight: PositiveInt = DEFAULT_MAX_IN_FLIGHT
    timeout_s: Timeout = DEFAULT_TIMEOUT_S
    retries: Retries = DEFAULT_RETRIES
    api: Literal["auto", "v1", "v2"] = "auto"
    tls: _Tls | None = None
    proxy: ProxySetting = None


# A profile's timeout_s and retries are for its token fetches.
class _ClientCredentials(_Strict):
    kind: Literal["client-credentials"]
    token_url: str
    client_id: str
    client_secret: str
    audience: str | None = None
    max_per_second: Rate | None = None
    allow_insecure: bool = False
    timeout_s: Timeout | None = None
    retries: Retries | None = None
    tls: _Tls | None = None
    proxy: ProxySetting = None


class _Token(_Strict):
    kind: Literal["token"]
    token: str
    max_per_second: Rate | None = None
    timeout_s: Timeout | None = None
    retries: Retries | None = None


class _Password(_Strict):
    kind: Literal["password"]
    username: str
    password: str
    max_per_second: Rate | None = None
    timeout_s: Timeout | None = None
    retries: Retries | None = None


_AnyProfile = Annotated[_ClientCredentials | _Token | _Password, Field(discriminator="kind")]


class _Deployment(_Strict):
    name: str
    url: str
    auth: str | None = None
    tags: list[str] = []
    max_per_second: Rate | None = None
    max_in_flight: PositiveInt | None = None
    timeout_s: Timeout | None = None
    retries: Retries | None = None
    api: Literal["auto", "v1", "v2"] | None = None
    allow_insecure: bool = False
    allow_duplicate_url: StrictBool = False
    tls: _Tls | None = None
    proxy: ProxySetting = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: use letters, digits, '.', '_' and '-' only")
        return value


# The Astro platform API's documented per-token rate for GETs.
ASTRO_GET_PER_SECOND = 25.0
Text = Annotated[StrictStr, Field(min_length=1)]


class _Astro(_Strict):
    organization: Text
    token: Text
    workspaces: list[Text] = []
    api_url: Text = ASTRO_API_URL
    auth: Text | None = None
    tags: dict[str, Text | list[Text]] = {}
    max_per_second: Rate = ASTRO_GET_PER_SECOND


class _Discover(_Strict):
    astro: _Astro


class _Fleet(_Strict):
    version: Literal[1]
    limits: _Limits = _Limits()
    defaults: _Defaults = _Defaults()
    auth: dict[str, _AnyProfile] = {}
    discover: list[_Discover] = []
    deployments: list[_Deployment] = []


_ALLOWED: dict[tuple[str | int, ...], tuple[str, ...]] = {
    (): tuple(_Fleet.model_fields),
    ("limits",): tuple(_Limits.model_fields),
    ("defaults",): tuple(_Defaults.model_fields),
    ("defaults", "tls"): tuple(_Tls.model_fields),
    ("deployments", "*"): tuple(_Deployment.model_fields),
    ("deployments", "*", "tls"): tuple(_Tls.model_fields),
    ("discover", "*"): tuple(_Discover.model_fields),
    ("discover", "*", "astro"): tuple(_Astro.model_fields),
    ("auth", "*", "client-credentials"): tuple(_ClientCredentials.model_fields),
    ("auth", "*", "token"): tuple(_Token.model_fields),
    ("auth", "*", "password"): tuple(_Password.model_fields),
}
_PROFILE_KEYS = sorted(
    set(_ClientCredentials.model_fields) | set(_Token.model_fields) | set(_Password.model_fields)
)


def _allowed(raw: dict[str, Any]) -> dict[tuple[str | int, ...], tuple[str, ...]]:
    # Unknown keys in a profile are matched against that profile's kind.
    allowed = {k: v for k, v in _ALLOWED.items() if k[:1] != ("auth",)}
    profiles = raw.get("auth")
    if isinstance(profiles, dict):
        for name, profile in profiles.items():
            kind = profile.get("kind") if isinstance(profile, dict) else None
            allowed[("auth", name)] = _ALLOWED.get(("auth", "*", str(kind)), tuple(_PROFILE_KEYS))
    allowed[("auth", "*", "tls")] = tuple(_Tls.model_fields)
    return allowed


def _no_network_on_other_profiles(located: Located, raw: dict[str, Any]) -> None:
    # Told plainly, before "unknown key": the key exists, just not there.
    profiles = raw.get("auth")
    for name, profile in profiles.items() if isinstance(profiles, dict) else ():
        if not isinstance(profile, dict) or profile.get("kind") not in ("password", "token"):
            continue
        for key in ("tls", "proxy"):
            if key in profile:
                reason = (
                    "its token URL is the deployment's own (its url + /auth/token)"
                    if profile["kind"] == "password"
                    else "it fetches nothing"
                )
                raise located.error(
                    ("auth", name, key),
                    f"a {profile['kind']} profile takes no {key!r}: {reason}; set {key} on "
                    "the deployments, or in defaults",
                )


def _no_duplicate_opt_out_in_defaults(located: Located, raw: dict[str, Any]) -> None:
    # Fleet-wide, the opt-out would hide exactly the copy-paste slip the
    # check is for: it is said next to each deliberate duplicate instead.
    defaults = raw.get("defaults")
    if isinstance(defaults, dict) and "allow_duplicate_url" in defaults:
        raise located.error(
            ("defaults", "allow_duplicate_url"),
            "allow_duplicate_url goes on a deployment that deliberately shares another's "
            "URL, not in defaults",
        )


def _used_profiles(raw: dict[str, Any]) -> set[str]:
    used: set[str] = set()
    defaults = raw.get("defaults")
    default_auth = defaults.get("auth") if isinstance(defaults, dict) else None
    deployments = raw.get("deployments")
    profiles = raw.get("auth") if isinstance(raw.get("auth"), dict) else {}
    for deployment in deployments if isinstance(deployments, list) else []:
        name = deployment.get("auth") if isinstance(deployment, dict) else None
        name = name or default_auth
        if name is None and isinstance(profiles, dict) and len(profiles) == 1:
            name = next(iter(profiles))
        if isinstance(name, str):
            used.add(name)
    sources = raw.get("discover")
    for source in sources if isinstance(sources, list) else []:
        astro = source.get("astro") if isinstance(source, dict) else None
        name = astro.get("auth") if isinstance(astro, dict) else None
        if isinstance(name, str):
            used.add(name)
    return used


def _with_env(located: Located, raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    # Profiles no deployment uses keep their ${VAR}s unresolved: a fleet file
    # may hold prod credentials that a CI job never needs.
    used = _used_profiles(raw)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "auth" and isinstance(value, dict):
            out[key] = {
                name: substitute_env(located, profile, ("auth", name), env)
                if name in used
                else _placeholder(profile)
                for name, profile in value.items()
            }
        else:
            out[key] = substitute_env(located, value, (key,), env)
    return out


def _placeholder(profile: Any) -> Any:
    if not isinstance(profile, dict):
        return profile
    return {k: ("unused" if isinstance(v, str) and "${" in v else v) for k, v in profile.items()}


def _to_fleet(located: Located, model: _Fleet, base_dir: Path) -> Fleet:
    defaults = model.defaults
    if not model.deployments and not model.discover:
        raise located.error(
            (),
            "no deployments: list them under 'deployments', or discover them "
            "('discover: [{astro: {organization: ..., token: ...}}]')",
        )
    networks = _Networks(located, defaults, base_dir)
    profiles: dict[str, AuthProfile] = {}
    used = {d.auth or defaults.auth for d in model.deployments}
    used.update(s.astro.auth for s in model.discover)
    if len(model.auth) == 1:
        used.add(next(iter(model.auth)))  # the default profile when none is named
    for name, profile in model.auth.items():
        # An unused profile's ${VAR}s were never read: its tls files and
        # proxy are not checked either.
        network = networks.of(("auth", name), profile) if name in used else DEFAULT_NETWORK
        profiles[name] = _profile(located, name, profile, defaults, network)
    for index, entry in enumerate(model.discover):
        if entry.astro.auth is None:
            _add_astro_profile(located, index, entry.astro, defaults, profiles)
    deployments: list[Deployment] = []
    seen: dict[str, int] = {}
    servers: dict[str, int] = {}  # server -> the first deployment naming it without opting out
    for index, d in enumerate(model.deployments):
        path = ("deployments", index)
        if d.name in seen:
            first = located.line_of(("deployments", seen[d.name]))
            raise located.error(
                (*path, "name"), f"duplicate deployment name {d.name!r} (first at line {first})"
            )
        seen[d.name] = index
        auth = d.auth or defaults.auth
        if auth is None and len(profiles) == 1:
            auth = next(iter(profiles))
        if auth is None:
            raise located.error(
                path,
                "no auth profile: set 'auth' here or in 'defaults' (profiles: "
                + (", ".join(sorted(profiles)) or "none defined")
                + ")",
            )
        if auth not in profiles:
            where = (*path, "auth") if d.auth else ("defaults", "auth")
            raise located.error(
                where, f"auth profile {auth!r} is not defined{did_you_mean(auth, profiles)}"
            )
        url = _check_url(
            located,
            (*path, "url"),
            d.url,
            owner=f"deployment {d.name!r}",
            allow_insecure=d.allow_insecure,
        )
        if not d.allow_duplicate_url:
            _check_unique_server(located, model, servers, index, url)
        # An explicit null means unlimited; absent means the default.
        rate = (
            d.max_per_second if "max_per_second" in d.model_fields_set else defaults.max_per_second
        )
        deployments.append(
            Deployment(
                name=d.name,
                url=url,
                auth=auth,
                tags=frozenset(d.tags),
                max_in_flight=d.max_in_flight or defaults.max_in_flight,
                max_per_second=rate,
                timeout_s=d.timeout_s or defaults.timeout_s,
                retries=d.retries if d.retries is not None else defaults.retries,
                api=d.api or defaults.api,
                allow_insecure=d.allow_insecure,
                network=networks.of(path, d),
            )
        )
    limits = FleetLimits(model.limits.max_in_flight, model.limits.max_per_second)
    sources = tuple(
        _astro_source(located, index, entry.astro, defaults, profiles, networks)
        for index, entry in enumerate(model.discover)
    )
    return Fleet(tuple(deployments), profiles, limits, located.source, sources)


def astro_profile_name(index: int) -> str:
    """The token profile made for ``discover[index]`` when it names none."""
    return "astro" if index == 0 else f"astro-{index + 1}"


def _add_astro_profile(
    located: Located,
    index: int,
    astro: _Astro,
    defaults: _Defaults,
    profiles: dict[str, AuthProfile],
) -> None:
    """The profile of a source's own token, for the deployments it finds (and any static
    one naming it), when the source names none."""
    name = astro_profile_name(index)
    if name in profiles:
        raise located.error(
            ("discover", index, "astro", "token"),
            f"the deployments found here would use a profile named {name!r} for this "
            "token, but 'auth' already defines one: name the profile they use with "
            "'auth:' here",
        )
    profiles[name] = TokenAuth(
        name, Secret(astro.token), timeout_s=defaults.timeout_s, retries=defaults.retries
    )


def _astro_source(
    located: Located,
    index: int,
    astro: _Astro,
    defaults: _Defaults,
    profiles: dict[str, AuthProfile],
    networks: _Networks,
) -> AstroSource:
    path: tuple[str | int, ...] = ("discover", index, "astro")
    auth = astro.auth or astro_profile_name(index)
    if auth not in profiles:
        raise located.error(
            (*path, "auth"), f"auth profile {auth!r} is not defined{did_you_mean(auth, profiles)}"
        )
    made = profiles[auth] if astro.auth is None else None
    token = made.token if isinstance(made, TokenAuth) else Secret(astro.token)
    api_url = _check_url(
        located, (*path, "api_url"), astro.api_url, owner=f"discover[{index}]", allow_insecure=False
    )
    if api_url.endswith("/v1"):
        api_url = api_url[: -len("/v1")]  # the API's version is ours to add
    network = networks.of(path, astro)
    template = Deployment(
        name="",
        url="",
        auth=auth,
        max_in_flight=defaults.max_in_flight,
        max_per_second=defaults.max_per_second,
        timeout_s=defaults.timeout_s,
        retries=defaults.retries,
        network=network,
    )
    return AstroSource(
        organization=astro.organization,
        token=token,
        template=template,
        workspaces=tuple(dict.fromkeys(astro.workspaces)),
        api_url=api_url,
        tags={tag: _name_globs(located, (*path, "tags", tag), v) for tag, v in astro.tags.items()},
        max_per_second=astro.max_per_second,
        timeout_s=defaults.timeout_s,
        retries=defaults.retries,
        network=network,
        file=located.source,
        line=located.line_of(path),
    )


def _name_globs(
    located: Located, path: tuple[str | int, ...], value: str | list[str]
) -> tuple[str, ...]:
    globs: list[str] = []
    for text in [value] if isinstance(value, str) else value:
        try:
            (terms,) = parse_selectors([text]).groups
        except UsageError as exc:
            raise located.error(path, f"{exc}; here, name:GLOB only") from None
        for term in terms:
            if term.kind != "name":
                raise located.error(
                    path,
                    f"{str(term)!r}: a discovered deployment is tagged by its name "
                    "(name:GLOB, comma = or); its workspace is a tag already",
                )
            globs.append(term.pattern)
    return tuple(globs)


def _check_unique_server(
    located: Located, model: _Fleet, servers: dict[str, int], index: int, url: str
) -> None:
    # One server under two entries gets every call twice: a second trigger
    # would come back "ok, already existed" and hide the slip.
    server = server_of(url)
    first = servers.setdefault(server, index)
    if first == index:
        return
    raise located.error(
        ("deployments", index, "url"),
        f"deployment {model.deployments[index].name!r} has the same URL as deployment "
        f"{model.deployments[first].name!r} (line {located.line_of(('deployments', first))}): "
        f"both are {server}, so every call would reach it twice; remove one, or set "
        "allow_duplicate_url: true on one of them if that is meant",
    )


def _profile(
    located: Located,
    name: str,
    profile: _ClientCredentials | _Token | _Password,
    defaults: _Defaults,
    network: Network,
) -> AuthProfile:
    # Absent or null: the defaults section's, as on a deployment.
    timeout_s = profile.timeout_s or defaults.timeout_s
    retries = profile.retries if profile.retries is not None else defaults.retries
    if isinstance(profile, _ClientCredentials):
        url = _check_url(
            located,
            ("auth", name, "token_url"),
            profile.token_url,
            owner=f"auth profile {name!r}",
            allow_insecure=profile.allow_insecure,
        )
        return ClientCredentialsAuth(
            name,
            url,
            profile.client_id,
            Secret(profile.client_secret),
            profile.audience,
            profile.max_per_second,
            timeout_s=timeout_s,
            retries=retries,
            network=network,
        )
    if isinstance(profile, _Token):
        return TokenAuth(
            name,
            Secret(profile.token),
            profile.max_per_second,
            timeout_s=timeout_s,
            retries=retries,
        )
    assert isinstance(profile, _Password)  # noqa: S101 - the union is closed
    return PasswordAuth(
        name,
        profile.username,
        Secret(profile.password),
        profile.max_per_second,
        timeout_s=timeout_s,
        retries=retries,
    )


class _Networks:
    """Each owner's proxy and TLS: its own keys over ``defaults``' key by key,
    files checked once per distinct setting, equal settings one object."""

    def __init__(self, located: Located, defaults: _Defaults, base_dir: Path) -> None:
        self._located = located
        self._defaults = defaults
        self._base_dir = base_dir
        self._interned: dict[Network, Network] = {DEFAULT_NETWORK: DEFAULT_NETWORK}
        self._checked: set[Tls] = {Tls()}
        self._inherited: Network | None = None  # what an owner with no keys of its own gets

    def of(
        self,
        path: tuple[str | int, ...],
        own: _Deployment | _ClientCredentials | _Token | _Password | _Astro,
    ) -> Network:
        """The network of the deployment or profile ``own``, at ``path`` in the file."""
        tls: _Tls | None = getattr(own, "tls", None)
        proxy: Any = getattr(own, "proxy", None)
        has_proxy = "proxy" in own.model_fields_set
        if tls is None and not has_proxy:
            # The common case, 10,000 times in a large fleet: built once.
            if self._inherited is None:
                self._inherited = self._build((), None, None, has_proxy=False)
            return self._inherited
        return self._build(path, tls, proxy, has_proxy=has_proxy)

    def _build(
        self,
        path: tuple[str | int, ...],
        own_tls: _Tls | None,
        own_proxy: Any,
        *,
        has_proxy: bool,
    ) -> Network:
        defaults = self._defaults
        values: dict[str, Any] = {}
        where: dict[str, tuple[str | int, ...]] = {}
        for source, tls in ((("defaults",), defaults.tls), (path, own_tls)):
            for key in tls.model_fields_set if tls is not None else ():
                values[key] = getattr(tls, key)
                where[key] = (*source, "tls", key)
        for key in ("ca_bundle", "client_cert", "client_key"):
            if values.get(key) is not None:
                values[key] = self._resolve(values[key])
        settings = Tls(**values)
        if settings not in self._checked:
            try:
                check_tls_files(settings)
            except TlsFileError as exc:
                raise self._located.error(where.get(exc.key, (*path, "tls")), str(exc)) from None
            self._checked.add(settings)
        if has_proxy:
            proxy = self._proxy((*path, "proxy"), own_proxy)
        elif "proxy" in defaults.model_fields_set:
            proxy = self._proxy(("defaults", "proxy"), defaults.proxy)
        else:
            proxy = None
        network = Network(proxy, settings)
        return self._interned.setdefault(network, network)

    def _proxy(self, path: tuple[str | int, ...], value: Any) -> Proxy | Literal[False] | None:
        if value is False or value is None:
            return value  # False: direct; None: the environment's
        if not isinstance(value, str):
            what = _kind_of(value)
            raise self._located.error(
                path,
                f"{what} is not a proxy: give its URL (http://host:port), or false to go direct",
            )
        try:
            return parse_proxy_url(value)
        except ValueError as exc:
            raise self._located.error(path, str(exc)) from None

    def _resolve(self, value: str) -> str:
        candidate = Path(value).expanduser()
        return str(candidate if candidate.is_absolute() else self._base_dir / candidate)


def _kind_of(value: Any) -> str:
    """What a value is, in words, without quoting it (it may be a secret)."""
    if value is True:
        return "true"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "a number" if isinstance(value, int | float) else "that"


def _check_url(
    located: Located,
    path: tuple[str | int, ...],
    url: str,
    *,
    owner: str,
    allow_insecure: bool,
) -> str:
    usual = usual_url(url)
    if usual is not None and (usual[0] == "https" or allow_insecure):
        return url.rstrip("/")  # the usual shape holds nothing to refuse
    shown = without_user_info(url)
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        host, parts = None, None
    # Any "@": a password holding "/", "?" or "#" ends the authority early,
    # so the parsed URL has no user info and the password sits in its path.
    if "@" in url:
        # aiohttp refuses such a URL beside an Authorization header, and the
        # password would reach every message that names the URL.
        raise located.error(
            path,
            f"the URL of {owner} carries a user name or password ({shown}); leave them "
            "out of it and put the credentials in an auth profile (kind: password)",
        )
    if parts is None or parts.scheme not in ("http", "https") or not host:
        raise located.error(path, f"{shown!r} is not an http(s) URL; use https://host/path")
    if parts.query or parts.fragment:
        raise located.error(path, f"{shown!r}: leave out the query and fragment")
    try:
        port = parts.port
    except ValueError:
        port = 0  # not a number, or above 65535
    if port == 0:
        raise located.error(path, f"{shown!r}: the port must be a number from 1 to 65535")
    if parts.scheme == "http" and not allow_insecure and not is_loopback(host):
        raise located.error(
            path,
            f"{shown!r} is plain http to a non-loopback host; use https, "
            "or set allow_insecure: true next to it",
        )
    return url.rstrip("/")
