"""Schedule windows: hourly, daily, or an ISO-8601 duration; run ids derive from them.

Windows are aligned in UTC on Monday 1970-01-05 00:00: daily windows start at
midnight UTC, hourly ones on the hour, ``PT6H`` at 00, 06, 12 and 18, ``P7D``
on Mondays. Every invocation inside one window computes the same start, so a
re-run finds the runs the first one made.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_window", "window_label", "window_start"]

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_NAMED = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
# A Monday, so that weekly windows start on Mondays; whole days and hours are
# unaffected by the choice.
_ANCHOR = datetime(1970, 1, 5, tzinfo=UTC)
_DAY = timedelta(days=1)


def parse_window(text: str) -> timedelta:
    """``hourly``, ``daily`` or an ISO-8601 duration such as ``PT6H``, ``P1D`` or ``P1W``."""
    if text in _NAMED:
        return _NAMED[text]
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        hint = " (months and years vary in length; use days)" if re.search(r"\d[MY]", text) else ""
        raise ValueError(
            f"window {text!r} is not hourly, daily or an ISO-8601 duration like PT6H or P1D{hint}"
        )
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    span = timedelta(**parts)
    if span < timedelta(minutes=1):
        raise ValueError(f"window {text!r} is shorter than a minute")
    return span


def window_start(now: datetime, span: timedelta) -> datetime:
    """The start of the window holding ``now`` (UTC)."""
    elapsed = (now.astimezone(UTC) - _ANCHOR) // span
    return _ANCHOR + elapsed * span


def window_label(start: datetime, span: timedelta) -> str:
    """How a window appears in run ids: ``2026-11-24`` for whole days, else to the second."""
    start = start.astimezone(UTC)
    if span % _DAY == timedelta(0):
        return start.strftime("%Y-%m-%d")
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")
