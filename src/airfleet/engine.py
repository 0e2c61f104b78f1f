"""The engine: runs a plan's calls concurrently, within limits, one result each.

Shape of a run::

    dispatcher ──(limit: live calls <= fleet max_in_flight)──► worker per call
    worker: detect dialect (once per server) ─► conversation ─► requests
    request: credential ─► limits.slot() ─► transport ─► retry / re-auth
    worker ──Result──► sink ──► collector (in the worker's own step, in order finished)

Workers turn every expected failure into a result; an exception escaping a
worker is a bug and cancels the run loudly.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import anyio

from airfleet import _gc, redaction
from airfleet.auth import AuthManager, AuthScope, Credential
from airfleet.dialects.base import Dialect
from airfleet.dialects.detect import detect, dialect_named
from airfleet.errors import AirfleetError, ApiError, AuthError, TransportError
from airfleet.events import (
    AttemptFailed,
    CallFinished,
    CallStarted,
    Event,
    Listener,
    RunFinished,
    RunStarted,
    TokenFetched,
)
from airfleet.inventory import Deployment, Fleet
from airfleet.limits import Limits, Slot
from airfleet.plan import (
    Answer,
    Call,
    Conversation,
    Pause,
    Plan,
    Request,
    Response,
    Step,
    Verdict,
)
from airfleet.results import Collector, Outcome, Result, Summary, new_result
from airfleet.retry import RETRY_STATUSES, UNCERTAIN_STATUSES, RetryPolicy, parse_retry_after
from airfleet.transport import MAX_BODY_BYTES, AiohttpTransport, HttpRequest, Transport

__all__ = ["Engine", "RunReport"]

DEFAULT_GRACE_S = 10.0
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RunReport:
    """What one run produced: its summary and every result, in completion order."""

    summary: Summary
    results: tuple[Result, ...]


class _Tally:
    """Per-call counters, owned by one worker."""

    __slots__ = ("last_status", "max_attempts", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.max_attempts = 0
        self.last_status: int | None = None


class Engine:
    """Runs plans against a fleet over one HTTP session.

    Use as an async context manager; tokens and detected dialects are kept for
    the engine's life, so a job of several plans fetches each token once.

    While a run is in flight, CPython's collector runs its youngest generation
    every ``gc_threshold`` net new objects instead of every 700 (restored when
    the last run ends; ``None`` leaves it alone): at 0 ms latency the default
    walks every in-flight request's objects and costs a tenth of the run.
    """

    def __init__(
        self,
        fleet: Fleet,
        *,
        transport: Transport | None = None,
        listeners: Sequence[Listener] = (),
        clock: Callable[[], float] = time.monotonic,
        sleep_between_retries: bool = True,
        seed: int | None = None,
        grace_s: float = DEFAULT_GRACE_S,
        gc_threshold: int | None = _gc.DEFAULT_THRESHOLD,
    ) -> None:
        self.fleet = fleet
        self._owns_transport = transport is None
        self._transport: Transport = transport or AiohttpTransport(
            max_connections=max(fleet.limits.max_in_flight, 1) + 8
        )
        self._listeners = list(listeners)
        self._clock = clock
        self._sleep_between_retries = sleep_between_retries
        self._rng = random.Random(seed)
        self._grace_s = grace_s
        self._gc_threshold = gc_threshold
        self._limits: Limits | None = None
        self._auth: AuthManager | None = None
        self._dialects: dict[str, tuple[Dialect, str | None] | AirfleetError] = {}
        self._detect_locks: dict[str, anyio.Lock] = {}
        self._policies: dict[int, RetryPolicy] = {}
        self._routes: dict[str, _Route] = {}

    async def __aenter__(self) -> Engine:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_transport:
            await self._transport.aclose()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _emit(self, event: Event) -> None:
        for listener in self._listeners:
            listener(event)

    @property
    def limits(self) -> Limits:
        # Built on first use (its semaphores bind to the loop that first waits).
        if self._limits is None:
            self._limits = Limits(self.fleet.limits)
        return self._limits

    @property
    def auth(self) -> AuthManager:
        if self._auth is None:
            self._auth = AuthManager(
                self._transport, clock=self._clock, gate=self.limits.fetch_slot, rng=self._rng
            )
            self._auth.on_fetch = lambda key, took: self._emit(TokenFetched(key, took))
        return self._auth

    # -- dialects ---------------------------------------------------------------

    def known_version(self, deployment: Deployment) -> str | None:
        """The Airflow version detection saw, if detection ran for this deployment."""
        entry = self._dialects.get(deployment.url)
        return entry[1] if isinstance(entry, tuple) else None

    async def dialect_for(self, deployment: Deployment) -> Dialect:
        """The deployment's dialect: declared, or detected once per server and cached."""
        if deployment.api != "auto":
            return dialect_named(deployment.api)
        key = deployment.url
        entry = self._dialects.get(key)
        if entry is None:
            lock = self._detect_locks.setdefault(key, anyio.Lock())
            async with lock:
                entry = self._dialects.get(key)
                if entry is None:
                    entry = await self._detect(deployment)
                    self._dialects[key] = entry
        if isinstance(entry, AirfleetError):
            raise entry
        return entry[0]

    async def _detect(self, deployment: Deployment) -> tuple[Dialect, str | None] | AirfleetError:
        conversation = detect()
        tally = _Tally()
        try:
            request = next(conversation)
            while True:
                # Detection needs no credential and any dialect reads its answers.
                response = await self._request(deployment, dialect_named("v2"), request, tally)
                request = conversation.send(response)
        except StopIteration as done:
            result: tuple[Dialect, str | None] = done.value
            return result
        except AirfleetError as exc:
            return exc

    # -- running plans ----------------------------------------------------------

    async def run(
        self,
        plan: Plan,
        *,
        on_result: Callable[[Result], None] | None = None,
        stop: anyio.Event | None = None,
    ) -> RunReport:
        """Run every call of ``plan``; return when each has exactly one result.

        ``stop`` set: no new call starts; calls in flight get ``grace_s`` to
        finish, then are cancelled; every call not finished is ``skipped``.
        """
        with _gc.first_threshold_at_least(self._gc_threshold):
            return await self._run(plan, on_result, stop or anyio.Event())

    async def _run(
        self, plan: Plan, on_result: Callable[[Result], None] | None, stop: anyio.Event
    ) -> RunReport:
        collector = Collector(plan.operation)
        started = self._clock()
        fetches_before = self.auth.fetches
        # A detection that failed in an earlier plan (a 5xx, an outage) is
        # cached for that plan only: the next step of a job tries again.
        for url in [url for url, entry in self._dialects.items() if not isinstance(entry, tuple)]:
            del self._dialects[url]
        self._emit(RunStarted(plan.operation, len(plan)))
        sink = _Sink(collector, on_result, len(plan))
        await self._dispatch(plan, sink, stop)
        sink.check()
        summary = collector.summary(
            duration_s=self._clock() - started,
            token_fetches=self.auth.fetches - fetches_before,
            interrupted=stop.is_set(),
        )
        self._emit(
            RunFinished(
                plan.operation, summary.ok, summary.failed, summary.skipped, summary.duration_s
            )
        )
        return RunReport(summary, tuple(collector.results))

    async def _dispatch(self, plan: Plan, sink: _Sink, stop: anyio.Event) -> None:
        # A fixed pool of max_in_flight workers pulls calls in plan order, so
        # live calls never exceed the cap however large the plan, and no task
        # is spawned per call. A call that pauses (--wait) is parked in a task
        # of its own and its worker moves on.
        pending = iter(enumerate(plan.calls))
        count = max(1, min(self.fleet.limits.max_in_flight, len(plan)))
        async with anyio.create_task_group() as watching:
            with anyio.CancelScope() as workers_scope:
                watching.start_soon(self._watch_stop, stop, workers_scope)
                # The workers run in asyncio's own TaskGroup: a task starts
                # there in 3.5 us against 16.6 in anyio's (its TaskHandle,
                # CancelScope and Event per task), and a run of 1,000 calls
                # starts 200. Cancelling workers_scope cancels this task; the
                # TaskGroup then cancels every worker and waits for each to
                # record its result, as anyio's would.
                async with asyncio.TaskGroup() as workers:
                    for _ in range(count):
                        workers.create_task(self._worker(pending, sink, stop, workers))
            watching.cancel_scope.cancel()
        # Calls never started (what the workers left in the iterator):
        # skipped, still exactly one result each.
        for index, call in pending:
            sink.deliver(index, call.skipped("not started: the run was interrupted"))

    async def _worker(
        self,
        pending: Iterator[tuple[int, Call]],
        sink: _Sink,
        stop: anyio.Event,
        group: asyncio.TaskGroup,
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
            await self._work(_Progress(index, call, self._clock()), sink, group)

    async def _watch_stop(self, stop: anyio.Event, workers: anyio.CancelScope) -> None:
        await stop.wait()
        await anyio.sleep(self._grace_s)
        workers.cancel()

    async def _work(
        self,
        progress: _Progress,
        sink: _Sink,
        group: asyncio.TaskGroup | None,
    ) -> None:
        """Drive one call to its result; with ``group``, park it there if it pauses."""
        call, tally = progress.call, progress
        try:
            verdict = await self._converse(progress, sink, group)
        except anyio.get_cancelled_exc_class():
            # No await here: the result is recorded even as the task is cancelled.
            result = call.skipped("interrupted while in flight; its effect is unknown")
            result = _with_counts(result, tally, self._clock() - progress.started)
            sink.deliver(progress.index, result)
            self._emit(CallFinished(call, result))
            raise
        if verdict is None:
            return  # parked: a task of its own carries on
        # One per call: every field, in field order (deployment, operation,
        # target, outcome, status, attempts, latency_ms, error, data, requests).
        result = new_result(
            call.deployment.name,
            call.operation,
            call.target,
            verdict.outcome,
            verdict.status if verdict.status is not None else tally.last_status,
            tally.max_attempts,
            (self._clock() - progress.started) * 1000.0,
            redaction.scrub(verdict.error) if verdict.error else None,
            verdict.data,
            tally.requests,
        )
        sink.deliver(progress.index, result)
        if self._listeners:
            self._emit(CallFinished(call, result))

    async def _converse(
        self,
        progress: _Progress,
        sink: _Sink,
        group: asyncio.TaskGroup | None,
    ) -> Verdict | None:
        """Run the conversation; None when parked in ``group`` at a pause."""
        call, tally = progress.call, progress
        deployment = call.deployment
        try:
            if progress.conversation is None:
                # A declared API needs no await (the common case at scale).
                progress.dialect = (
                    dialect_named(deployment.api)
                    if deployment.api != "auto"
                    else await self.dialect_for(deployment)
                )
                progress.conversation = call.spec.converse(progress.dialect)
                progress.step = next(progress.conversation)
            conversation, dialect = progress.conversation, progress.dialect
            assert dialect is not None  # noqa: S101 - set with the conversation
            while True:
                step = progress.step
                answer: Answer = None
                failure: AirfleetError | None = None
                try:
                    if isinstance(step, Request):
                        answer = await self._request(deployment, dialect, step, tally)
                    elif isinstance(step, Pause):
                        if group is not None:
                            # A waiting call gives its worker to calls with work to do.
                            group.create_task(self._work(progress, sink, None))
                            return None
                        await anyio.sleep(step.seconds)
                    else:
                        assert step is not None  # noqa: S101 - set before the loop
                        answer = await self._gather(deployment, dialect, step, tally)
                except AirfleetError as exc:
                    failure = exc
                progress.step = (
                    conversation.throw(failure) if failure else conversation.send(answer)
                )
        except StopIteration as done:
            verdict: Verdict = done.value
            return verdict
        except AirfleetError as exc:
            status = getattr(exc, "status", None)
            return Verdict(Outcome.FAILED, error=str(exc), status=status)

    async def _gather(
        self, deployment: Deployment, dialect: Dialect, requests: tuple[Request, ...], tally: _Tally
    ) -> tuple[Response, ...]:
        """Send several requests at once (each under the limits); fail if any fails."""
        answers: list[Response | None] = [None] * len(requests)
        errors: list[AirfleetError] = []

        async def one(i: int, request: Request) -> None:
            try:
                answers[i] = await self._request(deployment, dialect, request, tally)
            except AirfleetError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as group:
            for i, request in enumerate(requests):
                group.start_soon(one, i, request)
        if errors:
            raise errors[0]
        return tuple(a for a in answers if a is not None)

    # -- one request, with auth, limits and retries -------------------------------

    def _route(self, deployment: Deployment, dialect: Dialect) -> _Route:
        """What every request to ``deployment`` in ``dialect`` shares, built once."""
        route = self._routes.get(deployment.name)
        if route is None or route.scope.dialect is not dialect:
            profile = self.fleet.profile_for(deployment)
            scope = AuthScope(deployment, profile, dialect)
            policy = self._policies.get(deployment.retries)
            if policy is None:
                policy = self._policies[deployment.retries] = RetryPolicy(
                    retries=deployment.retries
                )
            route = self._routes[deployment.name] = _Route(
                scope,
                policy,
                # A credential's key is fixed by its scope, and so is the slot.
                self.limits.slot(
                    deployment,
                    credential_key=AuthManager.key_for(scope),
                    credential_rate=profile.max_per_second,
                ),
            )
        return route

    async def _request(
        self, deployment: Deployment, dialect: Dialect, request: Request, tally: _Tally
    ) -> Response:
        route = self._route(deployment, dialect)
        auth, clock, policy = self.auth, self._clock, route.policy
        deadline = clock() + policy.total_s
        url = deployment.url + request.path
        attempt = 0
        retries_used = 0
        reauthed = False
        uncertain = False
        while True:
            attempt += 1
            if attempt > tally.max_attempts:
                tally.max_attempts = attempt
            credential: Credential | None = None
            if request.auth:
                try:
                    credential = auth.ready(route.scope) or await auth.get(route.scope)
                except AuthError as exc:
                    if not uncertain:
                        raise
                    # An earlier attempt may have acted: the caller must know
                    # that this request's effect is unknown, not merely that
                    # auth failed.
                    raise TransportError(f"{exc} (an earlier attempt got no answer)") from exc
            http = HttpRequest(
                request.method,
                url,
                request.params,
                credential.headers if credential is not None else _NO_HEADERS,
                request.json,
                deployment.timeout_s,
            )
            failure: TransportError | None = None
            # A request without a credential (detection, a login) is held by
            # the deployment's and the fleet's limits only.
            slot = route.slot if credential is not None else self.limits.slot(deployment)
            if not slot.enter_now():
                await slot.enter()
            tally.requests += 1
            try:
                raw = await self._transport.send(http)
            except TransportError as exc:
                failure = exc
            finally:
                slot.leave()
            if failure is not None:
                uncertain = True
                if not self._may_retry(request, retries_used, policy, deadline):
                    raise type(failure)(f"{failure} (after {attempt} attempts)") from failure
                retries_used += 1
                await self._backoff(deployment, request, attempt, str(failure), policy, None)
                continue
            status = tally.last_status = raw.status
            response = Response(
                status, raw.json(), raw.text, attempt, uncertain, clock(), raw.headers
            )
            if status < 400 and not raw.truncated:
                return response  # the common case: nothing below applies
            if credential is not None and dialect.is_auth_failure(response):
                # One fresh credential, one more try; a refused fresh one is final.
                if not reauthed and self.auth.refreshable(credential):
                    reauthed = True
                    self.auth.invalidate(credential)
                    continue
                raise AuthError(
                    f"{deployment.name} refused auth profile {route.scope.profile.name!r} "
                    f"(HTTP {raw.status}: {dialect.error_message(response)}); "
                    "check its credentials and the user's permissions",
                    status=raw.status,
                )
            if status in RETRY_STATUSES and self._may_retry(
                request, retries_used, policy, deadline
            ):
                if raw.status in UNCERTAIN_STATUSES:
                    uncertain = True
                retries_used += 1
                retry_after = parse_retry_after(raw.headers.get("retry-after"))
                reason = f"HTTP {raw.status}"
                await self._backoff(deployment, request, attempt, reason, policy, retry_after)
                continue
            if raw.truncated:
                raise ApiError(
                    raw.status,
                    f"the answer is larger than {MAX_BODY_BYTES // 2**20} MiB; "
                    "airfleet stopped reading it",
                    body=raw.text,
                )
            return response

    def _may_retry(
        self, request: Request, retries_used: int, policy: RetryPolicy, deadline: float
    ) -> bool:
        return request.idempotent and retries_used < policy.retries and self._clock() < deadline

    async def _backoff(
        self,
        deployment: Deployment,
        request: Request,
        attempt: int,
        reason: str,
        policy: RetryPolicy,
        retry_after: float | None,
    ) -> None:
        delay = policy.delay(attempt, self._rng, retry_after=retry_after)
        self._emit_retry(deployment, request, attempt, reason, delay)
        if self._sleep_between_retries:
            await anyio.sleep(delay)

    def _emit_retry(
        self, deployment: Deployment, request: Request, attempt: int, reason: str, delay: float
    ) -> None:
        self._emit(
            AttemptFailed(deployment.name, request.method, request.path, attempt, reason, delay)
        )


class _Sink:
    """Where a worker hands its call's one result: to the collector, at once.

    No queue and no collector task: the run is one event loop, so a result is
    collected (and ``on_result`` called) in the step that made it, which costs
    less than waking another task, and no result can be left queued.
    """

    __slots__ = ("_collector", "_on_result", "_seen")

    def __init__(
        self, collector: Collector, on_result: Callable[[Result], None] | None, calls: int
    ) -> None:
        self._collector = collector
        self._on_result = on_result
        # One flag per planned call: no hashing, and no 10,000 int objects kept.
        self._seen = bytearray(calls)

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


@dataclass(slots=True)
class _Route:
    """A deployment's auth scope, retry policy and limit slot, for one dialect."""

    scope: AuthScope
    policy: RetryPolicy
    slot: Slot  # for a request that carries the credential


class _Progress(_Tally):
    """Where one call stands (and its counters): its conversation survives a
    move to a parked task. A plain class: one is made per call."""

    __slots__ = ("call", "conversation", "dialect", "index", "started", "step")

    def __init__(self, index: int, call: Call, started: float) -> None:
        # _Tally's fields, set here rather than through super(): one is made per call.
        self.requests = 0
        self.max_attempts = 0
        self.last_status = None
        self.index = index
        self.call = call
        self.started = started
        self.dialect: Dialect | None = None
        self.conversation: Conversation | None = None
        self.step: Step | None = None


def _with_counts(result: Result, tally: _Tally, elapsed_s: float) -> Result:
    return Result(
        deployment=result.deployment,
        operation=result.operation,
        target=result.target,
        outcome=result.outcome,
        status=tally.last_status,
        attempts=tally.max_attempts,
        latency_ms=elapsed_s * 1000.0,
        error=result.error,
        data=result.data,
        requests=tally.requests,
    )
