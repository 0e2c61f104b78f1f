"""Process-wide memory of secret values, so any text can be scrubbed of them.

Secrets are kept out of messages by construction (``Secret`` hides itself,
requests hide their headers); this is the second line of defence: the log
processor and the report writers pass their text through :func:`scrub`, and
the auth module registers every token it obtains.
"""

from __future__ import annotations

import re
import threading

__all__ = ["MASK", "register", "scrub"]

MASK = "***"
# Shorter values would mask ordinary words ("admin" is a common password in
# test fleets, and also a common word in messages); they are still never
# written by airfleet itself.
_MIN_LEN = 6

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def register(value: str | None) -> None:
    """Remember a secret value; later :func:`scrub` calls mask it."""
    global _pattern
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _values:
            return
        _values.add(value)
        # Longest first, so a token containing another secret is masked whole.
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in ordered))


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(MASK, text)
