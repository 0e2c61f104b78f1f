"""Process-wide memory of secret values, so any text can be scrubbed of them.

Secrets are kept out of messages by construction (``Secret`` hides itself,
requests hide their headers); this is the second line of defence: the log
processor and the report writers pass their text through :func:`scrub`, and
the auth module registers every token it obtains.
"""

from __future__ import annotations

import string
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

# Past this many secrets sharing a piece, a hit masks the run of token
# characters around it (see _mask_pieces).
_MANY_HOLDERS = 8
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-._~+/=")

_lock = threading.Lock()
# Values shorter than a piece, searched for whole, longest first. A tuple,
# replaced whole on each registration: scrub() reads one snapshot.
_short: tuple[str, ...] = ()
# Every FRAGMENT-long piece of a configured secret, and the first and last
# piece of a fetched token, to the (secret, offset) pairs holding it. Tokens
# are many (one per Airflow 3 server) and long, so only their ends are
# indexed: the part a cut leaves behind. The first piece also finds a whole
# value, so a scrub is one pass over the text however many secrets are known.
_pieces: dict[str, list[tuple[str, int]]] = {}
_known: set[str] = set()


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
    global _short
    if not value or len(value) < _MIN_LEN:
        return
    with _lock:
        if value in _known:
            return
        _known.add(value)
        last = len(value) - FRAGMENT
        if last < 0:
            _short = tuple(sorted((*_short, value), key=len, reverse=True))
            return
        for start in range(last + 1) if parts == "all" else (0, last):
            # Appended in place: every JWT starts with the same header piece,
            # so a copy per registration would grow with the tokens known.
            _pieces.setdefault(value[start : start + FRAGMENT], []).append((value, start))


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``, and every part
    of one that :func:`register` indexed.

    One dictionary lookup per character of ``text``; a longer search only
    where a piece of a secret is found.
    """
    if not text:
        return text
    # Long values first, so a short one inside a long one cannot split it.
    if len(text) >= FRAGMENT and _pieces:
        text = _mask_pieces(text)
    for value in _short:
        if value in text:
            text = text.replace(value, MASK)
    return text


def _mask_pieces(text: str) -> str:
    pieces = _pieces
    out: list[str] = []
    kept = 0  # text[kept:i] is copied as it is
    i = 0
    last = len(text) - FRAGMENT
    while i <= last:
        holders = pieces.get(text[i : i + FRAGMENT])
        if holders is None:
            i += 1
            continue
        start, stop = i, i + FRAGMENT
        if len(holders) > _MANY_HOLDERS:
            # A piece many secrets share (every JWT starts with the same
            # header): trying each would cost milliseconds, so the whole
            # run of token characters around it goes instead.
            while start > kept and text[start - 1] in _TOKEN_CHARS:
                start -= 1
            while stop < len(text) and text[stop] in _TOKEN_CHARS:
                stop += 1
            holders = []
        for secret, offset in holders:
            whole = i - offset
            if whole >= kept and text.startswith(secret, whole):
                start, stop = min(start, whole), max(stop, whole + len(secret))
                continue
            # A part: grow it both ways while it is still part of the secret.
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
