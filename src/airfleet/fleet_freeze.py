"""Discovered fleet -> a static fleet.yaml (``airfleet discover -o FILE``).

The written file is the source file made static: its ``limits``,
``defaults``, ``auth`` and ``deployments`` as written (``${VAR}`` references
unresolved, so no secret is copied), the deployments discovery found
appended with their name, URL, API version, profile and tags, and the
``discover:`` section dropped. Deployments discovery found unavailable
(hibernating) are listed in a comment: a static entry would send them
requests. Loading the written file gives the same deployments discovery did,
without asking the platform.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import yaml

from airfleet._yaml import Located
from airfleet.errors import ConfigError
from airfleet.fleet_file import astro_profile_name
from airfleet.inventory import AstroSource, Deployment, Fleet

__all__ = ["freeze_fleet"]

_SECRET_FIELDS = {"token": "TOKEN", "client_secret": "CLIENT_SECRET", "password": "PASSWORD"}
# user:password@ in a URL (a proxy's): the one other place a secret is written.
_PASSWORD_IN_URL = re.compile(r"://[^/@\s]*:[^/@\s]+@")
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def freeze_fleet(
    located: Located,
    sources: Sequence[AstroSource],
    discovered: Fleet,
    *,
    now: datetime | None = None,
) -> tuple[str, list[str]]:
    """The static fleet.yaml text, and warnings for the user.

    ``located`` is the source file as read (before ``${VAR}`` substitution),
    ``sources`` its discovery sources and ``discovered`` the fleet
    :func:`airfleet.discover` returned for it.
    """
    raw = located.data
    warnings: list[str] = []
    static = {d.get("name") for d in raw.get("deployments") or [] if isinstance(d, dict)}
    found = [d for d in discovered.deployments if d.name not in static]
    listed = [d for d in found if d.unavailable is None]
    asleep = [d for d in found if d.unavailable is not None]
    auth = {
        name: _without_literal_secrets(name, profile, warnings)
        for name, profile in (raw.get("auth") or {}).items()
    }
    for index, entry in enumerate(raw.get("discover") or []):
        astro = entry["astro"]
        name = astro_profile_name(index)
        if astro.get("auth") is None:
            auth[name] = _without_literal_secrets(
                name, {"kind": "token", "token": astro["token"]}, warnings
            )
    document: dict[str, Any] = {"version": 1}
    for key in ("limits", "defaults"):
        if key in raw:
            document[key] = raw[key]
    if auth:
        document["auth"] = auth
    document["deployments"] = [*(raw.get("deployments") or []), *map(_entry, listed)]
    _refuse_other_secrets(located, document)
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    organizations = ", ".join(sorted({s.organization for s in sources}))
    header = [
        f"# Written by `airfleet discover` from {located.source} at {stamp}.",
        f"# Astro organization {organizations}: {len(listed)} deployments listed"
        + (f" after the {len(static)} static ones" if static else "")
        + (f", {len(asleep)} unavailable left out (see the end)." if asleep else "."),
        "# Run `airfleet discover` again to refresh; this file does not change by itself.",
    ]
    body = yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=100)
    footer: list[str] = []
    if asleep:
        footer = [f"# Left out: {len(asleep)} deployments unavailable at discovery:"]
        footer += [f"#   {d.name}: {d.unavailable}" for d in asleep]
    return "\n".join([*header, body.rstrip("\n"), *footer]) + "\n", warnings


def _entry(deployment: Deployment) -> dict[str, Any]:
    return {
        "name": deployment.name,
        "url": deployment.url,
        "auth": deployment.auth,
        "api": deployment.api,
        "tags": sorted(deployment.tags),
    }


def _without_literal_secrets(name: str, profile: Any, warnings: list[str]) -> Any:
    # A secret written into the source file is not copied into another one
    # (or onto stdout): the frozen file reads it from the environment.
    if not isinstance(profile, dict):
        return profile
    out = dict(profile)
    for key, suffix in _SECRET_FIELDS.items():
        value = out.get(key)
        if isinstance(value, str) and "${" not in value:
            var = "AIRFLEET_" + "".join(c if c.isalnum() else "_" for c in name.upper()) + "_"
            var += suffix
            out[key] = "${" + var + "}"
            warnings.append(
                f"auth profile {name!r} holds its {key} in the file; the written file "
                f"reads it from ${var} instead: export it before using that file"
            )
    return out


def _refuse_other_secrets(located: Located, document: dict[str, Any]) -> None:
    def walk(value: Any, path: tuple[str | int, ...]) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*path, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*path, index))
        elif isinstance(value, str) and "${" not in value and _PASSWORD_IN_URL.search(value):
            raise ConfigError(
                "holds a password written out in a URL (a proxy's?); move it to an "
                "environment variable (${VAR}) before writing a frozen copy",
                file=located.source,
                line=located.line_of(path),
            )

    walk(document, ())
