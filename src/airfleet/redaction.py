"""Process-wide memory of secret values, so any text can be scrubbed of them.

Secrets are kept out of messages by construction (``Secret`` hides itself,
requests hide their headers); this is the second line of defence: the log
processor and the report writers pass their text through :func:`scrub`, and
the auth module registers every token it obtains.
"""

from __future__ import annotations

import threading
from typing import Literal

__all__ = ["MASK", "register", "scrub"]

MASK = "***"
# Shorter values would mask ordinary words ("admin" is a common password in
# test fleets, and also a common word in messages); they are still never
# written by airfleet itself.
_MIN_LEN = 6
# The shortest part of a secret that is masked on its own: a text cut in the
# middle of a secret (a server's excerpt, a bounded reason) keeps no part of
# it this long.
FRAGMENT = 8

_lock = threading.Lock()
# Longest first, so a token containing another secret is masked whole. A
# tuple, replaced whole on each registration: scrub() reads one snapshot.
_ordered: tuple[str, ...] = ()
# Every FRAGMENT-long piece of a configured secret, and the first and last
# piece of a fetched token, to the secrets holding it. Tokens are many (one
# per Airflow 3 server) and long, so only their ends are indexed: the part
# a cut leaves behind.
_pieces: dict[str, tuple[str, ...]] = {}


def register(value: str | None, *, parts: Literal["all", "ends"] = "all") -> None:
    """Remember a secret value; later :func:`scrub` calls mask it, whole or in part.

    ``parts``: which parts of at least ``FRAGMENT`` characters are masked on
    their own: ``all`` of them (configured secrets), or only its ``ends``
    (fetched tokens, whose number and length would make an index of every
    part large).

    It runs on the event loop for every token fetched, so it compiles
    nothing: a single regex of every value cost a third of a second per
    registration once a long run had fetched 3,000 tokens.
    """
    global _ordered
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _ordered:
            return
        _ordered = tuple(sorted((*_ordered, value), key=len, reverse=True))
        last = len(value) - FRAGMENT
        starts = range(last + 1) if parts == "all" else (0, last)
        for start in starts if last >= 0 else ():
            piece = value[start : start + FRAGMENT]
            holders = _pieces.get(piece, ())
            if value not in holders:
                _pieces[piece] = (*holders, value)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``, and every part
    of one that :func:`register` indexed.

    A substring search per value (a few microseconds per thousand values on
    a log line), then one dictionary lookup per character for the parts.
    """
    if not text:
        return text
    for value in _ordered:
        if value in text:
            text = text.replace(value, MASK)
    if len(text) < FRAGMENT or not _pieces:
        return text
    return _mask_parts(text)


def _mask_parts(text: str) -> str:
    pieces = _pieces
    out: list[str] = []
    kept = 0  # text[kept:i] is copied as it is
    i = 0
    end = len(text) - FRAGMENT
    while i <= end:
        holders = pieces.get(text[i : i + FRAGMENT])
        if holders is None:
            i += 1
            continue
        # Grow the match both ways while it is still part of a secret.
        start, stop = i, i + FRAGMENT
        for secret in holders:
            while stop < len(text) and text[start : stop + 1] in secret:
                stop += 1
            while start > kept and text[start - 1 : stop] in secret:
                start -= 1
        out.append(text[kept:start])
        out.append(MASK)
        kept = i = stop
    if not out:
        return text
    out.append(text[kept:])
    return "".join(out)
