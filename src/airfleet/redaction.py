"""Process-wide memory of secret values, so any text can be scrubbed of them.

Secrets are kept out of messages by construction (``Secret`` hides itself,
requests hide their headers); this is the second line of defence: the log
processor and the report writers pass their text through :func:`scrub`, and
the auth module registers every token it obtains.
"""

from __future__ import annotations

import threading

__all__ = ["MASK", "register", "scrub"]

MASK = "***"
# Shorter values would mask ordinary words ("admin" is a common password in
# test fleets, and also a common word in messages); they are still never
# written by airfleet itself.
_MIN_LEN = 6

_lock = threading.Lock()
# Longest first, so a token containing another secret is masked whole. A
# tuple, replaced whole on each registration: scrub() reads one snapshot.
_ordered: tuple[str, ...] = ()


def register(value: str | None) -> None:
    """Remember a secret value; later :func:`scrub` calls mask it.

    It runs on the event loop for every token fetched, so it compiles
    nothing: a single regex of every value cost a third of a second per
    registration once a long run had fetched 3,000 tokens.
    """
    global _ordered
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value not in _ordered:
            _ordered = tuple(sorted((*_ordered, value), key=len, reverse=True))


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``.

    A substring search per value (a few microseconds per thousand values on
    a log line), then a replacement only where one is found.
    """
    if not text:
        return text
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    return text
