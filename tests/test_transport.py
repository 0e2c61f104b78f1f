"""The transport's answer decoding: orjson's fast path reads exactly what json would."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from airfleet.transport import HttpResponse

HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)  # past orjson's 64 bits too
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def answer(body: bytes) -> HttpResponse:
    return HttpResponse(200, HEADERS, body)


@given(json_values, st.booleans())
def test_any_json_answer_reads_as_json_reads_it(value: Any, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert answer(body).json() == json.loads(body)


def test_what_orjson_refuses_still_reads_as_json_reads_it() -> None:
    # NaN and Infinity literals, integers past 64 bits (orjson makes them floats),
    # a UTF-8 BOM, UTF-16.
    assert math.isnan(answer(b'{"x": NaN}').json()["x"])
    assert answer(b"[Infinity]").json() == [math.inf]
    assert answer(b"123456789012345678901234567890").json() == 123456789012345678901234567890
    assert answer(b'\xef\xbb\xbf{"a": 1}').json() == {"a": 1}
    assert answer('{"a": "\u00e9"}'.encode("utf-16")).json() == {"a": "\u00e9"}


def test_what_is_not_json_reads_as_none() -> None:
    for body in (b"", b"<html></html>", b'{"a": ', b"\xff\xfe\xfd"):
        assert answer(body).json() is None
    assert HttpResponse(200, HEADERS, b"{}", truncated=True).json() is None
