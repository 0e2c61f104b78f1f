"""Trigger a DAG on many deployments, once each, optionally waiting for the runs.

Every trigger carries its own ``dag_run_id``: one per invocation unless given,
the same on every deployment and every retry. So a resent POST can never make
a second run: the server answers 409, and a GET of our run id tells whether
the run is ours (ok) or another run holds the same logical date (failed).

When the POST's answer was lost (no answer, a reset, a 502/503/504) and the
retries ran out, nobody knows whether the run was made. That result is
``failed`` with ``data.effect == "unknown"`` and says how to settle it:
re-run with the same ``--run-id`` (a 409 then proves the run exists). Every
other failed trigger made no run, except ``--wait`` failures, whose ``data``
holds the run that was made.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from airfleet.dialects.base import Dialect
from airfleet.errors import AirfleetError, ApiError
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, failed, read
from airfleet.plan import Call, Plan
from airfleet.protocol import (
    UNCERTAIN_STATUSES,
    CallInterrupted,
    Conversation,
    Pause,
    Request,
    Verdict,
)
from airfleet.results import Outcome

__all__ = ["TriggerSpec", "make_run_id", "plan_trigger"]

FIRST_POLL_S = 0.5
# Answers that may mean "this run id is taken": 409, and 500 because real
# Airflow 2.11 answers two concurrent POSTs of one run id with one 200 and one
# 500 (an IntegrityError: its duplicate check and insert are not atomic).
_TAKEN = frozenset({409, 500})


def make_run_id(now: datetime | None = None) -> str:
    """``airfleet__<UTC time>__<short random>``: one per invocation."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"airfleet__{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}__{secrets.token_hex(3)}"


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """Trigger ``dag_id`` with run id ``run_id``; with ``wait``, poll until it ends."""

    dag_id: str
    run_id: str
    conf: Mapping[str, Any] = field(default_factory=dict)
    logical_date: str | None = None
    note: str | None = None
    wait: bool = False
    timeout_s: float = 3600.0
    poll_s: float = 10.0

    def request(self, dialect: Dialect) -> Request:
        return dialect.trigger(
            self.dag_id,
            run_id=self.run_id,
            conf=self.conf,
            logical_date=self.logical_date,
            note=self.note,
        )

    def preview(self, dialect: Dialect) -> Sequence[Request]:
        return (self.request(dialect),)

    def converse(self, dialect: Dialect) -> Conversation:
        try:
            posted = yield from ask(self.request(dialect))
        except AirfleetError as exc:
            if not exc.may_have_acted:
                raise  # refused before it could act: a plain failure
            # No answer, or one too large to read: the server may have acted.
            return self._unknown(str(exc))
        except CallInterrupted:
            return self._interrupted_unanswered()
        if posted.ok:
            try:
                run = read(dialect.read_run, posted)
            except ApiError as exc:
                # Accepted, but the body is not a DAG run (a proxy's page?).
                return self._unknown(str(exc))
            data: dict[str, Any] = run.as_data()
            seen = posted.at
        elif posted.status in _TAKEN:
            # Ours, from an earlier attempt or an earlier invocation, or another
            # run holding the same logical date? Only a GET of our id can tell.
            try:
                check = yield from ask(dialect.get_run(self.dag_id, self.run_id))
            except AirfleetError as exc:
                return self._unknown(f"HTTP {posted.status}, then checking the run: {exc}")
            except CallInterrupted:
                return self._interrupted_unanswered()
            if check.status == 404 and posted.status != 409:
                return failed(dialect, posted)
            if check.status == 404:
                return Verdict(
                    Outcome.FAILED,
                    error=(
                        f"HTTP 409: conflicting logical date: another run of {self.dag_id} "
                        f"already has it and run {self.run_id} does not exist; "
                        "retry later or pass --logical-date"
                    ),
                    status=409,
                )
            if not check.ok:
                return self._unknown(
                    failed(dialect, check, what="HTTP 409, then checking the run").error or ""
                )
            run = read(dialect.read_run, check)
            seen = check.at
            data = run.as_data()
            # A 409 after an attempt that may have landed is our own run, made
            # by this invocation; otherwise the run was there before we came.
            data["already_existed"] = not posted.uncertain_before
        elif posted.uncertain_before or posted.status in UNCERTAIN_STATUSES:
            return self._unknown(failed(dialect, posted).error or "")
        else:
            return failed(dialect, posted)
        if not self.wait:
            return Verdict(Outcome.OK, data=data, status=posted.status)
        return (yield from self._wait(dialect, data, since=posted.at, seen=seen, state=run.state))

    def _unknown(self, reason: str) -> Verdict:
        """A POST whose fate is unknown: failed, ``data.effect`` says so."""
        return Verdict(
            Outcome.FAILED,
            data={"dag_run_id": self.run_id, "effect": "unknown"},
            error=(
                f"{reason}; the run may exist: re-run with --run-id {self.run_id} to settle it "
                "(it is never made twice)"
            ),
        )

    def _interrupted_unanswered(self) -> Verdict:
        """Stopped before the server said whether the run was made: skipped,
        effect unknown, with the run id that settles it."""
        return Verdict(
            Outcome.SKIPPED,
            data={"dag_run_id": self.run_id, "effect": "unknown", "interrupted": True},
            error=(
                "interrupted before the server answered; the run may exist: re-run with "
                f"--run-id {self.run_id} to settle it (it is never made twice)"
            ),
        )

    def _wait(
        self, dialect: Dialect, data: dict[str, Any], *, since: float, seen: float, state: str
    ) -> Conversation:
        """Poll until the run ends; ``state`` is what was seen at ``seen``."""
        try:
            return (yield from self._poll(dialect, data, since=since, seen=seen, state=state))
        except CallInterrupted:
            # Stopped while waiting: the run was made; say which, and how it
            # stood, so the user can settle it with the same run id.
            data.update(final_state=None, interrupted=True)
            return Verdict(
                Outcome.SKIPPED,
                data=data,
                error=(
                    f"interrupted while waiting: run {self.run_id} was made and was "
                    f"{data.get('state_at_interruption') or data.get('state')}; "
                    f"wait again with --run-id {self.run_id} --wait"
                ),
                status=200,
            )

    def _poll(
        self, dialect: Dialect, data: dict[str, Any], *, since: float, seen: float, state: str
    ) -> Conversation:
        deadline = since + self.timeout_s
        # A run found already ended (a 409 on a retried POST, checked later)
        # took until it was seen, not no time at all.
        now = seen
        poll = FIRST_POLL_S
        while state not in ("success", "failed"):
            data["state_at_interruption"] = state
            if now >= deadline:
                data.update(final_state=state, duration_s=round(now - since, 3))
                return Verdict(
                    Outcome.FAILED,
                    data=data,
                    error=f"gave up waiting after {self.timeout_s:g} s; the run is {state}",
                )
            yield Pause(min(poll, max(0.0, deadline - now)))
            poll = min(poll * 2, self.poll_s)
            try:
                answer = yield from ask(dialect.get_run(self.dag_id, self.run_id))
            except AirfleetError as exc:
                # The run exists: keep its data in the result.
                data.update(final_state=state)
                return Verdict(Outcome.FAILED, data=data, error=f"polling the run: {exc}")
            now = answer.at
            if not answer.ok:
                return failed(dialect, answer, what="polling the run")
            state = read(dialect.read_run, answer).state
        data.pop("state_at_interruption", None)
        data.update(final_state=state, duration_s=round(now - since, 3))
        if state == "failed":
            return Verdict(Outcome.FAILED, data=data, error="the DAG run failed", status=200)
        return Verdict(Outcome.OK, data=data, status=200)


def plan_trigger(
    deployments: Sequence[Deployment],
    dag_ids: Sequence[str],
    *,
    run_id: str | None = None,
    conf: Mapping[str, Any] | None = None,
    logical_date: str | None = None,
    note: str | None = None,
    wait: bool = False,
    timeout_s: float = 3600.0,
    poll_s: float = 10.0,
) -> Plan:
    """One call per deployment and DAG, all with the same run id."""
    run_id = run_id or make_run_id()
    calls = tuple(
        Call(
            deployment,
            "trigger",
            dag_id,
            TriggerSpec(
                dag_id,
                run_id,
                dict(conf or {}),
                logical_date,
                note,
                wait=wait,
                timeout_s=timeout_s,
                poll_s=poll_s,
            ),
        )
        for deployment in deployments
        for dag_id in dag_ids
    )
    return Plan("trigger", calls, mutating=True)
