"""pools.yaml: the desired pools of a fleet, with overrides per tag or deployment name.

::

    version: 1
    pools:                       # every selected deployment
      default_pool: {slots: 128} # default_pool may set slots only
      etl: {slots: 16, description: ETL jobs, include_deferred: false}
    overrides:                   # applied in order; later ones win, field by field
      - match: tag:prod          # selector syntax, as -s (comma = or)
        pools:
          etl: {slots: 32}
      - match: name:prod-eu
        pools:
          reporting: {slots: 8}

Validated like fleet.yaml: every error names the file, the line and the key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airfleet._yaml import config_error_from, load_located
from airfleet.dialects.base import PoolFields
from airfleet.errors import ConfigError, UsageError
from airfleet.inventory import Deployment
from airfleet.selection import Selection, parse_selectors

__all__ = ["DEFAULT_POOL", "PoolSpec", "load_pool_spec", "parse_pool_spec"]

DEFAULT_POOL = "default_pool"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Pool(_Strict):
    slots: Annotated[int, Field(strict=True, ge=-1)] | None = None
    description: str | None = None
    include_deferred: bool | None = None


class _Override(_Strict):
    match: Annotated[str, Field(min_length=1)]
    pools: dict[str, _Pool]


class _Spec(_Strict):
    version: Literal[1]
    pools: dict[str, _Pool] = {}
    overrides: list[_Override] = []


_ALLOWED: dict[tuple[str | int, ...], tuple[str, ...]] = {
    (): tuple(_Spec.model_fields),
    ("pools", "*"): tuple(_Pool.model_fields),
    ("overrides", "*"): tuple(_Override.model_fields),
    ("overrides", "*", "pools", "*"): tuple(_Pool.model_fields),
}


@dataclass(frozen=True, slots=True)
class PoolSpec:
    """The fleet-wide pools and the overrides, ready to resolve per deployment."""

    pools: Mapping[str, PoolFields]
    overrides: tuple[tuple[Selection, Mapping[str, PoolFields]], ...] = ()
    source: str = "<memory>"

    def desired_for(self, deployment: Deployment) -> dict[str, PoolFields]:
        """What ``deployment`` should have: the base pools, then each matching override."""
        desired = dict(self.pools)
        for selection, pools in self.overrides:
            if selection.matches(deployment):
                for name, fields in pools.items():
                    desired[name] = _merge(desired.get(name), fields)
        return desired


def _merge(base: PoolFields | None, top: PoolFields) -> PoolFields:
    if base is None:
        return top
    return PoolFields(
        slots=top.slots if top.slots is not None else base.slots,
        description=top.description if top.description is not None else base.description,
        include_deferred=(
            top.include_deferred if top.include_deferred is not None else base.include_deferred
        ),
    )


def load_pool_spec(path: str | os.PathLike[str]) -> PoolSpec:
    """Read and validate a pools.yaml; ConfigError (file, line, key) if invalid."""
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "no such file; pass the pool spec with --spec FILE", file=source
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=source) from exc
    return parse_pool_spec(text, source=source)


def parse_pool_spec(text: str, *, source: str = "<string>") -> PoolSpec:
    """Validate pools.yaml text; only ConfigError escapes."""
    located = load_located(text, source=source)
    if located.data is None:
        raise ConfigError("the file is empty; start from configs/pools.yaml", file=source)
    if not isinstance(located.data, dict):
        raise located.error((), "the top level must be a mapping with version and pools")
    try:
        model = _Spec.model_validate(located.data)
    except ValidationError as exc:
        raise config_error_from(located, exc, _ALLOWED) from None

    def fields(path: tuple[str | int, ...], name: str, pool: _Pool) -> PoolFields:
        if name == DEFAULT_POOL and (
            pool.description is not None or pool.include_deferred is not None
        ):
            raise located.error(
                path, "default_pool may set slots only (Airflow refuses other changes)"
            )
        new = path[0] == "pools" or name not in model.pools
        if pool.slots is None and name != DEFAULT_POOL and new:
            raise located.error(path, f"pool {name!r} needs slots (-1 for unlimited)")
        return PoolFields(pool.slots, pool.description, pool.include_deferred)

    base = {name: fields(("pools", name), name, pool) for name, pool in model.pools.items()}
    overrides = []
    for index, override in enumerate(model.overrides):
        try:
            selection = parse_selectors([override.match])
        except UsageError as exc:
            raise located.error(("overrides", index, "match"), str(exc)) from None
        pools = {
            name: fields(("overrides", index, "pools", name), name, pool)
            for name, pool in override.pools.items()
        }
        overrides.append((selection, pools))
    return PoolSpec(base, tuple(overrides), source)
