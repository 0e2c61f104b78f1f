"""The engine: runs a plan's calls concurrently, within limits, one result each.

A run::

    workers (max_in_flight of them, in one anyio task group) take calls round-robin
        across deployments, in plan order within each
    call: dialect (declared, or detected once per server) -> conversation -> requests
    request: _send -> _send_with_auth -> _send_once -> transport
    result -> sink -> collector (in the worker's own step, in the order calls finish)

A request is three layers, each one short function:

* ``_send``: retries around the rest, as :class:`~airfleet.retry.RetryPolicy`
  decides (transient or final, backoff, ``Retry-After``, attempts and total
  time from the deployment's ``timeout_s`` and ``retries``);
* ``_send_with_auth``: one exchange with a credential, and one more with a
  fresh one when the server refuses it;
* ``_send_once``: one exchange inside admission (the in-flight caps and the
  rates). The credential is read after admission, immediately before the
  bytes leave, so a call that queued behind a rate never sends a token that
  expired or was replaced meanwhile. Waiting for a token fetch happens before
  admission, holding nothing; a token fetch is admitted by rates alone, so it
  never waits for a slot that the calls waiting for it hold.

Token fetches and detection go through the same three layers, so they keep
the same limits and retry policy, and every request a server sees is
counted in the run's ``summary.requests``.

Concurrency model: one event loop (aiohttp runs on asyncio; anyio provides
the structure). Every task lives in the run's anyio task groups: the
workers, a call parked between the polls of ``--wait``, a token's refresh
ahead of expiry, and the watcher of ``stop``. Nothing outlives
:meth:`Engine.run`. Shared state (limits, the
token cache, detected dialects) is touched only between awaits, so it needs
no locks beyond the token cache's single flight.

Workers turn every expected failure into a result; an exception escaping a
worker is a bug and cancels the run loudly.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import random
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from urllib.parse import urlsplit

import anyio
from anyio.abc import TaskGroup

from airfleet import _gc, redaction
from airfleet.auth import AuthScope, Credential, Credentials, TokenRequest
from airfleet.clock import Clock, SystemClock
from airfleet.dialects.base import Dialect
from airfleet.dialects.detect import DIALECTS, detect, dialect_named, no_api_error
from airfleet.errors import AirfleetError, ApiError, AuthError, TransportError
from airfleet.events import (
    AttemptFinished,
    CallFinished,
    CallStarted,
    DialectDetected,
    Event,
    Listener,
    ReAuthenticating,
    RunFinished,
    RunStarted,
    TokenFetched,
)
from airfleet.inventory import (
    DEFAULT_NETWORK,
    ClientCredentialsAuth,
    Deployment,
    Fleet,
    FleetLimits,
    Network,
)
from airfleet.limits import Admission, Limits, Rates
from airfleet.plan import Call, Plan
from airfleet.protocol import (
    UNCERTAIN_STATUSES,
    Answer,
    CallInterrupted,
    Conversation,
    Pause,
    Request,
    Response,
    Step,
    Verdict,
)
from airfleet.results import Collector, Outcome, Result, Summary
from airfleet.retry import RetryPolicy
from airfleet.transport import MAX_BODY_BYTES, AiohttpTransport, HttpRequest, Transport

__all__ = ["Engine", "RunReport"]

DEFAULT_GRACE_S = 10.0
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run produced: its summary and every result, in completion order."""

    summary: Summary
    results: tuple[Result, ...]


class Engine:
    """Runs plans against a fleet over one HTTP session.

    Use as an async context manager. An engine lives for a process or a job:
    tokens, detected dialects and listeners are kept across its runs, so a
    job of several plans fetches each token once; limits belong to each run.

    ``clock`` is the one time source of the engine, its limits, retries and
    tokens (:class:`airfleet.testing.FakeClock` in tests). ``seed`` fixes the
    retry jitter. ``gc_threshold``, when set, raises CPython's first
    garbage-collection threshold to at least that while a run is in flight
    (restored after): a process that owns its interpreter (the CLI does) may
    ask for it; the library leaves its host's collector alone by default.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        transport: Transport | None = None,
        listeners: Sequence[Listener] = (),
        clock: Clock | None = None,
        seed: int | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        gc_threshold: int | None = None,
    ) -> None:
        self.fleet = fleet
        self._owns_transport = transport is None
        self._transport: Transport = transport or AiohttpTransport()
        self._listeners = list(listeners)
        self._clock: Clock = clock or SystemClock()
        self._rng = random.Random(seed)
        self._grace_s = grace_s
        self._gc_threshold = gc_threshold
        self._rates = Rates(self._clock)
        self._credentials = Credentials(self._clock)
        self._credentials.on_fetch = lambda key, took: self._emit(TokenFetched(key, took))
        self._dialects: dict[str, tuple[Dialect, str | None] | AirfleetError] = {}
        self._detections: dict[str, _Detection] = {}
        self._policies: dict[tuple[int, float], RetryPolicy] = {}
        self._lanes: dict[FleetLimits, _Lanes] = {}

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport if the engine made it."""
        if self._owns_transport:
            await self._transport.aclose()

    def subscribe(self, listener: Listener) -> None:
        """Add a listener for every later event of this engine."""
        self._listeners.append(listener)

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    # -- running plans ----------------------------------------------------------

    async def run(
        self,
        plan: Plan,
        *,
        limits: FleetLimits | None = None,
        on_result: Callable[[Result], None] | None = None,
        stop: anyio.Event | None = None,
    ) -> RunReport:
        """Run every call of ``plan``; return when each has exactly one result.

        ``limits``: the fleet-wide limits of this run (default: the fleet's).
        ``on_result`` sees each result as it is recorded. ``stop`` set: no new
        call starts; calls in flight get ``grace_s`` to finish, then are
        cancelled; every call not finished is ``skipped``.
        """
        with _gc.first_threshold_at_least(self._gc_threshold):
            run = _Run(self._lanes_for(limits or self.fleet.limits))
            return await self._run(run, plan, on_result, stop or anyio.Event())

    def _lanes_for(self, limits: FleetLimits) -> _Lanes:
        # Caps are all free between runs, so runs with the same limits share
        # them (and the routes built on them): a job's steps, or concurrent
        # runs, stay within one fleet-wide cap, and a route is built once
        # per deployment, not once per run.
        lanes = self._lanes.get(limits)
        if lanes is None:
            lanes = self._lanes[limits] = _Lanes(Limits(limits, rates=self._rates))
        return lanes

    async def _run(
        self,
        run: _Run,
        plan: Plan,
        on_result: Callable[[Result], None] | None,
        stop: anyio.Event,
    ) -> RunReport:
        collector = Collector(plan.operation)
        started = self._clock.now()
        # A detection that failed in an earlier run (a 5xx, an outage) is
        # kept for that run only: the next step of a job tries again.
        for url in [url for url, entry in self._dialects.items() if not isinstance(entry, tuple)]:
            del self._dialects[url]
        for url in [url for url, d in self._detections.items() if d.busy is None]:
            del self._detections[url]
        self._emit(RunStarted(plan.operation, len(plan)))
        # SSL contexts are built now, not by the first request after its
        # admission: a late first departure would crowd the ones behind it.
        prepare = getattr(self._transport, "prepare", None)
        if prepare is not None:  # optional: a transport of one's own may not have it
            await prepare(self._targets(plan))
        sink = _Sink(collector, on_result, len(plan))
        await self._dispatch(run, plan, sink, stop)
        sink.check()
        summary = collector.summary(
            duration_s=self._clock.now() - started,
            requests=run.requests,
            token_fetches=run.token_answers,
            interrupted=stop.is_set(),
        )
        self._emit(
            RunFinished(
                plan.operation, summary.ok, summary.failed, summary.skipped, summary.duration_s
            )
        )
        return RunReport(summary, tuple(collector.results))

    def _targets(self, plan: Plan) -> Iterator[tuple[str, Network]]:
        """Every URL the plan's requests and token fetches go to, with its settings."""
        seen: set[str] = set()
        for call in plan.calls:
            deployment = call.deployment
            if deployment.name in seen or deployment.unavailable is not None:
                continue
            seen.add(deployment.name)
            yield deployment.url, deployment.network
            profile = self.fleet.auth.get(deployment.auth)
            if isinstance(profile, ClientCredentialsAuth):
                yield profile.token_url, profile.network

    async def _dispatch(self, run: _Run, plan: Plan, sink: _Sink, stop: anyio.Event) -> None:
        # A fixed pool of workers pulls calls, so live calls never exceed
        # max_in_flight however large the plan, and no task is spawned per
        # call. A call that pauses (--wait) is parked in a task of its own
        # and its worker moves on.
        pending = _round_robin(plan.calls)
        if any(call.deployment.unavailable is not None for call in plan.calls):
            pending = self._skip_unavailable(pending, sink)
        count = max(1, min(run.lanes.limits.max_in_flight, len(plan)))
        async with anyio.create_task_group() as outer:
            run.spawn = outer.start_soon
            watching = anyio.CancelScope()
            outer.start_soon(self._watch_stop, stop, outer, watching)
            async with anyio.create_task_group() as workers:
                for _ in range(count):
                    workers.start_soon(self._worker, run, pending, sink, stop, workers)
            # Every call has its result. A token refresh still under way is
            # waited for, not cut off: the server has counted its request,
            # and the run's count of requests is what the servers saw.
            watching.cancel()
        # Calls never started (what the workers left in the iterator):
        # skipped, still exactly one result each.
        for index, call in pending:
            sink.deliver(
                index, call.skipped("not started: the run was interrupted", interrupted=True)
            )

    def _skip_unavailable(
        self, pending: Iterator[tuple[int, Call]], sink: _Sink
    ) -> Iterator[tuple[int, Call]]:
        """Record the calls of unavailable deployments (hibernating) as skipped, at once."""
        runnable: list[tuple[int, Call]] = []
        for index, call in pending:
            reason = call.deployment.unavailable
            if reason is None:
                runnable.append((index, call))
                continue
            result = call.skipped(reason)
            sink.deliver(index, result)
            if self._listeners:
                self._emit(CallStarted(call))
                self._emit(CallFinished(call, result))
        return iter(runnable)

    async def _watch_stop(
        self, stop: anyio.Event, outer: TaskGroup, watching: anyio.CancelScope
    ) -> None:
        with watching:
            await stop.wait()
            await self._clock.sleep(self._grace_s)
            outer.cancel_scope.cancel()  # the grace is over: cancel what is left

    async def _worker(
        self,
        run: _Run,
        pending: Iterator[tuple[int, Call]],
        sink: _Sink,
        stop: anyio.Event,
        group: TaskGroup,
    ) -> None:
        # next() on the shared iterator never awaits, so no two workers take
        # the same call, and a call taken is started (and recorded) in the
        # same step. Stop is checked before taking one: a run stopped before
        # or while its workers start begins no call at all.
        while not stop.is_set():
            item = next(pending, None)
            if item is None:
                return
            index, call = item
            if self._listeners:  # no event is built when nobody listens
                self._emit(CallStarted(call))
            await self._work(run, _Progress(index, call, self._clock.now()), sink, group)

    async def _work(
        self, run: _Run, progress: _Progress, sink: _Sink, group: TaskGroup | None
    ) -> None:
        """Drive one call to its result; with ``group``, park it there if it pauses."""
        try:
            verdict = await self._converse(run, progress, sink, group)
        except anyio.get_cancelled_exc_class():
            # No await here: the result is recorded even as the task is cancelled.
            self._finish(progress, sink, _interrupted(progress.conversation))
            raise
        if verdict is not None:  # None: parked, a task of its own carries on
            self._finish(progress, sink, verdict)

    def _finish(self, progress: _Progress, sink: _Sink, verdict: Verdict) -> None:
        call = progress.call
        data = verdict.data
        if call.deployment.status is not None:  # discovered: the platform's word on it
            data = {**data, "deployment_status": call.deployment.status}
        result = Result(  # every field, in order
            call.deployment.name,
            call.operation,
            call.target,
            verdict.outcome,
            verdict.status if verdict.status is not None else progress.last_status,
            progress.max_attempts,
            (self._clock.now() - progress.started) * 1000.0,
            redaction.scrub(verdict.error) if verdict.error else None,
            data,
            progress.requests,
        )
        sink.deliver(progress.index, result)
        if self._listeners:
            self._emit(CallFinished(call, result))

    async def _converse(
        self, run: _Run, progress: _Progress, sink: _Sink, group: TaskGroup | None
    ) -> Verdict | None:
        """Run the conversation; None when parked in ``group`` at a pause."""
        try:
            if progress.route is None:
                progress.route = await self._route(run, progress)
                progress.conversation = progress.call.spec.converse(progress.route.dialect)
                progress.step = next(progress.conversation)
            while True:
                route = progress.route
                conversation = progress.conversation
                assert conversation is not None  # noqa: S101 - made with the route
                step = progress.step
                answer: Answer = None
                failure: AirfleetError | None = None
                try:
                    if isinstance(step, Request):
                        response = await self._send(run, route, step, progress)
                        if progress.detecting is not None:
                            if self._settle(run, progress, step, response):
                                continue  # it speaks v1: the call starts over in v1
                        elif route.dialect.route_missing(response, step.method):
                            raise no_api_error(
                                route.dialect,
                                response,
                                declared=progress.call.deployment.api != "auto",
                            )
                        answer = response
                    elif isinstance(step, Pause):
                        if group is not None:
                            # A waiting call gives its worker to calls with work to do.
                            group.start_soon(self._work, run, progress, sink, None)
                            return None
                        await self._clock.sleep(step.seconds)
                    else:
                        assert step is not None  # noqa: S101 - set before the loop
                        answer = await self._gather(run, route, step, progress)
                except AuthError as exc:
                    if progress.detecting and self._no_token_endpoint(run, progress, exc):
                        continue  # no Airflow 3 token endpoint: the call starts over in v1
                    failure = exc
                except AirfleetError as exc:
                    failure = exc
                progress.step = (
                    conversation.throw(failure) if failure else conversation.send(answer)
                )
        except StopIteration as done:
            verdict: Verdict = done.value
            return verdict
        except AirfleetError as exc:
            return Verdict(Outcome.FAILED, error=str(exc), status=getattr(exc, "status", None))
        finally:
            if progress.detecting is not None:
                # It ended, paused or was cancelled before any answer proved
                # a version: the next call to this server probes for it.
                self._release(progress)

    async def _gather(
        self, run: _Run, route: _Route, requests: tuple[Request, ...], tally: _Tally
    ) -> tuple[Response, ...]:
        """Send several requests at once (each admitted on its own); fail if any fails."""
        answers: list[Response | None] = [None] * len(requests)
        errors: list[AirfleetError] = []

        async def one(i: int, request: Request) -> None:
            try:
                answers[i] = await self._send(run, route, request, tally)
            except AirfleetError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for i, request in enumerate(requests):
                group.start_soon(one, i, request)
        if errors:
            raise errors[0]
        return tuple(a for a in answers if a is not None)

    # -- routes and dialects ------------------------------------------------------

    async def _route(self, run: _Run, progress: _Progress) -> _Route:
        """Where the requests of a call go, and how."""
        deployment = progress.call.deployment
        route = run.lanes.routes.get(deployment.name)
        if route is not None:
            return route
        if deployment.api != "auto":
            dialect = dialect_named(deployment.api)
        else:
            found = await self._dialect(run, progress)
            if found is None:
                # This call settles the version with its own requests, as v2
                # first; the route is kept once an answer proves it.
                return self._make_route(run, deployment, DIALECTS["v2"])
            dialect = found
        # Another call may have made it while this one waited for detection.
        made = run.lanes.routes.get(deployment.name)
        if made is None:
            made = run.lanes.routes[deployment.name] = self._make_route(run, deployment, dialect)
        return made

    def _make_route(self, run: _Run, deployment: Deployment, dialect: Dialect) -> _Route:
        profile = self.fleet.profile_for(deployment)
        scope = AuthScope(deployment, profile, dialect)
        key = self._credentials.key_for(scope)
        limits = run.lanes.limits
        admission = limits.admission(
            deployment, credential_key=key, credential_rate=profile.max_per_second
        )
        return _Route(
            deployment.name,
            deployment.url,
            dialect,
            scope,
            key,
            self._credentials.fixed(scope, key),
            self._policy(deployment.retries, deployment.timeout_s),
            admission,
            # Without a credential's rate, the same admission (the common case).
            admission if profile.max_per_second is None else limits.admission(deployment),
            deployment.network,
        )

    def _policy(self, retries: int, timeout_s: float) -> RetryPolicy:
        policy = self._policies.get((retries, timeout_s))
        if policy is None:
            policy = self._policies[retries, timeout_s] = RetryPolicy(
                retries=retries, timeout_s=timeout_s
            )
        return policy

    def known_version(self, deployment: Deployment) -> str | None:
        """The Airflow version the server said, if a version answer was seen."""
        entry = self._dialects.get(deployment.url)
        return entry[1] if isinstance(entry, tuple) else None

    async def _dialect(self, run: _Run, progress: _Progress) -> Dialect | None:
        """The deployment's dialect, settled once per server (single flight).

        None: the calling call is to settle it with its own requests (see
        :meth:`_settle`), so an Airflow 3 server costs no request of its own
        and an Airflow 2 one a single route-level 404. Only if that call
        ends without an answer that proves a version (a server error, a
        refusal) does the next one probe ``/api/v2/version`` and
        ``/api/v1/version``; a failed probe fails this run's calls to the
        server at once.
        """
        key = progress.call.deployment.url
        while True:
            entry = self._dialects.get(key)
            if isinstance(entry, AirfleetError):
                raise entry
            if entry is not None:
                return entry[0]
            detection = self._detections.get(key)
            if detection is None:
                detection = self._detections[key] = _Detection()
            if detection.busy is not None:
                await detection.busy.wait()
                continue
            detection.busy = anyio.Event()
            if not detection.tried:
                detection.tried = True
                progress.detecting = detection
                return None
            try:
                self._dialects[key] = await self._detect(run, progress.call.deployment)
            finally:
                detection.done()

    def _settle(self, run: _Run, progress: _Progress, request: Request, answer: Response) -> bool:
        """Let a detecting call's answer settle the version; True if the call
        must start over in v1 (the v2 route is missing, so nothing happened)."""
        route = progress.route
        assert route is not None  # noqa: S101 - set before its first request
        dialect = route.dialect
        deployment = progress.call.deployment
        if dialect.is_own_answer(answer):
            body = answer.body
            version = body.get("version") if request == dialect.version() else None
            found = (dialect, version if isinstance(version, str) else None)
            self._dialects[deployment.url] = found
            run.lanes.routes.setdefault(deployment.name, route)
            self._emit(DialectDetected(deployment.name, dialect.name, found[1]))
            self._release(progress)
            return False
        if not dialect.route_missing(answer, request.method):
            return False  # proves nothing (a refusal, a 5xx): the call goes on as it is
        if dialect.name == "v2":
            self._restart_in_v1(run, progress)
            return True
        error = no_api_error(dialect, answer, declared=False)
        self._dialects[deployment.url] = error
        self._emit(DialectDetected(deployment.name, None, None, error=str(error)))
        self._release(progress)
        raise error

    def _no_token_endpoint(self, run: _Run, progress: _Progress, exc: AuthError) -> bool:
        """Did a detecting call find no Airflow 3 token endpoint? Then it starts
        over in v1 (a password profile logs in with basic auth there)."""
        if progress.route is None or _no_airflow3_login(progress.route, exc) is None:
            return False
        self._restart_in_v1(run, progress)
        return True

    def _restart_in_v1(self, run: _Run, progress: _Progress) -> None:
        v1 = DIALECTS["v1"]
        if progress.conversation is not None:
            progress.conversation.close()
        progress.route = self._make_route(run, progress.call.deployment, v1)
        progress.conversation = progress.call.spec.converse(v1)
        progress.step = next(progress.conversation)

    def _release(self, progress: _Progress) -> None:
        detection, progress.detecting = progress.detecting, None
        if detection is not None:
            detection.done()

    async def _detect(
        self, run: _Run, deployment: Deployment
    ) -> tuple[Dialect, str | None] | AirfleetError:
        """The probe: each dialect's version route, with the deployment's credential."""
        routes = {
            name: self._make_route(run, deployment, dialect) for name, dialect in DIALECTS.items()
        }
        conversation = detect()
        try:
            request = next(conversation)
            while True:
                route = routes["v1" if request.path.startswith(DIALECTS["v1"].prefix) else "v2"]
                try:
                    response = await self._send(run, route, request, _Tally())
                except AuthError as exc:
                    status = _no_airflow3_login(route, exc)
                    if status is None:
                        raise
                    # No Airflow 3 token endpoint: as good as a missing v2 route.
                    response = Response(status, None)
                request = conversation.send(response)
        except StopIteration as done:
            found: tuple[Dialect, str | None] = done.value
            self._emit(DialectDetected(deployment.name, found[0].name, found[1]))
            return found
        except AirfleetError as exc:
            self._emit(DialectDetected(deployment.name, None, None, error=str(exc)))
            return exc

    # -- one request: retries, auth, admission -------------------------------------

    async def _send(self, run: _Run, route: _Route, request: Request, tally: _Tally) -> Response:
        """Retries around :meth:`_send_with_auth`, as the route's policy decides."""
        clock = self._clock
        started = clock.now()
        attempt = 0
        acted = False  # an earlier attempt may have acted without our seeing its answer
        while True:
            attempt += 1
            if attempt > tally.max_attempts:
                tally.max_attempts = attempt
            try:
                response = await self._send_with_auth(run, route, request, tally, attempt)
            except TransportError as exc:
                delay = self._delay(route, request, exc, attempt, started)
                acted = acted or exc.may_have_acted
                if delay is None:
                    tried = f" (after {attempt} attempts)" if attempt > 1 else ""
                    raise type(exc)(
                        f"{exc}{tried}", transient=exc.transient, may_have_acted=acted
                    ) from exc
            except AuthError as exc:
                exc.may_have_acted = acted
                raise
            else:
                status = response.status
                delay = None
                if status >= 400:
                    delay = self._delay(route, request, status, attempt, started, response)
                elif self._listeners:
                    self._attempted(route, request, attempt, status, None)
                if delay is None:
                    return self._final(response, attempt, acted)
                acted = acted or status in UNCERTAIN_STATUSES
            await clock.sleep(delay)

    def _delay(
        self,
        route: _Route,
        request: Request,
        failure: TransportError | int,
        attempt: int,
        started: float,
        response: Response | None = None,
    ) -> float | None:
        """The policy's wait before the next attempt (None: no retry), told to listeners."""
        delay = route.policy.delay(
            failure,
            attempt=attempt,
            elapsed_s=self._clock.now() - started,
            idempotent=request.idempotent,
            rng=self._rng,
            headers=response.headers if response is not None else None,
        )
        if self._listeners:
            self._attempted(route, request, attempt, failure, delay)
        return delay

    @staticmethod
    def _final(response: Response, attempt: int, acted: bool) -> Response:
        """The answer the conversation gets: with its attempts, and never cut."""
        response.attempts = attempt
        response.uncertain_before = acted
        if response.truncated:
            raise ApiError(
                response.status,
                f"the answer is larger than {MAX_BODY_BYTES // 2**20} MiB; "
                "airfleet stopped reading it",
                body=response.text,
                may_have_acted=True,
            )
        return response

    async def _send_with_auth(
        self, run: _Run, route: _Route, request: Request, tally: _Tally, attempt: int
    ) -> Response:
        """One exchange; if the server refuses its credential, one more with a fresh one."""
        response, credential = await self._send_once(run, route, request, tally)
        scope = route.scope
        if (
            response.status < 400
            or credential is None
            or scope is None
            or not route.dialect.is_auth_failure(response)
        ):
            return response
        refusal = f"HTTP {response.status}: {route.dialect.error_message(response)}"
        if self._credentials.renewable(credential):
            self._credentials.invalidate(credential)
            if self._listeners:
                self._attempted(route, request, attempt, response.status, 0.0, "credential refused")
            self._emit(ReAuthenticating(route.name, credential.key, response.status))
            response, credential = await self._send_once(
                run, route, request, tally, since=response.at
            )
            if not route.dialect.is_auth_failure(response):
                return response
            refusal = f"HTTP {response.status}: {route.dialect.error_message(response)}"
        raise AuthError(
            f"{route.name} refused auth profile {scope.profile.name!r} ({refusal}); "
            "check its credentials and the user's permissions",
            status=response.status,
        )

    async def _send_once(
        self,
        run: _Run,
        route: _Route,
        request: Request,
        tally: _Tally,
        *,
        since: float = -math.inf,
    ) -> tuple[Response, Credential | None]:
        """One exchange inside admission; the credential is read after admission.

        ``since``: after a refusal, only a token whose fetch began since then
        (one fetched just before a revocation may be revoked too).
        """
        credentials = self._credentials
        credential: Credential | None = None
        scope = route.scope if request.auth else None
        if scope is None:
            admission = route.open_admission
        else:
            admission = route.admission
            credential = route.fixed
            if credential is None and credentials.ready(route.key, since) is None:
                # Before admission, holding nothing: the fetch may need the
                # very rates and caps this call would otherwise hold.
                await self._token(run, scope, since)
        if not admission.enter_now():
            await admission.enter()
        try:
            if scope is not None and credential is None:
                credential = credentials.usable(route.key, since)
                if credential is None:
                    # It expired or was refused while this call queued, and
                    # nobody refreshed it: fetch, then pace again, so the
                    # late departure does not crowd the calls behind.
                    credential = await self._token(run, scope, since)
                    await admission.pace()
                elif credentials.claim_refresh(credential):
                    # Good to send, but due: replace it behind this call's
                    # back, so the calls queued behind it never find it gone.
                    run.spawn(self._refresh, run, scope)
            http = HttpRequest(
                request.method,
                route.base_url + request.path,
                request.params,
                credential.headers if credential is not None else _NO_HEADERS,
                request.json,
                route.policy.timeout_s,
                route.network,
            )
            run.requests += 1
            tally.requests += 1
            raw = await self._transport.send(http)
        finally:
            admission.leave()
        tally.last_status = raw.status
        tally.answers += 1
        response = Response(
            raw.status,
            raw.json(),
            raw.text,
            1,
            False,
            self._clock.now(),
            raw.headers,
            raw.truncated,
        )
        return response, credential

    async def _token(self, run: _Run, scope: AuthScope, since: float) -> Credential:
        return await self._credentials.fetched(scope, run.fetcher(self), since=since)

    async def _refresh(self, run: _Run, scope: AuthScope) -> None:
        # A failure here is met again, and reported, by the calls that need
        # the token once the current one has run out.
        with contextlib.suppress(AirfleetError):
            await self._token(run, scope, -math.inf)

    async def _fetch_token(self, run: _Run, request: TokenRequest) -> Response:
        """A token request, through the same layers as any other (no credential)."""
        # By URL and settings: two profiles may share a token service and
        # reach it through different proxies or with different certificates.
        where = (request.url, request.network)
        route = run.lanes.token_routes.get(where)
        if route is None:
            deployment = request.deployment
            admission = run.lanes.limits.token_admission(deployment)
            route = run.lanes.token_routes[where] = _Route(
                deployment.name if deployment is not None else "",
                request.url,
                dialect_named("v2"),
                None,
                "",
                None,
                request.policy,
                admission,
                admission,
                request.network,
            )
        token_request = Request("POST", "", json=dict(request.body), auth=False)
        tally = _Tally()
        try:
            return await self._send(run, route, token_request, tally)
        finally:
            run.token_answers += tally.answers

    def _attempted(
        self,
        route: _Route,
        request: Request,
        attempt: int,
        failure: TransportError | int,
        delay: float | None,
        reason: str | None = None,
    ) -> None:
        """Tell the listeners how one attempt ended (an answer's status, or no answer)."""
        status = failure if isinstance(failure, int) else None
        if reason is None and not isinstance(failure, int):
            reason = str(failure)
        path = request.path or urlsplit(route.base_url).path
        self._emit(
            AttemptFinished(
                route.name or None, request.method, path, attempt, status, reason, delay
            )
        )


_INTERRUPTED = "interrupted while in flight; its effect is unknown"


def _interrupted(conversation: Conversation | None) -> Verdict:
    """A cancelled call's verdict: its conversation's, if it knows what happened."""
    if conversation is not None:
        try:
            conversation.throw(CallInterrupted())
        except StopIteration as done:
            verdict: Verdict = done.value
            return verdict
        except Exception:  # noqa: S110 - it did not know, or broke: the generic verdict, still one
            pass
        else:
            conversation.close()  # it asked for more: it cannot be answered now
    return Verdict(Outcome.SKIPPED, error=_INTERRUPTED)


def _no_airflow3_login(route: _Route, exc: AuthError) -> int | None:
    """The status (404 or 405) if speaking v2 failed because the server has no
    Airflow 3 login (``/auth/token``): then it is not Airflow 3 at this URL."""
    if route.dialect.name == "v2" and exc.status in (404, 405):
        return exc.status
    return None


def _no_task(*_: object) -> None:
    """Outside a run's task group nothing is started in the background."""


def _round_robin(calls: Sequence[Call]) -> Iterator[tuple[int, Call]]:
    """The calls, with their plan indexes, one deployment after another.

    In plan order, the 20 calls of one deployment would come first: every
    worker would wait on that deployment's caps and rate while the others
    sit idle. Taken round-robin across deployments (plan order within each),
    each deployment's queue holds only its share of the workers.
    """
    if len({call.deployment.name for call in calls}) == len(calls):
        return enumerate(calls)  # one call per deployment: plan order is fair
    by_deployment: dict[str, list[int]] = {}
    for index, call in enumerate(calls):
        by_deployment.setdefault(call.deployment.name, []).append(index)
    rounds = itertools.zip_longest(*by_deployment.values())
    return ((i, calls[i]) for turn in rounds for i in turn if i is not None)


class _Lanes:
    """The caps of one set of fleet limits, and the routes built on them."""

    __slots__ = ("limits", "routes", "token_routes")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.routes: dict[str, _Route] = {}  # by deployment name
        self.token_routes: dict[tuple[str, Network], _Route] = {}  # by token URL and network


class _Run:
    """What belongs to one run: its lanes, its request counts, its task group."""

    __slots__ = ("_fetcher", "lanes", "requests", "spawn", "token_answers")

    def __init__(self, lanes: _Lanes) -> None:
        self.lanes = lanes
        self.spawn: Callable[..., object] = _no_task  # the run's task group, once it runs
        self.requests = 0  # every request sent: calls', detection's and token fetches'
        self.token_answers = 0  # answers from token endpoints, failures included
        self._fetcher: Callable[[TokenRequest], Awaitable[Response]] | None = None

    def fetcher(self, engine: Engine) -> Callable[[TokenRequest], Awaitable[Response]]:
        """The engine's token fetch, bound to this run's limits and count."""
        if self._fetcher is None:
            self._fetcher = functools.partial(engine._fetch_token, self)
        return self._fetcher


@dataclass(frozen=True, slots=True)
class _Route:
    """What every request to one deployment in one run shares, built once."""

    name: str
    base_url: str
    dialect: Dialect
    scope: AuthScope | None  # None for a token request
    key: str  # the credential's cache key
    fixed: Credential | None  # the credential, when it needs no fetch
    policy: RetryPolicy
    admission: Admission  # for a request that carries the credential
    open_admission: Admission  # for one that carries none (detection, health)
    network: Network = DEFAULT_NETWORK  # proxy and TLS, resolved by the transport


class _Sink:
    """Where a worker hands its call's one result: to the collector, at once.

    No queue and no collector task: the run is one event loop, so a result is
    collected (and ``on_result`` called) in the step that made it, and no
    result can be left queued.
    """

    __slots__ = ("_collector", "_on_result", "_seen")

    def __init__(
        self, collector: Collector, on_result: Callable[[Result], None] | None, calls: int
    ) -> None:
        self._collector = collector
        self._on_result = on_result
        self._seen = bytearray(calls)  # one flag per planned call

    def deliver(self, index: int, result: Result) -> None:
        if self._seen[index]:
            raise RuntimeError(f"bug: two results for call #{index} ({result.deployment})")
        self._seen[index] = 1
        self._collector.add(result)
        if self._on_result is not None:
            self._on_result(result)

    def check(self) -> None:
        """Every planned call has its result (a bug otherwise)."""
        missing = self._seen.count(0)
        if missing:
            raise RuntimeError(f"bug: {missing} planned calls have no result")


class _Tally:
    """Per-call request counters, owned by one worker."""

    __slots__ = ("answers", "last_status", "max_attempts", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.answers = 0
        self.max_attempts = 0
        self.last_status: int | None = None


class _Detection:
    """A server whose API version is not settled yet: who is settling it."""

    __slots__ = ("busy", "tried")

    def __init__(self) -> None:
        self.busy: anyio.Event | None = None  # set when the call or probe settling it is done
        self.tried = False  # a call's own requests tried to settle it this run

    def done(self) -> None:
        """The call or probe settling it has finished: wake those waiting for it."""
        busy, self.busy = self.busy, None
        if busy is not None:
            busy.set()


class _Progress(_Tally):
    """Where one call stands, and its counters: it survives a move to a parked task."""

    __slots__ = ("call", "conversation", "detecting", "index", "route", "started", "step")

    def __init__(self, index: int, call: Call, started: float) -> None:
        super().__init__()
        self.index = index
        self.call = call
        self.started = started
        self.route: _Route | None = None
        self.conversation: Conversation | None = None
        self.step: Step | None = None
        self.detecting: _Detection | None = None  # this call is to settle its server's API
