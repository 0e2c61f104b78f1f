"""Dates as reports show them: UTC, spelled ``2026-12-01T10:00:00Z``.

Airflow 2 answers ``+00:00``, Airflow 3 ``Z``, and a date given with an
offset comes back with it: one instant, three spellings. Every date a
dialect reader puts into a result goes through :func:`utc_text`, so a report
compares and sorts as text.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

__all__ = ["format_utc", "parse_instant", "utc_text"]

# The fraction of a second as the server wrote it (Python parses at most six
# digits and would re-spell ".12" as ".120000").
_FRACTION = re.compile(r"[T ]\d{2}:\d{2}:\d{2}(\.\d+)")


def parse_instant(text: str) -> datetime:
    """An ISO-8601 date-time as an aware datetime; one without a zone is UTC.

    Raises ``ValueError`` for anything else.
    """
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def format_utc(moment: datetime, *, fraction: str | None = None) -> str:
    """``moment`` in UTC with a ``Z``; sub-second digits as ``fraction`` says
    (default: microseconds when there are any)."""
    utc = moment.astimezone(UTC)
    if fraction is None:
        fraction = f".{utc.microsecond:06d}" if utc.microsecond else ""
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}{fraction}Z"


def utc_text(text: str) -> str:
    """A server's date in UTC ``Z`` form, keeping the sub-second digits it gave.

    A value that is not an ISO-8601 date-time is returned as it came: the
    report shows what the server said rather than failing the call over it.
    """
    try:
        moment = parse_instant(text)
    except ValueError:
        return text
    found = _FRACTION.search(text)
    return format_utc(moment, fraction=found.group(1) if found else "")
