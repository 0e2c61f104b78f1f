"""Schedule windows: hourly, daily, or an ISO-8601 duration; run ids derive from them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = ["parse_window", "window_start"]

_DURATION = re.compile(
    r"^P(?:(?P<days>\d+)D)?(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)
_NAMED = {"hourly": timedelta(hours=1), "daily": timedelta(days=1)}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_window(text: str) -> timedelta:
    """``hourly``, ``daily`` or an ISO-8601 duration such as ``PT6H`` or ``P1D``."""
    if text in _NAMED:
        return _NAMED[text]
    match = _DURATION.match(text)
    if not match or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"window {text!r} is not hourly, daily or an ISO-8601 duration like PT6H")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    span = timedelta(**parts)
    if span < timedelta(minutes=1):
        raise ValueError(f"window {text!r} is shorter than a minute")
    return span


def window_start(now: datetime, span: timedelta) -> datetime:
    """The start of the window holding ``now``, windows aligned on the Unix epoch (UTC)."""
    elapsed = (now.astimezone(UTC) - _EPOCH) // span
    return _EPOCH + elapsed * span
