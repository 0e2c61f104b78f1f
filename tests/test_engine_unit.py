"""Engine unit tests over a scripted transport: retries, re-auth, limits, one result per call."""

from __future__ import annotations

from collections import Counter
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import pytest

from airfleet.auth import FAILURE_COOLDOWN_S, TokenCache
from airfleet.engine import Engine
from airfleet.errors import AuthError, ConnectError
from airfleet.inventory import (
    ClientCredentialsAuth,
    Deployment,
    Fleet,
    FleetLimits,
    Secret,
    TokenAuth,
)
from airfleet.operations import plan_pools, plan_trigger
from airfleet.plan import Plan
from airfleet.results import Outcome
from airfleet.testing import FakeClock, MockTransport, answer
from airfleet.transport import HttpRequest, HttpResponse

pytestmark = pytest.mark.anyio

POOLS = {"pools": [{"name": "default_pool", "slots": 1}], "total_entries": 1}


def fleet(
    n: int = 3, *, api: Literal["auto", "v1", "v2"] = "v2", retries: int = 4, **limits: Any
) -> Fleet:
    profile = ClientCredentialsAuth(
        "cc", "http://auth.test/oauth/token", "id", Secret("s3cret-value")
    )
    deployments = tuple(
        Deployment(
            f"d{i}", f"http://d{i}.test", "cc", api=api, retries=retries, max_per_second=None
        )
        for i in range(n)
    )
    return Fleet(deployments, {"cc": profile}, FleetLimits(**limits))


def token_or(handler: Any) -> Any:
    def route(request: HttpRequest) -> HttpResponse | Exception:
        if request.url.endswith("/oauth/token"):
            return answer(200, {"access_token": "tok-1", "expires_in": 3600})
        answered: HttpResponse | Exception = handler(request)
        return answered

    return route


async def test_retries_503_and_records_attempts() -> None:
    """A 503 is retried; the result is ok with attempts=2."""
    seen: Counter[str] = Counter()

    def handler(request: HttpRequest) -> HttpResponse:
        seen[request.url] += 1
        return answer(503) if seen[request.url] == 1 else answer(200, POOLS)

    transport = MockTransport(token_or(handler))
    clock = FakeClock()
    async with clock.autojump(), Engine(fleet(1), transport=transport, clock=clock) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments))
    (result,) = report.results
    assert result.outcome is Outcome.OK
    assert result.attempts == 2
    assert report.summary.retries == 1


async def test_500_is_not_retried() -> None:
    """A 500 is taken as final: one attempt, failed."""
    transport = MockTransport(token_or(lambda r: answer(500, {"detail": "boom"})))
    clock = FakeClock()
    async with clock.autojump(), Engine(fleet(1), transport=transport, clock=clock) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.status == 500
    assert result.attempts == 1
    assert "boom" in (result.error or "")


async def test_connection_errors_exhaust_retries_with_a_clear_error() -> None:
    """No answer at all: retried `retries` times, then failed saying so."""
    transport = MockTransport(token_or(lambda r: ConnectError("connection reset by the server")))
    clock = FakeClock()
    async with (
        clock.autojump(),
        Engine(fleet(1, retries=2), transport=transport, clock=clock) as engine,
    ):
        report = await engine.run(plan_pools(engine.fleet.deployments))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.attempts == 3
    assert result.error == "connection reset by the server (after 3 attempts)"


async def test_401_refreshes_the_token_once_and_retries() -> None:
    """A 401 invalidates the token, fetches a new one and retries the call once."""
    tokens = iter(["tok-1", "tok-2"])

    def route(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/oauth/token"):
            return answer(200, {"access_token": next(tokens), "expires_in": 3600})
        if request.headers["Authorization"] == "Bearer tok-1":
            return answer(401, {"detail": "Token Expired"})
        return answer(200, POOLS)

    transport = MockTransport(route)
    async with Engine(fleet(1), transport=transport) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments))
    assert report.results[0].outcome is Outcome.OK
    assert report.summary.token_fetches == 2


async def test_refused_fresh_token_fails_with_auth_error_and_no_secret() -> None:
    """A fresh token refused again is final; the message names the profile, never the token."""

    def route(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/oauth/token"):
            return answer(200, {"access_token": "tok-secret-123", "expires_in": 3600})
        return answer(401, {"detail": "Token Expired"})

    async with Engine(fleet(1), transport=MockTransport(route)) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert result.status == 401
    assert "refused auth profile 'cc'" in (result.error or "")
    assert "tok-secret-123" not in repr(report)


async def test_static_token_profile_is_not_refreshed() -> None:
    """A ready token refused by the server fails at once (nothing to refresh)."""
    profile = TokenAuth("t", Secret("ready-token-xyz"))
    f = Fleet((Deployment("d0", "http://d0.test", "t", api="v2"),), {"t": profile})
    transport = MockTransport(lambda r: answer(401, {"detail": "Not authenticated"}))
    async with Engine(f, transport=transport) as engine:
        report = await engine.run(plan_pools(f.deployments))
    assert report.results[0].outcome is Outcome.FAILED
    assert len(transport.sent) == 1


AIRFLOW2_404 = "<!DOCTYPE html><html><head><title>Airflow 404</title></head></html>"


def airflow2(request: HttpRequest) -> HttpResponse:
    """Airflow 2: a route-level HTML 404 for anything under /api/v2."""
    if "/api/v2/" in request.url:
        return HttpResponse(404, {"Content-Type": "text/html"}, AIRFLOW2_404.encode())
    if request.url.endswith("/api/v1/version"):
        return answer(200, {"version": "2.11.2"})
    return answer(200, POOLS)


async def test_a_calls_own_request_settles_the_version_once_per_server() -> None:
    """api: auto costs no request of its own: on Airflow 2 the call's v2 request
    answers a route-level 404 (nothing happened) and the call starts over in v1;
    the next calls and the next run go straight to v1."""
    transport = MockTransport(token_or(airflow2))
    async with Engine(fleet(2, api="auto"), transport=transport) as engine:
        first = await engine.run(plan_pools(engine.fleet.deployments))
        sent_first = [r.url for r in transport.sent if "/api/" in r.url]
        second = await engine.run(plan_pools(engine.fleet.deployments))
    assert all(r.outcome is Outcome.OK for r in (*first.results, *second.results))
    assert sorted(sent_first) == sorted(
        f"http://d{i}.test/api/{v}/pools" for i in range(2) for v in ("v1", "v2")
    )
    api = [r.url for r in transport.sent if "/api/" in r.url]
    assert sorted(api[len(sent_first) :]) == [f"http://d{i}.test/api/v1/pools" for i in range(2)]
    assert first.results[0].requests == 2  # the route-level 404 is counted, honestly


async def test_on_airflow_3_detection_costs_nothing() -> None:
    """The v2 request that proves Airflow 3 is the call's own: one request per call."""
    transport = MockTransport(token_or(lambda r: answer(200, POOLS)))
    async with Engine(fleet(3, api="auto"), transport=transport) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments))
    assert report.summary.ok == 3
    api = sorted(r.url for r in transport.sent if "/api/" in r.url)
    assert api == [f"http://d{i}.test/api/v2/pools" for i in range(3)]


async def test_an_answer_that_proves_nothing_leaves_the_probe_to_the_next_call() -> None:
    """A call whose request fails (a 503 with retries off) settles nothing; the next
    call to that server probes the versions, with the credential, and goes on."""
    failed_once: list[str] = []

    def handler(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/api/v2/pools") and not failed_once:
            failed_once.append(request.url)
            return answer(503, {"detail": "warming up"})
        return airflow2(request)

    f = fleet(1, api="auto", retries=0)
    calls = plan_pools([f.deployments[0], f.deployments[0]])
    transport = MockTransport(token_or(handler))
    async with Engine(f, transport=transport) as engine:
        report = await engine.run(calls, limits=FleetLimits(max_in_flight=1))
    assert [r.outcome for r in report.results] == [Outcome.FAILED, Outcome.OK]
    paths = [urlsplit(r.url).path for r in transport.sent if "/oauth" not in r.url]
    assert paths == ["/api/v2/pools", "/api/v2/version", "/api/v1/version", "/api/v1/pools"]
    assert all(r.headers.get("Authorization") for r in transport.sent if "/api/" in r.url)
    assert engine.known_version(f.deployments[0]) == "2.11.2"


class SlowTransport(MockTransport):
    """Holds each request for a moment and records the most concurrent."""

    def __init__(self) -> None:
        super().__init__(token_or(lambda r: answer(200, POOLS)))
        self.now = 0
        self.peak = 0

    async def send(self, request: HttpRequest) -> HttpResponse:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await anyio.sleep(0.001)
            return await super().send(request)
        finally:
            self.now -= 1


async def test_fleet_in_flight_cap_holds_and_every_call_gets_one_result() -> None:
    """1,000 calls with max_in_flight=16: never more than 16 at once, 1,000 results."""
    transport = SlowTransport()
    async with Engine(fleet(1000, max_in_flight=16), transport=transport) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments))
    assert transport.peak <= 16
    assert len(report.results) == 1000
    assert len({r.deployment for r in report.results}) == 1000
    assert report.summary.ok == 1000
    assert report.summary.token_fetches == 1


async def test_stop_skips_unstarted_calls_and_still_reports_each() -> None:
    """A stop mid-run: no new calls, the rest skipped, one result each, exit 130."""
    stop = anyio.Event()
    transport = SlowTransport()
    seen = 0

    def on_result(_: Any) -> None:
        nonlocal seen
        seen += 1
        if seen == 10:
            stop.set()

    async with Engine(fleet(200, max_in_flight=4), transport=transport, grace_s=5) as engine:
        report = await engine.run(
            plan_pools(engine.fleet.deployments), on_result=on_result, stop=stop
        )
    assert len(report.results) == 200
    assert report.summary.skipped >= 150
    assert report.summary.exit_code == 130
    assert all(r.error for r in report.results if r.outcome is Outcome.SKIPPED)


async def test_run_stopped_before_it_starts_sends_nothing() -> None:
    """A stop set before the run: every call skipped, not one request sent."""
    stop = anyio.Event()
    stop.set()
    transport = SlowTransport()
    async with Engine(fleet(20, max_in_flight=4), transport=transport, grace_s=5) as engine:
        report = await engine.run(plan_pools(engine.fleet.deployments), stop=stop)
    assert report.summary.skipped == 20
    assert transport.sent == []


async def test_trigger_retry_after_lost_answer_counts_409_as_ok() -> None:
    """POST lands but the answer is lost; the retry's 409 plus GET is one ok run."""
    runs: set[str] = set()

    def handler(request: HttpRequest) -> HttpResponse | Exception:
        if request.method == "POST":
            run_id = request.json["dag_run_id"]
            if run_id in runs:
                return answer(409, {"detail": {"reason": "Unique constraint violation"}})
            runs.add(run_id)
            return ConnectError("connection dropped in the middle of the answer")
        return answer(200, {"dag_run_id": sorted(runs)[0], "state": "queued", "logical_date": None})

    transport = MockTransport(token_or(handler))
    clock = FakeClock()
    async with clock.autojump(), Engine(fleet(1), transport=transport, clock=clock) as engine:
        report = await engine.run(plan_trigger(engine.fleet.deployments, ["etl"]))
    (result,) = report.results
    assert result.outcome is Outcome.OK
    assert result.data["already_existed"] is False
    assert len(runs) == 1


async def test_a_failed_fetch_is_not_tried_again_within_its_cooldown() -> None:
    """After a failed fetch, callers within FAILURE_COOLDOWN_S fail fast with its
    reason (and status), even at the clock's time zero; after it, a fetch is tried."""
    clock = FakeClock()  # starts at 0.0: a falsy time is still a time
    cache = TokenCache(clock)
    fetches: list[float] = []

    async def fetch() -> tuple[str, float]:
        fetches.append(clock.now())
        if len(fetches) == 1:
            raise AuthError("token service answered 503", status=503)
        return "Bearer tok-1", 100.0

    with pytest.raises(AuthError) as first:
        await cache.get("cc", fetch)
    with pytest.raises(AuthError) as again:
        await cache.get("cc", fetch)
    assert (str(again.value), again.value.status) == (str(first.value), 503)
    assert fetches == [0.0]
    clock.advance(FAILURE_COOLDOWN_S)
    assert (await cache.get("cc", fetch)).header == "Bearer tok-1"
    assert fetches == [0.0, FAILURE_COOLDOWN_S]


async def test_token_is_refreshed_ahead_of_expiry_without_stalling_others() -> None:
    """Past 90 % of its life a token is refreshed by one caller; the others keep using it."""
    clock = FakeClock()
    cache = TokenCache(clock)
    fetch_started, release = anyio.Event(), anyio.Event()
    headers = iter(["Bearer tok-1", "Bearer tok-2"])

    async def fetch() -> tuple[str, float]:
        if fetch_started.is_set() or cache.usable("cc") is not None:
            fetch_started.set()
            await release.wait()
        return next(headers), 100.0

    first = await cache.get("cc", fetch)
    clock.advance(91.0)  # past 90 % of 100 s
    assert cache.ready("cc") is None  # due: the next caller refreshes it
    got: list[str] = []
    async with anyio.create_task_group() as group:

        async def refresher() -> None:
            got.append((await cache.get("cc", fetch)).header)

        group.start_soon(refresher)
        await fetch_started.wait()
        # While the refresh is under way, other callers queue with the still-valid token.
        assert cache.ready("cc") is first
        assert cache.usable("cc") is first
        release.set()
    assert got == ["Bearer tok-2"]
    assert not cache.invalidate(first)  # an old generation cannot drop the fresh token
    assert cache.ready("cc") is not None
    assert cache.ready("cc", since=clock.now() + 1) is None  # nothing fetched since


async def test_after_a_refusal_only_a_token_fetched_since_is_tried() -> None:
    """Tokens revoked while a refresh was in flight: the call refused with the old
    token does not retry with the refresh's (revoked too) but fetches anew."""
    clock = FakeClock()
    issued: dict[str, float] = {}
    revoked_before = [-1.0]

    class Server(MockTransport):
        async def send(self, request: HttpRequest) -> HttpResponse:
            if request.url.endswith("/oauth/token"):
                token = f"tok-{len(issued) + 1}"
                issued[token] = clock.now()
                return answer(200, {"access_token": token, "expires_in": 10})
            await clock.sleep(0.2)  # the server checks the token when it gets to it
            token = request.headers["Authorization"].removeprefix("Bearer ")
            if issued[token] <= revoked_before[0]:
                return answer(401, {"detail": "Token Expired"})
            return await super().send(request)

    f = fleet(1)
    transport = Server(lambda r: answer(200, POOLS))
    plan = plan_pools(f.deployments)

    async def run_at(when: float, results: list[Outcome]) -> None:
        await clock.sleep(when - clock.now())
        report = await engine.run(plan)
        results.extend(r.outcome for r in report.results)

    async def revoke_at(when: float) -> None:
        await clock.sleep(when - clock.now())
        revoked_before[0] = clock.now()

    outcomes: list[Outcome] = []
    async with clock.autojump(), Engine(f, transport=transport, clock=clock) as engine:
        await engine.run(plan)  # tok-1 at 0 s: due for refresh at 9 s
        async with anyio.create_task_group() as group:
            group.start_soon(run_at, 8.95, outcomes)  # sends tok-1, refused at 9.15
            group.start_soon(run_at, 9.0, outcomes)  # refreshes: tok-2 at 9.0
            group.start_soon(revoke_at, 9.1)  # both revoked
    assert outcomes == [Outcome.OK, Outcome.OK]
    assert len(issued) >= 3


async def test_a_due_token_is_claimed_for_refresh_once() -> None:
    """Of the calls that send a due token, one starts its refresh; the rest just send it."""
    clock = FakeClock()
    cache = TokenCache(clock)

    async def fetch() -> tuple[str, float]:
        return "Bearer tok", 100.0

    token = await cache.get("cc", fetch)
    assert not cache.claim_refresh(token)  # not due yet
    clock.advance(91.0)
    assert cache.ready("cc") is None  # due, and nobody refreshes it: the caller should
    assert cache.claim_refresh(token)
    assert not cache.claim_refresh(token)  # claimed already
    assert cache.ready("cc") is token  # the claimed refresh serves everyone meanwhile
    fresh = await cache.get("cc", fetch)
    assert fresh.generation == 2
    assert not cache.claim_refresh(token)  # no longer the current token


async def test_a_refresh_under_way_when_the_run_ends_is_finished_and_counted() -> None:
    """The last call sends a due token and starts its refresh; the run waits for
    it, so the token requests the server saw are the ones the summary counts."""
    clock = FakeClock()
    tokens = iter(["tok-1", "tok-2"])

    class SlowTokens(MockTransport):
        async def send(self, request: HttpRequest) -> HttpResponse:
            if request.url.endswith("/oauth/token") and len(self.sent) > 1:
                self.sent.append(request)
                await clock.sleep(1.0)  # the refresh is still under way as the run ends
                return answer(200, {"access_token": next(tokens), "expires_in": 20})
            return await super().send(request)

    def route(request: HttpRequest) -> HttpResponse:
        if request.url.endswith("/oauth/token"):
            return answer(200, {"access_token": next(tokens), "expires_in": 20})
        return answer(200, POOLS)

    profile = ClientCredentialsAuth("cc", "http://auth.test/oauth/token", "id", Secret("s3cret"))
    slow = Deployment("d0", "http://d0.test", "cc", api="v2", max_per_second=1)
    f = Fleet((slow,), {"cc": profile})
    transport = SlowTokens(route)
    async with clock.autojump(), Engine(f, transport=transport, clock=clock) as engine:
        await engine.run(plan_pools(f.deployments))  # tok-1 at 0 s: due at 18 s, sent until 19 s
        clock.advance(17.5 - clock.now())
        two = plan_pools(f.deployments)
        # The second call queues behind the rate to 18.5 s: it sends tok-1, due.
        report = await engine.run(Plan("pools", two.calls * 2))
    token_requests = [r for r in transport.sent if r.url.endswith("/oauth/token")]
    assert len(token_requests) == 2
    assert report.summary.ok == 2
    assert report.summary.token_fetches == 1  # the refresh: answered, and counted
