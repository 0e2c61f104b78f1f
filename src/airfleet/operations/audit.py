"""Pool audit: compare each deployment's pools with the spec; plan the fixes.

The audit is one read-only call per deployment. ``--apply`` then plans one
call per fix (create, update, or with ``--prune`` delete), each with its own
result; both are plain plans run by the engine.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from airfleet.dialects.base import Dialect, PoolFields
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, failed, paginate, read
from airfleet.plan import Call, Plan
from airfleet.pool_spec import DEFAULT_POOL, PoolSpec
from airfleet.protocol import Conversation, Request, Verdict
from airfleet.results import Outcome, Result

__all__ = [
    "AuditSpec",
    "Fix",
    "FixSpec",
    "compare",
    "fixes_from",
    "merge_applied",
    "plan_audit",
    "plan_fixes",
]

FIELDS = ("slots", "description", "include_deferred")


@dataclass(frozen=True, slots=True)
class Fix:
    """One change that brings a pool to the spec."""

    pool: str
    action: Literal["create", "update", "delete"]
    fields: PoolFields = field(default_factory=PoolFields)
    current: Mapping[str, Any] | None = None


def compare(
    desired: Mapping[str, PoolFields], have: Mapping[str, Mapping[str, Any]], *, prune: bool
) -> tuple[list[dict[str, Any]], list[Fix]]:
    """Drift items (``{"pool", "field", "want", "have"}``) and the fixes that remove them."""
    drift: list[dict[str, Any]] = []
    fixes: list[Fix] = []
    for name, want in sorted(desired.items()):
        current = have.get(name)
        if current is None:
            drift.append({"pool": name, "field": "exists", "want": True, "have": False})
            fixes.append(Fix(name, "create", want))
            continue
        changed: dict[str, Any] = {}
        for key in FIELDS:
            wanted = getattr(want, key)
            if wanted is not None and current.get(key) != wanted:
                drift.append({"pool": name, "field": key, "want": wanted, "have": current.get(key)})
                changed[key] = wanted
        if changed:
            fixes.append(Fix(name, "update", PoolFields(**changed), current))
    for name in sorted(set(have) - set(desired) - {DEFAULT_POOL}):
        drift.append({"pool": name, "field": "exists", "want": False, "have": True})
        if prune:
            fixes.append(Fix(name, "delete"))
    return drift, fixes


def _utilisation(pools: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    busy = [
        p["name"]
        for p in pools
        if p.get("queued_slots", 0) > 0 or (p.get("open_slots") == 0 and p.get("slots") != 0)
    ]
    return {
        "slots": sum(p["slots"] for p in pools if p.get("slots", 0) > 0),
        "occupied": sum(p.get("occupied_slots", 0) for p in pools),
        "queued": sum(p.get("queued_slots", 0) for p in pools),
        "busy_pools": busy,
    }


@dataclass(frozen=True, slots=True)
class AuditSpec:
    """Audit one deployment against its desired pools (read-only)."""

    desired: Mapping[str, PoolFields]
    prune: bool = False

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return ()

    def converse(self, dialect: Dialect) -> Conversation:
        pools, _ = yield from paginate(dialect, dialect.list_pools, dialect.read_pools, "name")
        have = {p["name"]: p for p in pools}
        drift, fixes = compare(self.desired, have, prune=self.prune)
        data = {
            "drift": drift,
            "applied": [],
            "utilisation": _utilisation(pools),
            "fixes": [_fix_data(f) for f in fixes],
        }
        # Drift fails the call so that a scheduled audit exits 1 and alerts.
        outcome = Outcome.FAILED if drift else Outcome.OK
        error = f"{len(drift)} drift item(s)" if drift else None
        return Verdict(outcome, data=data, error=error, status=200)


def _fix_data(fix: Fix) -> dict[str, Any]:
    fields = {k: getattr(fix.fields, k) for k in FIELDS if getattr(fix.fields, k) is not None}
    data: dict[str, Any] = {"pool": fix.pool, "action": fix.action, "fields": fields}
    if fix.current is not None:
        data["current"] = {k: fix.current.get(k) for k in FIELDS}
    return data


def fixes_from(data: Mapping[str, Any]) -> list[Fix]:
    """The fixes an audit result planned (its ``data["fixes"]``)."""
    return [
        Fix(item["pool"], item["action"], PoolFields(**item["fields"]), item.get("current"))
        for item in data.get("fixes", [])
    ]


@dataclass(frozen=True, slots=True)
class FixSpec:
    """Apply one fix. Safe to repeat: a create that finds the pool, or a delete
    that does not, is already done."""

    fix: Fix

    def request(self, dialect: Dialect) -> Request:
        fix = self.fix
        if fix.action == "create":
            return dialect.create_pool(fix.pool, fix.fields)
        if fix.action == "delete":
            return dialect.delete_pool(fix.pool)
        return dialect.update_pool(fix.pool, fix.fields, current=fix.current or {})

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return (self.request(dialect),)

    def converse(self, dialect: Dialect) -> Conversation:
        answer = yield from ask(self.request(dialect))
        data = _fix_data(self.fix)
        done = (self.fix.action == "create" and answer.status == 409) or (
            self.fix.action == "delete" and answer.status == 404
        )
        if not answer.ok and not done:
            verdict = failed(dialect, answer, what=f"{self.fix.action} pool {self.fix.pool}")
            return Verdict(verdict.outcome, data=data, error=verdict.error, status=verdict.status)
        if answer.ok and self.fix.action != "delete":
            pool = read(dialect.read_pool, answer)
            data["now"] = {k: pool[k] for k in FIELDS}
        return Verdict(Outcome.OK, data=data, status=answer.status)


def plan_audit(deployments: Sequence[Deployment], spec: PoolSpec, *, prune: bool = False) -> Plan:
    """One read-only audit call per deployment."""
    calls = tuple(
        Call(d, "audit_pools", "", AuditSpec(spec.desired_for(d), prune)) for d in deployments
    )
    return Plan("audit_pools", calls)


def plan_fixes(audited: Mapping[Deployment, Sequence[Fix]]) -> Plan:
    """One call per fix, from the audit's findings."""
    calls = tuple(
        Call(deployment, "apply_pool", fix.pool, FixSpec(fix))
        for deployment, fixes in audited.items()
        for fix in fixes
    )
    return Plan("apply_pool", calls, mutating=True)


def merge_applied(audits: Sequence[Result], fixes: Sequence[Result]) -> list[Result]:
    """Each deployment's audit result with its fixes' outcomes in ``data.applied``.

    A deployment whose every fix succeeded is ok: its drift is gone.
    """
    by_deployment: dict[str, list[Result]] = {}
    for fix in fixes:
        by_deployment.setdefault(fix.deployment, []).append(fix)
    merged = []
    for result in audits:
        done = by_deployment.get(result.deployment, [])
        if not done:
            merged.append(result)
            continue
        outcomes = [
            {**f.data, "outcome": f.outcome.value, "status": f.status, "error": f.error}
            for f in done
        ]
        failures = [f for f in done if f.outcome is not Outcome.OK]
        left = _unfixed(result)
        error = failures[0].error if failures else (result.error if left else None)
        merged.append(
            dataclasses.replace(
                result,
                outcome=Outcome.FAILED if failures or left else Outcome.OK,
                error=error,
                data={**result.data, "applied": outcomes},
                requests=result.requests + sum(f.requests for f in done),
                attempts=max([result.attempts, *(f.attempts for f in done)]),
            )
        )
    return merged


def _unfixed(result: Result) -> bool:
    """Drift the fixes do not touch: pools not in the spec, without --prune."""
    fixed = {f["pool"] for f in result.data.get("fixes", [])}
    return any(d["pool"] not in fixed for d in result.data.get("drift", []))
