"""Redaction: every registered secret is masked wherever it appears in a text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from airfleet import redaction

secret = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=6, max_size=40)
filler = st.text(alphabet=" :/=\"'{}abcXYZ", max_size=20)


@given(secrets=st.lists(secret, min_size=1, max_size=8), parts=st.lists(filler, min_size=9))
def test_no_registered_secret_survives_a_scrub(secrets: list[str], parts: list[str]) -> None:
    """Secrets anywhere in a text, next to each other or repeated: none is left."""
    for value in secrets:
        redaction.register(value)
    text = "".join(p + s for p, s in zip(parts, [*secrets, *secrets], strict=False))
    scrubbed = redaction.scrub(text)
    for value in secrets:
        assert value not in scrubbed


def test_a_secret_holding_another_is_masked_whole() -> None:
    """The longer value wins, so no tail of it is left beside the mask."""
    redaction.register("inner-secret")
    redaction.register("outer-inner-secret-tail")
    assert redaction.scrub("x outer-inner-secret-tail y") == "x *** y"
    redaction.register("inner-secret")  # registering again changes nothing
    assert redaction.scrub("inner-secret") == "***"


def test_short_values_and_empty_text_are_left_alone() -> None:
    """Values under six characters would mask ordinary words; they are not kept."""
    redaction.register("admin")
    redaction.register(None)
    assert redaction.scrub("admin logged in") == "admin logged in"
    assert redaction.scrub("") == ""
