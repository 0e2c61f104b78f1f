"""Pacing CPython's cyclic garbage collector while runs are in flight.

With 200 requests in flight, the process holds some 12,000 young container
objects at any moment, about 60 per request (aiohttp's coroutines, futures,
parsers and headers, the engine's conversations). CPython collects its youngest
generation every 700 net new containers, so it walks most in-flight objects
of every request at least once, and the older generations (the fleet, the
results so far) every tenth and hundredth time. Measured at 0 ms latency,
that is 16-20 us of every request's 140-160 us.

Raising the first threshold above what the requests in flight hold lets
most of their objects die (by reference counting, as nearly all of them do)
before a collection ever sees them. Only cyclic garbage waits longer, and a
run makes little of it. The thresholds are process-wide, so the change is
scoped: set when the first run starts, restored when the last one ends,
left alone if something else changed them meanwhile or if automatic
collection is already rarer (or off).
"""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Iterator

__all__ = ["DEFAULT_THRESHOLD", "first_threshold_at_least"]

# Above what the default 200 requests in flight hold (about 60 containers each).
DEFAULT_THRESHOLD = 20_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, int, int] | None = None
_ours = 0


@contextlib.contextmanager
def first_threshold_at_least(threshold: int | None) -> Iterator[None]:
    """Within the block, collect the youngest generation at most every ``threshold``.

    Nests and overlaps (several engines, several threads): the first block in
    sets it, the last one out restores what was there. ``None`` does nothing.
    """
    if threshold is None:
        yield
        return
    _enter(threshold)
    try:
        yield
    finally:
        _leave()


def _enter(threshold: int) -> None:
    global _depth, _saved, _ours
    with _lock:
        if _depth == 0:
            current = gc.get_threshold()
            first, *older = current
            # 0 means automatic collection is off: nothing to pace.
            if first != 0 and first < threshold:
                _saved, _ours = current, threshold
                gc.set_threshold(threshold, *older)
        _depth += 1


def _leave() -> None:
    global _depth, _saved
    with _lock:
        _depth -= 1
        if _depth == 0 and _saved is not None:
            # Someone who set the thresholds during the run keeps their setting.
            if gc.get_threshold()[0] == _ours:
                gc.set_threshold(*_saved)
            _saved = None
