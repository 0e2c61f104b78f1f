"""Bad answers over loopback HTTP: each a failed result with a clear reason, never a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from _badserver import BIG_OK_POOLS, CASES, BadServer, bad_server
from airfleet.engine import Engine
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Deployment, Fleet
from airfleet.operations import plan_dags, plan_health, plan_pause, plan_pools, plan_trigger
from airfleet.plan import Plan
from airfleet.results import Outcome
from airfleet.testing import FakeClock

pytestmark = pytest.mark.anyio

TOKEN = "bad-answers-token-0123456789"
CLIENT_SECRET = "bad-answers-client-secret-987654"

# What the reason must say, per case: (most operations, health).
EXPECTED: dict[str, tuple[str, str]] = {
    # A web page where the API's JSON belongs: a wrong path prefix.
    "html": ("no Airflow API at /api/v2 here", "no Airflow API at /api/v2 here"),
    "html_502": (
        "HTTP 502: an HTML page instead of JSON",
        "HTTP 502: an HTML page instead of JSON",
    ),
    "empty": ("not JSON", "empty body"),
    "truncated": ("not JSON", "not a JSON object"),
    "wrong_shape": ("not a JSON object", "not a JSON object"),
    "wrong_fields": ("unexpected answer", "unhealthy"),
    "huge": ("larger than 8 MiB", "larger than 8 MiB"),
    "huge_chunked": ("larger than 8 MiB", "larger than 8 MiB"),
    "cut_short": ("connection dropped in the middle", "connection dropped in the middle"),
    "cut_short_huge": ("connection dropped in the middle", "connection dropped in the middle"),
    "redirect": ("does not follow redirects", "does not follow redirects"),
    "redirect_301": ("does not follow redirects", "does not follow redirects"),
}

CHANGES = ("trigger", "pause")  # operations whose first request is not a GET
PLANS: dict[str, Callable[[Sequence[Deployment]], Plan]] = {
    "trigger": lambda ds: plan_trigger(ds, ["hello"]),
    "pools": plan_pools,
    "dags": plan_dags,
    "health": plan_health,
    "pause": lambda ds: plan_pause(ds, ["hello"], paused=True),
}


def fleet_for(
    server: BadServer,
    cases: Sequence[str],
    *,
    auth: str = "token",
    token_case: str = "redirect",  # noqa: S107 - a test case name
) -> Fleet:
    """One deployment per case, Airflow 3 declared (no detection), one retry, no sleeping."""
    deployments = "".join(
        f"  - name: {case}\n    url: {server.deployment_url(case)}\n" for case in cases
    )
    profile = (
        "  t: {kind: token, token: '${TOKEN}'}\n"
        if auth == "token"
        else "  t: {kind: client-credentials, token_url: '"
        + server.deployment_url(token_case)
        + "/oauth/token', client_id: me, client_secret: '${SECRET}'}\n"
    )
    text = (
        "version: 1\n"
        "defaults: {api: v2, retries: 1, timeout_s: 20, max_per_second: null}\n"
        f"auth:\n{profile}"
        f"deployments:\n{deployments}"
    )
    return parse_fleet(text, source="bad.yaml", env={"TOKEN": TOKEN, "SECRET": CLIENT_SECRET})


@pytest.fixture
async def server() -> AsyncIterator[BadServer]:
    async with bad_server() as running:
        yield running


@pytest.mark.parametrize("operation", sorted(PLANS))
async def test_every_bad_answer_is_one_failed_result_with_a_clear_reason(
    server: BadServer, operation: str
) -> None:
    """HTML, empty, cut, wrong-shape, huge and redirect answers: failed, reason named, no crash."""
    fleet = fleet_for(server, CASES)
    async with FakeClock().autojump() as clock, Engine(fleet, clock=clock) as engine:
        report = await engine.run(PLANS[operation](fleet.deployments))
    by_case = {r.deployment: r for r in report.results}
    assert sorted(by_case) == sorted(CASES)
    assert report.summary.failed == len(CASES)
    for case, result in by_case.items():
        phrase = EXPECTED[case][1 if operation == "health" else 0]
        if case == "html" and operation in CHANGES:
            # A success page for a change may mean something acted on it.
            phrase = "not JSON"
        assert result.outcome is Outcome.FAILED, (case, result)
        assert phrase in (result.error or ""), (case, result.error)
        assert len(result.error or "") < 400, (case, result.error)
        assert TOKEN not in (result.error or "")
        if operation == "trigger":
            # Accepted or maybe acted on (2xx, 502, cut off): the run may exist.
            # A redirect was not followed, so nothing was made.
            unknown = result.data.get("effect") == "unknown"
            assert unknown is not case.startswith("redirect"), (case, result)


async def test_a_large_valid_answer_is_read_whole(server: BadServer) -> None:
    """A 3 MiB pool list (many socket reads, under the cap) is read whole, not taken for a drop."""
    fleet = fleet_for(server, ["big_ok"])
    async with FakeClock().autojump() as clock, Engine(fleet, clock=clock) as engine:
        report = await engine.run(plan_pools(fleet.deployments))
    (result,) = report.results
    assert result.outcome is Outcome.OK, result.error
    pools = result.data["pools"]
    assert len(pools) == BIG_OK_POOLS > 5000
    assert result.attempts == 1


async def test_redirects_are_not_followed_so_no_credential_reaches_another_origin(
    server: BadServer,
) -> None:
    """307/301 on API calls and on the token endpoint: the other origin receives nothing."""
    token_fleet = fleet_for(server, ["redirect", "redirect_301"])
    oauth_fleet = fleet_for(server, ["html"], auth="oauth")
    async with FakeClock().autojump() as clock, Engine(token_fleet, clock=clock) as engine:
        api = await engine.run(plan_trigger(token_fleet.deployments, ["hello"]))
        listing = await engine.run(plan_pools(token_fleet.deployments))
    async with FakeClock().autojump() as clock, Engine(oauth_fleet, clock=clock) as engine:
        fetch = await engine.run(plan_pools(oauth_fleet.deployments))
    assert {r.status for r in [*api.results, *listing.results]} == {301, 307}
    (refused,) = fetch.results
    assert refused.outcome is Outcome.FAILED
    assert "token endpoint" in (refused.error or "")
    assert "307" in (refused.error or "")
    assert CLIENT_SECRET not in (refused.error or "")
    assert server.other_seen == []


@pytest.mark.parametrize("case", ["html", "html_502", "empty", "truncated", "wrong_shape", "huge"])
async def test_a_bad_token_endpoint_answer_fails_its_calls_with_a_reason(
    server: BadServer, case: str
) -> None:
    """The OAuth token endpoint answering badly: each call fails naming the token endpoint."""
    fleet = fleet_for(server, ["big_ok", "html"], auth="oauth", token_case=case)
    async with FakeClock().autojump() as clock, Engine(fleet, clock=clock) as engine:
        report = await engine.run(plan_pools(fleet.deployments))
    assert report.summary.failed == 2
    for result in report.results:
        assert "token endpoint" in (result.error or ""), result.error
        assert CLIENT_SECRET not in (result.error or "")
