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


@given(
    value=secret.filter(lambda v: len(v) >= redaction.FRAGMENT),
    data=st.data(),
    before=filler,
    after=filler,
)
def test_no_part_of_a_configured_secret_survives(
    value: str, data: st.DataObject, before: str, after: str
) -> None:
    """A server's excerpt that cuts a configured secret keeps no part of it
    ``FRAGMENT`` characters long: not a prefix, a suffix, nor a middle."""
    redaction.register(value)
    start = data.draw(st.integers(0, len(value) - redaction.FRAGMENT))
    stop = data.draw(st.integers(start + redaction.FRAGMENT, len(value)))
    scrubbed = redaction.scrub(before + value[start:stop] + after)
    assert value[start:stop] not in scrubbed
    assert "***" in scrubbed


def test_a_fetched_token_cut_at_either_end_is_masked() -> None:
    """Fetched tokens are indexed by their ends: a reason cut after a token's
    first characters, or starting inside it, shows none of it."""
    token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJmbGVldCJ9.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg"
    redaction.register(token, parts="ends")
    assert redaction.scrub(f"refused Bearer {token[:30]}") == "refused Bearer ***"
    assert redaction.scrub(f"...{token[-25:]} is not valid") == "...*** is not valid"
    assert redaction.scrub(f"x {token} y") == "x *** y"


def test_ordinary_text_beside_a_secret_part_is_kept() -> None:
    """Only the part is masked: the words around it survive."""
    redaction.register("s3cr3t-Value-0042")
    # Words of 8 letters or more would be masked if another test's secret held
    # them (the registry is process-wide): short words only.
    assert redaction.scrub("got s3cr3t-Val (cut) at 10:00") == "got *** (cut) at 10:00"
