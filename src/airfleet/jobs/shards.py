"""Splitting a job into shards that run apart (Airflow's mapped tasks) within the fleet's limits.

A shard is a set of deployments: each deployment is in exactly one, and the
same inventory always gives the same split, whatever order the file lists
it in (names sorted, then dealt round-robin, so shards differ by at most
one deployment). Per-deployment limits are therefore untouched: only one
shard ever sends to a deployment.

Limits the shards share are divided so that together they never exceed
them, however the shards overlap in time: the fleet-wide in-flight cap
(whole requests, the remainder going to the first shards), the fleet-wide
rate, a step's own limits, each credential's rate (among the shards that
use it) and each discovery source's rate (every shard asks the platform
itself). A shard of the fleet is just a :class:`~airfleet.inventory.Fleet`
with smaller limits and fewer deployments, so the engine needs no notion
of shards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from airfleet.errors import ConfigError, UsageError
from airfleet.inventory import AuthProfile, Deployment, Fleet, FleetLimits
from airfleet.jobs.spec import Job
from airfleet.selection import select

__all__ = ["Shard", "job_deployments", "restrict", "share_fleet", "share_limits", "split"]


@dataclass(frozen=True, slots=True)
class Shard:
    """Shard ``index`` (from 0) of ``count``: its deployments, and each credential's share.

    ``sharers``: for each auth profile, how many shards hold a deployment
    that uses it (its rate is divided by that many). A shard travels between
    Airflow tasks as :meth:`to_dict`, which holds names only, nothing secret.
    """

    index: int
    count: int
    deployments: tuple[str, ...]
    sharers: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "count": self.count,
            "deployments": list(self.deployments),
            "sharers": dict(self.sharers),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Shard:
        try:
            index, count = int(data["index"]), int(data["count"])
            names = tuple(str(name) for name in data["deployments"])
            sharers = {str(k): int(v) for k, v in dict(data.get("sharers") or {}).items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise UsageError(f"not a shard: {exc!r}; pass what split() made") from None
        if not 0 <= index < count:
            raise UsageError(f"shard index {index} is not within 0..{count - 1}")
        return cls(index, count, names, sharers)

    def __repr__(self) -> str:
        return f"Shard({self.index}/{self.count}, {len(self.deployments)} deployments)"


def job_deployments(job: Job, fleet: Fleet) -> tuple[Deployment, ...]:
    """The deployments any step of ``job`` selects, in fleet order.

    ConfigError (at the step's line) when a step's selection matches nothing:
    checked once for the whole job, before it is split.
    """
    chosen: set[str] = set()
    for step in job.steps:
        try:
            found = select(fleet.deployments, (*job.select, *step.select))
        except UsageError as exc:
            raise ConfigError(f"{step.label}: {exc}", file=job.source, line=step.line) from None
        chosen.update(d.name for d in found)
    return tuple(d for d in fleet.deployments if d.name in chosen)


def split(
    deployments: Sequence[Deployment], count: int, *, caps: Sequence[int]
) -> tuple[Shard, ...]:
    """``count`` shards of ``deployments`` (some empty if there are fewer deployments).

    ``caps``: the in-flight caps the shards will share (the fleet's, each
    step's own). UsageError if ``count`` is below 1 or above the smallest
    of them: each shard needs at least one request in flight.
    """
    if count < 1:
        raise UsageError(f"shards must be at least 1, not {count}")
    cap = min(caps, default=count)
    if count > cap:
        raise UsageError(
            f"{count} shards cannot share a max_in_flight of {cap}: each needs at least one "
            f"request in flight; use at most {cap} shards or raise that limit"
        )
    ordered = sorted(deployments, key=lambda d: d.name)
    dealt = [ordered[i::count] for i in range(count)]
    sharers: dict[str, int] = {}
    for members in dealt:
        for profile in {d.auth for d in members}:
            sharers[profile] = sharers.get(profile, 0) + 1
    return tuple(
        Shard(i, count, tuple(d.name for d in members), sharers) for i, members in enumerate(dealt)
    )


def share_limits(limits: FleetLimits, shard: Shard) -> FleetLimits:
    """This shard's part of fleet-wide ``limits``: the parts add up to no more than the whole."""
    base, extra = divmod(limits.max_in_flight, shard.count)
    in_flight = base + (1 if shard.index < extra else 0)
    if in_flight < 1:
        raise UsageError(
            f"{shard.count} shards cannot share max_in_flight {limits.max_in_flight}: "
            "each needs at least one"
        )
    rate = limits.max_per_second
    return FleetLimits(in_flight, rate / shard.count if rate is not None else None)


def share_fleet(fleet: Fleet, shard: Shard) -> Fleet:
    """``fleet`` with this shard's share of every limit shards share (its deployments all kept).

    Applied before discovery, so that each shard asks the platform at its
    share of the source's rate; :func:`restrict` then keeps the shard's own.
    """
    auth = {
        name: _shared_rate(profile, shard.sharers.get(name, shard.count))
        for name, profile in fleet.auth.items()
    }
    return dataclasses.replace(
        fleet,
        auth=auth,
        limits=share_limits(fleet.limits, shard),
        discovery=tuple(
            dataclasses.replace(s, max_per_second=s.max_per_second / shard.count)
            for s in fleet.discovery
        ),
    )


def restrict(fleet: Fleet, shard: Shard) -> tuple[Fleet, tuple[str, ...]]:
    """``fleet`` with the shard's deployments only, and the names it no longer has.

    A name the fleet lacks means the inventory changed since the split (a
    deployment deleted, renamed or no longer discovered).
    """
    mine = set(shard.deployments)
    kept = tuple(d for d in fleet.deployments if d.name in mine)
    known = {d.name for d in kept}
    gone = tuple(name for name in shard.deployments if name not in known)
    return dataclasses.replace(fleet, deployments=kept), gone


def _shared_rate(profile: AuthProfile, sharers: int) -> AuthProfile:
    rate = profile.max_per_second
    if rate is None or sharers <= 1:
        return profile
    return dataclasses.replace(profile, max_per_second=rate / sharers)
