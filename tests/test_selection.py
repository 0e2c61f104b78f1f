"""Selection: tag:/name: globs, comma = or, repeated = and."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airfleet.errors import UsageError
from airfleet.inventory import Deployment
from airfleet.selection import parse_selectors, select


def dep(name: str, *tags: str) -> Deployment:
    return Deployment(name, f"https://{name}.example.com", "t", frozenset(tags))


FLEET = (
    dep("prod-eu", "prod", "eu"),
    dep("prod-us", "prod", "us"),
    dep("dev-eu", "dev", "eu"),
    dep("legacy", "prod", "eu", "legacy"),
)


def names(*groups: str) -> list[str]:
    return [d.name for d in select(FLEET, groups)]


def test_no_selector_selects_all_in_file_order() -> None:
    """Without -s every deployment is selected, in file order."""
    assert names() == ["prod-eu", "prod-us", "dev-eu", "legacy"]


def test_tag_name_and_bare_words() -> None:
    """tag:X matches a tag; name:GLOB and a bare word match names."""
    assert names("tag:prod") == ["prod-eu", "prod-us", "legacy"]
    assert names("name:prod-*") == ["prod-eu", "prod-us"]
    assert names("dev-*") == ["dev-eu"]
    assert names("tag:leg*") == ["legacy"]


def test_comma_is_or_and_repetition_is_and() -> None:
    """-s tag:prod -s tag:us,name:dev-* = prod and (us or dev-*)."""
    assert names("tag:prod", "tag:us,name:legacy") == ["prod-us", "legacy"]
    assert names("tag:eu,tag:us", "tag:dev") == ["dev-eu"]


@pytest.mark.parametrize("bad", ["color:red", "tag:", "a,,b", ""])
def test_malformed_selectors_say_the_valid_forms(bad: str) -> None:
    """Unknown kinds and empty terms are usage errors that show the valid forms."""
    with pytest.raises(UsageError, match="tag:NAME"):
        parse_selectors([bad])


def test_selection_matching_nothing_is_an_error_with_hints() -> None:
    """A selection that matches nothing says so and lists known tags."""
    with pytest.raises(UsageError, match="matches no deployment; known tags: dev, eu"):
        select(FLEET, ["tag:staging"])


_words = st.sampled_from(["prod", "dev", "eu", "us", "legacy", "p*", "*-eu", "x"])
_terms = st.builds(lambda kind, word: f"{kind}:{word}", st.sampled_from(["tag", "name"]), _words)


@given(a=_terms, b=_terms, c=_terms)
def test_or_and_semantics_hold_for_all_terms(a: str, b: str, c: str) -> None:
    """For any terms: d matches 'a,b' iff a or b; groups [g1, g2] iff both."""
    for d in FLEET:
        one = parse_selectors([a]).matches(d)
        two = parse_selectors([b]).matches(d)
        three = parse_selectors([c]).matches(d)
        assert parse_selectors([f"{a},{b}"]).matches(d) == (one or two)
        assert parse_selectors([f"{a},{b}", c]).matches(d) == ((one or two) and three)
