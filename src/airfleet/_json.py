"""Reading JSON answers: orjson for speed, with json's exact reading as the fallback.

orjson parses an answer in a fifth of json's time (benchmarks/README.md), but
it reads an integer past 64 bits as a float, silently, and refuses what json
accepts (NaN, non-UTF-8). An answer holding a run of 19 or more digits
anywhere (even in a string), or one orjson refuses, is read by json, so the
result is always exactly json's.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

__all__ = ["loads"]

# The digit run is found by mapping digits to "9" and the rest to " ", then a
# substring search: cheaper than a regex over the whole body.
_DIGITS_ONLY = bytes(0x39 if 0x30 <= b <= 0x39 else 0x20 for b in range(256))
_LONG_RUN = b"9" * 19


def loads(body: bytes) -> Any:
    """``body`` as JSON, or None when it is not JSON."""
    if _LONG_RUN not in body.translate(_DIGITS_ONLY):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:
        return json.loads(body)
    except ValueError:
        return None
