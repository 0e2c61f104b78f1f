"""Trigger a DAG on many deployments, once each, optionally waiting for the runs.

Every trigger carries its own ``dag_run_id``: one per invocation unless given,
the same on every deployment and every retry. So a resent POST can never make
a second run: the server answers 409, and a GET of our run id tells whether
the run is ours (ok) or another run holds the same logical date (failed).

Every trigger also carries an explicit logical date: the one given, else one
UTC instant taken when the invocation is planned, the same on every
deployment and both Airflow versions (Airflow 3 given null makes a run
without a logical date, where ``{{ ds }}`` is undefined; Airflow 2 uses its
own "now"). A run found under our run id is ours only if it holds what we
asked for: the same conf, the same note when one is given, and the same
logical date when one is given (the default instant differs on every
invocation, so a re-run does not compare it). Otherwise the call fails,
naming what differs.

A queued run of a paused DAG never starts, and the trigger's answer does not
say the DAG is paused: one GET of the DAG does (``data.dag_paused``), and
``--wait`` then fails at once instead of waiting out its timeout.

When the POST's answer was lost (no answer, a reset, a 502/503/504) and the
retries ran out, nobody knows whether the run was made. That result is
``failed`` with ``data.effect == "unknown"`` and says how to settle it:
re-run with the same ``--run-id`` (a 409 then proves the run exists). Every
other failed trigger made no run, except ``--wait`` failures and runs found
with different values, whose ``data`` holds the run that exists.
"""

from __future__ import annotations

import enum
import json
import re
import secrets
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from airfleet.dialects.base import DagRunInfo, Dialect
from airfleet.dialects.dates import format_utc, parse_instant, utc_text
from airfleet.errors import AirfleetError, ApiError, UsageError
from airfleet.inventory import Deployment
from airfleet.operations._common import ask, failed, read
from airfleet.plan import Call, Plan
from airfleet.protocol import (
    UNCERTAIN_STATUSES,
    Answer,
    CallInterrupted,
    Conversation,
    Pause,
    Request,
    Step,
    Verdict,
)
from airfleet.results import Outcome

__all__ = [
    "NO_LOGICAL_DATE",
    "RUN_ID_RULE",
    "NoLogicalDate",
    "TriggerSpec",
    "check_run_id",
    "make_run_id",
    "plan_trigger",
]

FIRST_POLL_S = 0.5
# Answers that may mean "this run id is taken": 409, and 500 because real
# Airflow 2.11 answers two concurrent POSTs of one run id with one 200 and one
# 500 (an IntegrityError: its duplicate check and insert are not atomic).
_TAKEN = frozenset({409, 500})
# Both versions' default `[scheduler] allowed_run_id_pattern`, and their
# run_id column's length. Outside it Airflow 3 answers 400 and Airflow 2 an
# HTML 500, which reads like a server fault.
_RUN_ID = re.compile(r"[A-Za-z0-9_.~:+-]+")
_RUN_ID_MAX = 250
RUN_ID_RULE = "letters, digits and . _ ~ : + - only"


class NoLogicalDate(enum.Enum):
    """The type of :data:`NO_LOGICAL_DATE`."""

    NO_LOGICAL_DATE = "none"


NO_LOGICAL_DATE: Final = NoLogicalDate.NO_LOGICAL_DATE
"""``plan_trigger(logical_date=NO_LOGICAL_DATE)``: a run without a logical date
(Airflow 3 only; ``--logical-date none``)."""


def make_run_id(now: datetime | None = None) -> str:
    """``airfleet__<UTC time>__<short random>``: one per invocation."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"airfleet__{moment.strftime('%Y-%m-%dT%H:%M:%SZ')}__{secrets.token_hex(3)}"


def check_run_id(run_id: str) -> str:
    """``run_id`` if both Airflow versions accept it by default; else ``UsageError``."""
    if not _RUN_ID.fullmatch(run_id):
        bad = sorted({c for c in run_id if not _RUN_ID.fullmatch(c)})
        what = "is empty" if not run_id else "holds " + " ".join(repr(c) for c in bad)
        raise UsageError(f"--run-id {what}: use {RUN_ID_RULE} (Airflow's default pattern)")
    if ".." in run_id:
        # Airflow 3 refuses it (path traversal) unless allow_double_dot_in_ids.
        raise UsageError("--run-id holds '..', which Airflow 3 refuses; use single dots")
    if len(run_id) > _RUN_ID_MAX:
        raise UsageError(
            f"--run-id is {len(run_id)} characters long: Airflow keeps at most {_RUN_ID_MAX}"
        )
    return run_id


@dataclass(frozen=True, slots=True)
class TriggerSpec:
    """Trigger ``dag_id`` with run id ``run_id``; with ``wait``, poll until it ends.

    ``logical_date``: the UTC instant sent, or ``None`` for a run without one
    (Airflow 3 only). ``date_is_default``: it is the invocation's instant,
    not one the user gave, so an existing run's date is not compared.
    ``check_paused``: after the POST, GET the DAG to see whether it is paused
    (off when an unpause call of this invocation already made sure it is not).
    """

    dag_id: str
    run_id: str
    conf: Mapping[str, Any] = field(default_factory=dict)
    logical_date: str | None = None
    note: str | None = None
    wait: bool = False
    timeout_s: float = 3600.0
    poll_s: float = 10.0
    date_is_default: bool = False
    check_paused: bool = True

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
                return Verdict(Outcome.FAILED, error=self._date_conflict(), status=409)
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
            differences = self._differences(run)
            if differences:
                data["conflicts"] = [name for name, _ in differences]
                return Verdict(
                    Outcome.FAILED,
                    data=data,
                    error=(
                        f"run {self.run_id} already exists with a different "
                        + ", ".join(text for _, text in differences)
                        + "; repeat the original values, or pick another --run-id"
                    ),
                    status=posted.status,
                )
        elif posted.uncertain_before or posted.status in UNCERTAIN_STATUSES:
            return self._unknown(failed(dialect, posted).error or "")
        else:
            return failed(dialect, posted)
        if self.wait:
            return (
                yield from self._wait(dialect, data, since=posted.at, seen=seen, state=run.state)
            )
        if self.check_paused and run.state == "queued":
            try:
                paused, _ = yield from self._paused(dialect)
            except CallInterrupted:
                # The run was made; only the look at its DAG was cut short.
                return Verdict(Outcome.OK, data=data, status=posted.status)
            data["dag_paused"] = paused
        return Verdict(Outcome.OK, data=data, status=posted.status)

    def _paused(self, dialect: Dialect) -> Generator[Step, Answer, tuple[bool | None, float]]:
        """Is the DAG paused (``None``: could not tell), and when the answer came.

        The run is made whatever this says, so a failure to ask is no
        failure of the call: the result says "unknown" (null).
        """
        try:
            answer = yield from ask(dialect.get_dag(self.dag_id))
        except AirfleetError:
            return None, 0.0
        if not answer.ok:
            return None, answer.at
        try:
            return dialect.read_dag_paused(answer.body), answer.at
        except ValueError:
            return None, answer.at

    def _differences(self, run: DagRunInfo) -> list[tuple[str, str]]:
        """What the run found under our id holds that this trigger did not ask for."""
        found: list[tuple[str, str]] = []
        if run.conf is not None and _canonical(run.conf) != _canonical(self.conf):
            keys = sorted(
                str(k)
                for k in {*run.conf, *self.conf}
                if k not in run.conf
                or k not in self.conf
                or _canonical(run.conf[k]) != _canonical(self.conf[k])
            )
            shown = ", ".join(_short(k, 30) for k in keys[:5]) + (", ..." if len(keys) > 5 else "")
            found.append(("conf", f"conf (keys differing: {shown})"))
        # A note people may edit afterwards in the UI: compared only when given.
        if self.note is not None and run.note != self.note:
            found.append(("note", f"note ({_quoted(run.note)} there, {_quoted(self.note)} asked)"))
        if not self.date_is_default and not _same_instant(run.logical_date, self.logical_date):
            found.append(
                (
                    "logical_date",
                    f"logical date ({run.logical_date or 'none'} there, "
                    f"{self.logical_date or 'none'} asked)",
                )
            )
        return found

    def _date_conflict(self) -> str:
        """The error of a 409 whose run id is free: another run holds our logical date."""
        date = f" {self.logical_date}" if self.logical_date else ""
        advice = "retry" if self.date_is_default else "pass another --logical-date"
        return (
            f"HTTP 409: conflicting logical date: another run of {self.dag_id} already has "
            f"logical date{date} and run {self.run_id} does not exist; {advice}"
        )

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
        if self.check_paused and state == "queued":
            data["state_at_interruption"] = state
            paused, at = yield from self._paused(dialect)
            data["dag_paused"] = paused
            now = max(now, at)
            if paused:
                # It cannot start: waiting would only run out the timeout.
                data.pop("state_at_interruption", None)
                data.update(final_state=state, duration_s=round(now - since, 3))
                return Verdict(
                    Outcome.FAILED,
                    data=data,
                    error=(
                        f"DAG {self.dag_id} is paused: run {self.run_id} stays queued until it "
                        f"is unpaused; unpause it (airfleet unpause {self.dag_id}, or trigger "
                        f"with --unpause), then wait with --run-id {self.run_id} --wait"
                    ),
                )
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
    logical_date: str | datetime | NoLogicalDate | None = None,
    note: str | None = None,
    wait: bool = False,
    timeout_s: float = 3600.0,
    poll_s: float = 10.0,
    check_paused: bool = True,
    now: datetime | None = None,
) -> Plan:
    """One call per deployment and DAG, all with the same run id and logical date.

    ``logical_date``: an ISO-8601 date-time (one without a zone is UTC) or a
    datetime, sent in UTC; :data:`NO_LOGICAL_DATE` for a run without one
    (Airflow 3 only); by default ``now`` (the time of this call), the same
    instant for every call. ``now`` also stamps the generated run id.
    Bad input (a run id Airflow refuses, an unreadable date, a DAG given
    twice) raises ``UsageError`` before anything is sent.
    """
    moment = now or datetime.now(UTC)
    run_id = make_run_id(moment) if run_id is None else check_run_id(run_id)
    sent, is_default = _logical_date(logical_date, moment)
    if sent is None:
        declared_v1 = [d.name for d in deployments if d.api == "v1"]
        if declared_v1:
            names = ", ".join(declared_v1[:3]) + (", ..." if len(declared_v1) > 3 else "")
            raise UsageError(
                f"--logical-date none: Airflow 2 cannot make a run without a logical date, "
                f"and {len(declared_v1)} selected deployment(s) declare api: v1 ({names}); "
                "select only Airflow 3 deployments, or leave --logical-date out"
            )
    _check_dag_ids(dag_ids)
    if note == "":
        raise UsageError("--note is empty (Airflow keeps no empty note); leave it out")
    # A spec holds nothing of a deployment's: one per DAG serves them all.
    specs = {
        dag_id: TriggerSpec(
            dag_id,
            run_id,
            dict(conf or {}),
            sent,
            note,
            wait=wait,
            timeout_s=timeout_s,
            poll_s=poll_s,
            date_is_default=is_default,
            check_paused=check_paused,
        )
        for dag_id in dag_ids
    }
    calls = tuple(
        Call(deployment, "trigger", dag_id, specs[dag_id])
        for deployment in deployments
        for dag_id in dag_ids
    )
    return Plan("trigger", calls, mutating=True)


def _logical_date(
    value: str | datetime | NoLogicalDate | None, now: datetime
) -> tuple[str | None, bool]:
    """What is sent as the logical date, and whether it is the default instant."""
    if value is None:
        return format_utc(now), True
    if value is NO_LOGICAL_DATE:
        return None, False
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return format_utc(moment), False
    assert isinstance(value, str)  # noqa: S101 - the union is closed
    return utc_logical_date(value), False


def utc_logical_date(value: str) -> str:
    """An ISO-8601 date-time (without a zone: UTC) as UTC ``Z``; UsageError if it is none."""
    try:
        parse_instant(value)
    except ValueError:
        raise UsageError(
            f"--logical-date {value!r} is not an ISO-8601 date-time; use e.g. "
            "2026-11-24T00:00:00Z, or none for a run without one (Airflow 3)"
        ) from None
    return utc_text(value)


def _check_dag_ids(dag_ids: Sequence[str]) -> None:
    seen: set[str] = set()
    for dag_id in dag_ids:
        if not dag_id:
            raise UsageError("a DAG id is empty")
        if dag_id in seen:
            # One run id for both: the second would only find the first's run.
            raise UsageError(f"DAG {dag_id!r} is given twice; give each once")
        seen.add(dag_id)


def _canonical(value: Any) -> str:
    """JSON text that is equal exactly when the JSON values are (True is not 1)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _same_instant(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return a is b
    try:
        return parse_instant(a) == parse_instant(b)
    except ValueError:
        return a == b


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _quoted(note: str | None) -> str:
    return "none" if note is None else repr(_short(note, 40))
