"""Pool audit: the spec file, drift computation, and audit/apply end to end on 300 deployments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _simthread import SimThread, sim_in_thread
from airfleet.dialects.base import PoolFields
from airfleet.errors import ConfigError
from airfleet.inventory import Deployment
from airfleet.operations.audit import compare
from airfleet.pool_spec import load_pool_spec, parse_pool_spec
from airfleet.sim import Simulator

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
SPEC = """\
version: 1
pools:
  default_pool: {slots: 128}
  etl: {slots: 16, description: ETL}
  reporting: {slots: 8}
overrides:
  - match: tag:prod
    pools:
      etl: {slots: 32}
"""


def dep(name: str, *tags: str) -> Deployment:
    return Deployment(name, f"https://{name}.example.com", "t", frozenset(tags))


def test_example_spec_loads_and_resolves_overrides() -> None:
    """configs/pools.yaml loads; overrides apply by tag and name, later ones winning."""
    spec = load_pool_spec(CONFIGS / "pools.yaml")
    prod_eu = spec.desired_for(dep("prod-eu", "prod"))
    assert prod_eu["etl"] == PoolFields(32, "ETL and loads", False)
    assert prod_eu["backfill"].slots == 4
    dev = spec.desired_for(dep("dev-1", "dev"))
    assert dev["etl"].slots == 16
    assert "backfill" not in dev


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "version: 1\npools:\n  default_pool: {slots: 1, description: x}\n",
            3,
            "default_pool may set slots only",
        ),
        ("version: 1\npools:\n  etl: {description: x}\n", 3, "needs slots"),
        ("version: 1\npools:\n  etl: {slot: 3}\n", 3, "did you mean 'slots'"),
        (
            "version: 1\noverrides:\n  - match: color:red\n    pools: {}\n",
            3,
            "unknown selector kind",
        ),
        (
            "version: 1\noverrides:\n  - match: tag:x\n    pools:\n      new: {description: y}\n",
            5,
            "needs slots",
        ),
        ("version: 1\npools:\n  etl: {slots: -2}\n", 3, "greater than or equal to -1"),
    ],
)
def test_spec_errors_name_line_and_fix(text: str, line: int, message: str) -> None:
    """pools.yaml errors carry the file, the line and what to do."""
    with pytest.raises(ConfigError) as caught:
        parse_pool_spec(text, source="pools.yaml")
    assert caught.value.line == line
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"pools.yaml:{line}:")


def test_compare_reports_missing_mismatched_and_extra() -> None:
    """Drift: missing pools, mismatches, pools not in the spec (deleted only with prune)."""
    desired = {"etl": PoolFields(16, "ETL"), "reporting": PoolFields(8)}
    have = {
        "default_pool": {"name": "default_pool", "slots": 128},
        "etl": {"name": "etl", "slots": 10, "description": "ETL", "include_deferred": False},
        "old": {"name": "old", "slots": 1},
    }
    drift, fixes = compare(desired, have, prune=False)
    assert drift == [
        {"pool": "etl", "field": "slots", "want": 16, "have": 10},
        {"pool": "reporting", "field": "exists", "want": True, "have": False},
        {"pool": "old", "field": "exists", "want": False, "have": True},
    ]
    assert [(f.pool, f.action) for f in fixes] == [("etl", "update"), ("reporting", "create")]
    _, pruning = compare(desired, have, prune=True)
    assert ("old", "delete") in [(f.pool, f.action) for f in pruning]


_pool = st.builds(
    PoolFields,
    slots=st.integers(-1, 64),
    description=st.one_of(st.none(), st.sampled_from(["a", "b"])),
    include_deferred=st.one_of(st.none(), st.booleans()),
)
_names = st.sampled_from(["default_pool", "etl", "reporting", "x", "y"])


@given(
    desired=st.dictionaries(_names, _pool, max_size=5),
    have=st.dictionaries(_names, _pool, max_size=5),
    prune=st.booleans(),
)
def test_applying_the_fixes_leaves_no_drift(
    desired: dict[str, PoolFields], have: dict[str, PoolFields], prune: bool
) -> None:
    """For any spec and state: after the fixes, only unpruned extra pools remain as drift."""
    state = {
        n: {
            "name": n,
            "slots": p.slots,
            "description": p.description or "",
            "include_deferred": bool(p.include_deferred),
        }
        for n, p in have.items()
    }
    _, fixes = compare(desired, state, prune=prune)
    for fix in fixes:
        if fix.action == "delete":
            del state[fix.pool]
            continue
        pool = state.setdefault(
            fix.pool, {"name": fix.pool, "slots": 128, "description": "", "include_deferred": False}
        )
        for key in ("slots", "description", "include_deferred"):
            if getattr(fix.fields, key) is not None:
                pool[key] = getattr(fix.fields, key)
    drift, again = compare(desired, state, prune=prune)
    assert again == []
    assert all(d["field"] == "exists" and d["want"] is False for d in drift)
    if prune:
        assert drift == []


# -- end to end ---------------------------------------------------------------------

DRIFTED = {"dep-0003", "dep-0010", "dep-0042", "dep-0101", "dep-0202", "dep-0299"}


def in_sync(sim: Simulator) -> None:
    """Give every deployment exactly the spec's pools, then drift a few on purpose."""
    for i, name in enumerate(sim.names):
        prod = i % 3 == 0
        sim.set_pool(name, "etl", slots=32 if prod else 16, description="ETL")
        sim.set_pool(name, "reporting", slots=8)
    sim.set_pool("dep-0003", "etl", slots=5, description="ETL")  # slots mismatch
    sim.delete_pool("dep-0010", "reporting")  # missing
    sim.set_pool("dep-0042", "etl", slots=32, description="old text")  # description mismatch
    sim.set_pool("dep-0101", "scratch", slots=2)  # not in the spec
    sim.set_pool("dep-0202", "default_pool", slots=64)  # default_pool slots
    sim.delete_pool("dep-0299", "etl")


@pytest.fixture(scope="module")
def fleet_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SimThread, Path, Path]]:
    simulator = Simulator(deployments=300, api="mixed", seed=21)
    in_sync(simulator)
    tmp = tmp_path_factory.mktemp("audit")
    spec = tmp / "pools.yaml"
    spec.write_text(SPEC)
    with sim_in_thread(simulator) as running:
        config = running.write_fleet(
            tmp / "fleet.yaml", auth="token", extra_defaults={"max_per_second": None}
        )
        yield running, config, spec


def audit(
    running: SimThread, config: Path, spec: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "airfleet",
            "-c",
            str(config),
            "audit",
            "pools",
            "--spec",
            str(spec),
            "--report",
            "json",
            *extra,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **running.sim.env()},
        timeout=120,
        check=False,
    )


def changes(running: SimThread) -> int:
    counts: dict[str, int] = running.stats()["requests_by_endpoint"]
    return sum(counts.get(k, 0) for k in ("create_pool", "patch_pool", "delete_pool"))


def report_of(out: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def test_audit_apply_reaudit_prune(fleet_sim: tuple[SimThread, Path, Path]) -> None:
    """Audit names exactly the drifted deployments; dry run changes nothing; apply fixes
    them; a re-audit is clean; a second apply sends nothing; prune only with the flag."""
    running, config, spec = fleet_sim
    first = audit(running, config, spec)
    assert first.returncode == 1, first.stderr
    report = report_of(first)
    drifted = {r["deployment"] for r in report["results"] if r["data"]["drift"]}
    assert drifted == DRIFTED
    by_name = {r["deployment"]: r for r in report["results"]}
    assert by_name["dep-0003"]["data"]["drift"] == [
        {"pool": "etl", "field": "slots", "want": 32, "have": 5}
    ]
    assert by_name["dep-0202"]["data"]["drift"] == [
        {"pool": "default_pool", "field": "slots", "want": 128, "have": 64}
    ]
    assert report["summary"]["total"] == 300

    dry = audit(running, config, spec, "--apply", "--dry-run")
    assert dry.returncode == 1
    planned = report_of(dry)["requests"]
    assert {r["deployment"] for r in planned} == DRIFTED - {"dep-0101"}
    assert changes(running) == 0

    applied = audit(running, config, spec, "--apply")
    # The extra pool on dep-0101 is drift that only --prune removes.
    assert applied.returncode == 1
    result = {r["deployment"]: r for r in report_of(applied)["results"]}
    assert {n for n, r in result.items() if r["outcome"] != "ok"} == {"dep-0101"}
    assert result["dep-0010"]["data"]["applied"][0]["action"] == "create"
    assert result["dep-0010"]["outcome"] == "ok"
    pools = running.stats()["pools"]
    assert pools["dep-0003"]["etl"]["slots"] == 32
    assert pools["dep-0042"]["etl"]["description"] == "ETL"
    assert pools["dep-0202"]["default_pool"]["slots"] == 128
    assert "scratch" in pools["dep-0101"]  # never deleted without --prune
    sent = changes(running)
    assert sent == 5

    clean = audit(running, config, spec)
    assert clean.returncode == 1  # only the extra pool is still reported
    assert {r["deployment"] for r in report_of(clean)["results"] if r["data"]["drift"]} == {
        "dep-0101"
    }
    again = audit(running, config, spec, "--apply")
    assert changes(running) == sent  # idempotent: nothing to send the second time
    assert again.returncode == 1

    pruned = audit(running, config, spec, "--apply", "--prune")
    assert pruned.returncode == 0
    assert "scratch" not in running.stats()["pools"]["dep-0101"]
    final = audit(running, config, spec)
    assert final.returncode == 0
    assert all(not r["data"]["drift"] for r in report_of(final)["results"])


def test_apply_reports_one_result_per_deployment_and_both_runs_requests(tmp_path: Path) -> None:
    """audit --apply: one result per deployment; its summary counts what the server saw of both."""
    spec = tmp_path / "pools.yaml"
    spec.write_text("version: 1\npools:\n  jobs_pool: {slots: 3}\n", encoding="utf-8")
    with sim_in_thread(Simulator(deployments=5, api="mixed", seed=4)) as running:
        config = running.write_fleet(
            tmp_path / "fleet.yaml", extra_defaults={"max_per_second": None}
        )
        out = audit(running, config, spec, "--apply")
        stats = running.stats()
    assert out.returncode == 0, out.stderr
    report = report_of(out)
    assert sorted(r["deployment"] for r in report["results"]) == sorted(running.sim.names)
    assert all(r["data"]["applied"][0]["action"] == "create" for r in report["results"])
    assert stats["requests_by_endpoint"]["create_pool"] == 5
    assert report["summary"]["total"] == 5
    assert report["summary"]["requests"] == stats["requests_seen"]
    assert report["summary"]["token_fetches"] == stats["token_fetches"]["oauth"] == 1
