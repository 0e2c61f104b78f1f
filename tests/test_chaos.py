"""Chaos: 500 deployments under every fault at once; nothing lost, nothing doubled, limits kept.

The seed comes from ``AIRFLEET_CHAOS_SEED`` when set, else it is random, so
each CI run tries a different mix. It is printed (``-ra`` shows it on a
failure), recorded as a JUnit property and part of every assertion message:
``AIRFLEET_CHAOS_SEED=<seed> pytest tests/test_chaos.py`` replays the faults
(the simulator's and the engine's random choices; timing still varies).
"""

from __future__ import annotations

import math
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from airfleet.auth import REFRESH_AT
from airfleet.engine import Engine
from airfleet.events import AttemptFinished, Event
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Fleet
from airfleet.operations import plan_trigger
from airfleet.plan import Plan
from airfleet.results import Outcome, Result
from airfleet.sim import Faults, Simulator

pytestmark = pytest.mark.anyio

DEPLOYMENTS = 500
DAGS = ("refresh_dims", "nightly_load")
TOKEN_TTL_S = 3.0
OUTAGE_START_S = 3.0
OUTAGE_S = 2.0
FLEET_RATE = 250
FLEET_IN_FLIGHT = 64
DEPLOYMENT_RATE = 5
DEPLOYMENT_IN_FLIGHT = 2
OAUTH_RATE = 200
TIMEOUT_S = 0.6
RETRIES = 4

FAULTS = Faults(
    latency_ms=3,
    latency_spread_ms=2,
    error_rate=0.10,  # 500, 502 or 503
    throttle_rate=0.05,  # 429 with Retry-After
    throttle_retry_after_s=1,
    reset_rate=0.02,
    commit_then_fail_rate=0.02,
    slow_rate=0.01,
    slow_s=TIMEOUT_S * 2.5,
    token_ttl_s=TOKEN_TTL_S,
    token_outage_start_s=OUTAGE_START_S,
    token_outage_s=OUTAGE_S,
)


def chaos_seed() -> int:
    """The seed to replay: AIRFLEET_CHAOS_SEED, or a fresh random one."""
    given = os.environ.get("AIRFLEET_CHAOS_SEED")
    return int(given) if given else random.SystemRandom().randrange(2**31)


def chaos_fleet(sim: Simulator, url: str) -> Fleet:
    """Mixed v1/v2, detected; OAuth for most, password (JWT per Airflow 3 server) for 1 in 5."""
    lines = [
        "version: 1",
        f"limits: {{max_in_flight: {FLEET_IN_FLIGHT}, max_per_second: {FLEET_RATE}}}",
        "defaults:",
        "  auth: oauth",
        f"  max_per_second: {DEPLOYMENT_RATE}",
        f"  max_in_flight: {DEPLOYMENT_IN_FLIGHT}",
        f"  timeout_s: {TIMEOUT_S}",
        f"  retries: {RETRIES}",
        "auth:",
        "  oauth:",
        "    kind: client-credentials",
        f"    token_url: {url}/oauth/token",
        f"    client_id: {sim.credentials.client_id}",
        "    client_secret: ${AIRFLEET_SIM_CLIENT_SECRET}",
        f"    max_per_second: {OAUTH_RATE}",
        "  local:",
        "    kind: password",
        f"    username: {sim.credentials.username}",
        "    password: ${AIRFLEET_SIM_PASSWORD}",
        "deployments:",
    ]
    for i, name in enumerate(sim.names):
        lines += [f"  - name: {name}", f"    url: {url}/d/{name}"]
        if i % 5 == 0:
            lines.append("    auth: local")
    return parse_fleet("\n".join(lines) + "\n", source="chaos.yaml", env=sim.env())


def check(condition: bool, seed: int, message: str) -> None:
    """assert, with the seed in the message so a failure can be replayed."""
    assert condition, f"[AIRFLEET_CHAOS_SEED={seed}] {message}"


async def test_chaos_run_loses_nothing_doubles_nothing_and_keeps_every_limit(
    record_property: Callable[[str, object], None],
) -> None:
    """500 mixed deployments, every fault at once: the report and the server's stats agree."""
    seed = chaos_seed()
    record_property("chaos_seed", seed)
    print(f"chaos seed: AIRFLEET_CHAOS_SEED={seed}")
    sim = Simulator(deployments=DEPLOYMENTS, api="mixed", faults=FAULTS, seed=seed)
    async with sim.running(host="127.0.0.1", port=0) as server:
        fleet = chaos_fleet(sim, server.url)
        plan = plan_trigger(fleet.deployments, list(DAGS))
        run_id = plan.calls[0].spec.run_id  # type: ignore[attr-defined]
        started = time.monotonic()
        gave_up: Counter[str] = Counter()  # requests the client stopped waiting for

        def on_event(event: Event) -> None:
            if (
                isinstance(event, AttemptFinished)
                and event.retrying
                and event.deployment is not None
                and "no answer within" in (event.reason or "")
            ):
                gave_up[event.deployment] += 1

        async with Engine(fleet, seed=seed, listeners=[on_event]) as engine:
            report = await engine.run(plan)
        took = time.monotonic() - started
        stats = sim.stats()
    summary = report.summary
    print(
        f"chaos figures: seed={seed} calls={summary.total} ok={summary.ok} "
        f"failed={summary.failed} requests={stats['requests_total']} retries={summary.retries} "
        f"token_fetches={summary.token_fetches} faults={stats['faults_injected']} "
        f"peak_per_deployment={max(stats['max_per_second_by_deployment'].values())}/s "
        f"(limit {DEPLOYMENT_RATE}) peak_oauth="
        f"{stats['max_per_second_by_credential'].get('oauth')}/s (limit {OAUTH_RATE}) "
        f"peak_fleet={stats['max_per_second']}/s (limit {FLEET_RATE}) took={took:.1f}s"
    )

    # Exactly one result per planned call.
    planned = Counter((c.deployment.name, c.target) for c in plan.calls)
    reported = Counter((r.deployment, r.target) for r in report.results)
    check(reported == planned, seed, "results do not match the plan one to one")
    check(summary.total == len(plan) == DEPLOYMENTS * len(DAGS), seed, "wrong total")
    check(summary.skipped == 0, seed, "nothing was interrupted, yet calls were skipped")

    # ok: the run exists exactly once; failed: absent, unless the effect is unknown.
    def runs_of(result: Result) -> int:
        ids: list[str] = stats["run_ids"].get(result.deployment, {}).get(result.target, [])
        return ids.count(run_id)

    unknown_present = 0
    for result in report.results:
        made = runs_of(result)
        if result.outcome is Outcome.OK:
            check(made == 1, seed, f"ok but {made} runs: {result}")
            check(result.data.get("dag_run_id") == run_id, seed, f"wrong run id: {result}")
        else:
            check(bool(result.error), seed, f"failed without a reason: {result}")
            if result.data.get("effect") == "unknown":
                check(made <= 1, seed, f"unknown but {made} runs: {result}")
                check("--run-id" in (result.error or ""), seed, f"no way to settle: {result}")
                unknown_present += made
            else:
                check(made == 0, seed, f"failed, effect not unknown, yet the run exists: {result}")
    check(
        stats["runs_total"] == summary.ok + unknown_present,
        seed,
        f"server made {stats['runs_total']} runs for {summary.ok} ok + {unknown_present} unknown",
    )
    every_count = [n for per_dag in stats["runs"].values() for n in per_dag.values()]
    check(max(every_count) == 1, seed, "some deployment has a DAG triggered twice")

    # The fleet keeps going: most calls succeed despite the faults.
    check(summary.ok >= 0.75 * summary.total, seed, f"only {summary.ok} ok")

    # Limits as the server measured them.
    for result in report.results:
        if "no answer within" in (result.error or ""):
            gave_up[result.deployment] += 1  # the last attempt timed out: no retry event
    _check_limits(stats, gave_up, seed)

    # Token fetches: bounded by expiries (refresh at 90 % of the lifetime) and outages.
    _check_token_fetches(stats, summary.token_fetches, took, seed)

    # Every fault kind actually happened, so the invariants above were exercised.
    injected = stats["faults_injected"]
    for kind in ("error", "throttled", "reset", "slow", "commit_then_fail"):
        check(injected.get(kind, 0) > 0, seed, f"no {kind} fault was injected: {injected}")
    check(stats["duplicates_refused"] > 0, seed, "no retried POST met its own run")
    check(stats["token_fetch_failures"] > 0, seed, "the token outage was never met")
    check(took < 60, seed, f"chaos run took {took:.1f} s")


def _check_limits(stats: dict[str, Any], gave_up: Counter[str], seed: int) -> None:
    check(stats["max_per_second"] <= FLEET_RATE, seed, f"fleet rate {stats['max_per_second']}")
    per_second = stats["max_per_second_by_deployment"]
    worst = max(per_second, key=per_second.get)
    check(
        per_second[worst] <= DEPLOYMENT_RATE,
        seed,
        f"{worst} saw {per_second[worst]} requests in one second (limit {DEPLOYMENT_RATE})",
    )
    oauth_rate = stats["max_per_second_by_credential"].get("oauth", 0)
    check(0 < oauth_rate <= OAUTH_RATE, seed, f"OAuth token used {oauth_rate} times in 1 s")
    # In-flight caps, as the server counts them (token fetches included), with
    # two exact allowances: a request the client gave up on (a slow answer)
    # still runs on the server after its slot is freed; and a token fetch
    # takes no cap (the calls waiting for it may hold them all), but it is
    # single-flight: at most one per credential, a JWT's on its deployment.
    jwt = stats["token_fetches"]["jwt"]
    fleet_allowed = FLEET_IN_FLIGHT + sum(gave_up.values()) + len(jwt)
    check(stats["max_in_flight"] <= fleet_allowed, seed, f"in flight {stats['max_in_flight']}")
    for name, count in stats["max_in_flight_by_deployment"].items():
        allowed = DEPLOYMENT_IN_FLIGHT + gave_up[name] + (1 if name in jwt else 0)
        check(count <= allowed, seed, f"{name}: {count} in flight (allowed {allowed})")


def _check_token_fetches(stats: dict[str, Any], reported: int, took: float, seed: int) -> None:
    fetches = stats["token_fetches"]
    # One fetch per lifetime (refreshed at 90 % of it), plus the first and one
    # after the outage; the outage itself costs failed attempts, not tokens.
    per_slot = math.ceil(took / (TOKEN_TTL_S * REFRESH_AT)) + 2
    check(
        1 <= fetches["oauth"] <= per_slot,
        seed,
        f"{fetches['oauth']} OAuth tokens in {took:.1f} s (bound {per_slot})",
    )
    jwt = fetches["jwt"]
    check(
        all(n <= per_slot for n in jwt.values()),
        seed,
        f"a JWT slot fetched more than {per_slot}: {max(jwt.values())}",
    )
    slots = 1 + len(jwt)
    failures = stats["token_fetch_failures"]
    check(
        failures <= slots * (RETRIES + 1) * 2,
        seed,
        f"{failures} failed token fetches for {slots} credentials",
    )
    # The report counts every token answer the server gave, no more, no less.
    check(
        reported == fetches["total"] + failures,
        seed,
        f"report says {reported} token fetches, server saw {fetches['total']} + {failures}",
    )


async def test_a_lost_trigger_answer_with_no_retry_left_is_failed_effect_unknown() -> None:
    """Commit-then-fail with no retries: failed, data.effect unknown; --run-id again settles it."""
    sim = Simulator(deployments=4, api="mixed", faults=Faults(commit_then_fail_rate=1.0), seed=21)
    async with sim.running(host="127.0.0.1", port=0) as server:
        text = sim.fleet_yaml(
            server.url, auth="token", api="declared", extra_defaults={"retries": 0}
        )
        fleet = parse_fleet(text, env=sim.env())
        async with Engine(fleet, seed=21) as engine:
            lost = await engine.run(plan_trigger(fleet.deployments, ["hello"], run_id="lost-1"))
            sim.set_faults(commit_then_fail_rate=0.0)
            again = await engine.run(plan_trigger(fleet.deployments, ["hello"], run_id="lost-1"))
        stats = sim.stats()
    assert lost.summary.failed == 4
    for result in lost.results:
        assert result.data == {"dag_run_id": "lost-1", "effect": "unknown"}
        assert "the run may exist" in (result.error or "")
        assert "--run-id lost-1" in (result.error or "")
    # The runs were made once each, and the re-run proves it without making more.
    assert stats["runs_total"] == 4
    assert again.summary.ok == 4
    assert all(r.data["already_existed"] is True for r in again.results)


async def test_a_deployment_rate_holds_while_its_calls_queue_for_the_fleet_rate() -> None:
    """2/s on one deployment behind a 10/s fleet queue: the server never sees 3 in a second."""
    sim = Simulator(deployments=13, api="v2", seed=22)
    async with sim.running(host="127.0.0.1", port=0) as server:
        text = sim.fleet_yaml(
            server.url, auth="token", api="declared", extra_defaults={"max_per_second": None}
        )
        text = text.replace("version: 1\n", "version: 1\nlimits: {max_per_second: 10}\n", 1)
        text = text.replace("- name: dep-0012\n", "- name: dep-0012\n  max_per_second: 2\n")
        fleet = parse_fleet(text, env=sim.env())
        # Twelve calls fill the fleet-wide queue first; the slow deployment's
        # three calls take its tokens 0.5 s apart but wait behind them.
        busy = plan_trigger(fleet.deployments[:12], ["hello"])
        slow = plan_trigger(fleet.deployments[12:], ["example_etl", "refresh_dims", "hello"])
        async with Engine(fleet) as engine:
            report = await engine.run(Plan("trigger", busy.calls + slow.calls, mutating=True))
        stats = sim.stats()
    assert report.summary.ok == 15
    assert stats["max_per_second"] <= 10
    assert stats["max_per_second_by_deployment"]["dep-0012"] <= 2


async def test_a_failed_api_detection_is_tried_again_by_the_next_plan() -> None:
    """A 5xx to the request that was to settle v1/v2 fails that plan's calls; the
    engine's next plan detects anew."""
    sim = Simulator(deployments=4, api="mixed", faults=Faults(error_rate=1.0), seed=23)
    async with sim.running(host="127.0.0.1", port=0) as server:
        text = sim.fleet_yaml(server.url, auth="token", extra_defaults={"retries": 0})
        fleet = parse_fleet(text, env=sim.env())
        async with Engine(fleet, seed=23) as engine:
            first = await engine.run(plan_trigger(fleet.deployments, ["hello"]))
            sim.set_faults(error_rate=0.0)
            second = await engine.run(plan_trigger(fleet.deployments, ["hello"]))
    assert first.summary.failed == 4
    # Each call's own request was to settle the version: it fails with what
    # the server said, and settles nothing.
    assert all("simulated server error" in (r.error or "") for r in first.results)
    assert second.summary.ok == 4, [r.error for r in second.results]
