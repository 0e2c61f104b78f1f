"""The fast paths of loading a fleet agree with the general ones they stand in for.

Plain YAML is read from libyaml's events, its line map made only on demand;
URLs of the usual shape are read by one regular expression; a plain tag is a
set lookup. Each is checked here against the general path it shortcuts, on
generated input: the same data, lines, values and errors, or the same refusal.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airfleet import _yaml, fleet_file, inventory
from airfleet._yaml import load_located
from airfleet.errors import ConfigError
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Deployment, Fleet, server_of
from airfleet.selection import Selector


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What a call gives: ("value", it) or ("error", its type and message)."""
    try:
        return ("value", call())
    except (ConfigError, ValueError) as exc:
        return ("error", (type(exc).__name__, str(exc)))


@contextlib.contextmanager
def general_paths_only() -> Iterator[None]:
    """Every fast path off: YAML composed node by node, every URL through urlsplit."""

    def not_plain(self: object) -> object:
        raise _yaml._NotPlain

    with (
        mock.patch.object(_yaml._PlainReader, "read", not_plain),
        mock.patch.object(fleet_file, "usual_url", return_value=None),
        mock.patch.object(inventory, "usual_url", return_value=None),
    ):
        yield


# -- YAML: events straight to data, lines on demand ---------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["yes", "No", "~", "0x1F", "0o17", "1_000", "1:30", "2026-11-24", "=", "<<"]),
    st.dates(),
)
_trees = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
# Lines that are not plain YAML, or not valid: anchors, aliases, tags, merge
# keys, duplicate and non-string keys, several documents, broken syntax.
_ODD_LINES = [
    "a: 1",
    "a: 2",
    "b: &x [1, 2]",
    "c: *x",
    "d: &y 5",
    "<<: {z: 1}",
    "'<<': 1",
    "e: !!str 5",
    "f: ! 5",
    "g: !!binary aGVsbG8=",
    "? [k]\n: v",
    "1: one",
    "null: nothing",
    "h: [unclosed",
    "i: =",
    "j: 2026-13-45",
    "k: {l: {m: [n, {o: p}]}}",
    "--- other",
    "q: !!set {r: null}",
    "s:\n  - t\n  - u: v",
    "\tw: tab",
]


def _same_as_composed(text: str) -> None:
    fast = outcome(lambda: load_located(text, source="f.yaml"))
    full = outcome(lambda: _yaml._composed(text, source="f.yaml"))
    if fast[0] == "error" or full[0] == "error":
        assert fast == full
        return
    assert repr(fast[1].data) == repr(full[1].data)
    assert dict(fast[1].lines) == full[1].lines


@settings(max_examples=300, deadline=None)
@given(_trees, st.sampled_from([None, False, True]))
def test_plain_yaml_reads_as_composed_and_as_yaml_load(tree: Any, flow: bool | None) -> None:
    """Dumped documents: the data yaml.load gives, and every key's and item's line."""
    text = yaml.safe_dump(tree, default_flow_style=flow, allow_unicode=True)
    _same_as_composed(text)
    loaded = yaml.load(text, Loader=yaml.CSafeLoader)
    assert repr(load_located(text, source="f.yaml").data) == repr(loaded)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_ODD_LINES), min_size=1, max_size=5))
def test_odd_yaml_gives_the_composed_data_or_the_same_error(lines: list[str]) -> None:
    """Anything that is not plain YAML: the composing reader's data and lines, or its error."""
    _same_as_composed("\n".join(lines) + "\n")


@settings(max_examples=100, deadline=None)
@given(_trees)
def test_without_libyaml_the_pure_python_parser_gives_the_same(tree: Any) -> None:
    """Where libyaml is not installed, PyYAML's own parser feeds the same reader."""
    text = yaml.safe_dump(tree)
    expected = load_located(text, source="f.yaml")
    with mock.patch.object(_yaml, "_LOADER", yaml.SafeLoader):
        located = load_located(text, source="f.yaml")
        assert repr(located.data) == repr(expected.data)
        assert dict(located.lines) == dict(expected.lines)


@pytest.mark.parametrize("levels", [63, 64, 65, 66, 70])
def test_deep_nesting_is_refused_where_it_was(levels: int) -> None:
    """Past 64 levels the composed error; up to them, the same data either way."""
    text = "[" * levels + "x" + "]" * levels + "\n"
    fast = outcome(lambda: load_located(text, source="f.yaml"))
    full = outcome(lambda: _yaml._composed(text, source="f.yaml"))
    assert (fast[0], full[0]) == ("error" if levels > 64 else "value",) * 2
    assert repr(fast[1] if fast[0] == "error" else fast[1].data) == repr(
        full[1] if full[0] == "error" else full[1].data
    )


def test_lines_of_plain_yaml_are_made_only_when_asked_for() -> None:
    """The fast reader keeps the text; the first look at a line composes it, once."""
    located = load_located("a:\n  - b\n  - c: 1\n", source="f.yaml")
    with mock.patch.object(_yaml, "_composed", wraps=_yaml._composed) as composed:
        assert located.data == {"a": ["b", {"c": 1}]}
        composed.assert_not_called()
        assert located.line_of(("a", 1, "c")) == 3
        assert located.line_of(("a", 0)) == 2
        assert composed.call_count == 1


# -- URLs: the usual shape by one match --------------------------------------------

_ports = st.one_of(
    st.just(""),
    st.integers(min_value=0, max_value=70000).map(lambda p: f":{p}"),
    st.sampled_from([":", ":0080", ":x", ":443", ":80"]),
)
# Nearly usual: what the shortcut reads, and its edges (port 0 and above
# 65535, dot segments, doubled and trailing slashes).
_usual_urls = st.builds(
    "{}://{}{}{}".format,
    st.sampled_from(["http", "https"]),
    st.text(alphabet="az09.-", min_size=1, max_size=10),
    _ports,
    st.text(alphabet="/aZ9.~-_", max_size=12),
)
_odd_urls = st.builds(
    "{}://{}{}{}".format,
    st.sampled_from(["http", "https", "HTTPS", "ftp", ""]),
    st.one_of(
        st.sampled_from(["a.example.com", "A.Example.com", "localhost", "127.0.0.1", "h."]),
        st.sampled_from(["[::1]", "[0:0:0:0:0:0:0:1]", "", "u:p@h", "x_y", "1.2.3.4.5"]),
        st.text(alphabet="abZ09.-_[]:@", min_size=1, max_size=8),
    ),
    _ports,
    st.text(alphabet="/aZ9.~-_%2F?#@ :\t", max_size=12),
)
_urls = _usual_urls | _odd_urls


@settings(max_examples=500, deadline=None)
@given(_urls)
def test_usual_urls_normalise_as_urlsplit_does(url: str) -> None:
    """server_of gives the same server (or the same error) with or without the shortcut."""
    fast = outcome(lambda: server_of(url))
    with general_paths_only():
        assert fast == outcome(lambda: server_of(url))


@settings(max_examples=500, deadline=None)
@given(_urls, st.booleans())
def test_usual_urls_are_checked_as_urlsplit_checks_them(url: str, insecure: bool) -> None:
    """A URL is accepted as written, or refused with the same message, either way."""

    def check() -> str:
        return fleet_file._check_url(
            load_located("url: x\n", source="f.yaml"),
            ("url",),
            url,
            owner="deployment 'a'",
            allow_insecure=insecure,
        )

    fast = outcome(check)
    with general_paths_only():
        assert fast == outcome(check)


# -- selection: a plain tag is a set lookup -----------------------------------------


@given(
    st.frozensets(st.text(alphabet="ab-*?[]", max_size=4), max_size=4),
    st.text(alphabet="ab-*?[]", min_size=1, max_size=4),
)
def test_a_tag_pattern_matches_as_fnmatch_does(tags: frozenset[str], pattern: str) -> None:
    """Glob or plain, a tag term matches exactly the deployments fnmatch says it does."""
    deployment = Deployment("d", "https://d.example.com", "t", tags)
    expected = any(fnmatch.fnmatchcase(tag, pattern) for tag in tags)
    assert Selector("tag", pattern).matches(deployment) is expected


# -- whole fleets: every fast path at once against none -----------------------------

GOOD: dict[str, Any] = {
    "version": 1,
    "limits": {"max_in_flight": 50, "max_per_second": 100},
    "defaults": {"auth": "tok", "max_per_second": 5, "timeout_s": 10, "api": "auto"},
    "auth": {
        "tok": {"kind": "token", "token": "${TOKEN}", "max_per_second": 10},
        "cc": {
            "kind": "client-credentials",
            "token_url": "https://auth.example.com/oauth/token",
            "client_id": "id",
            "client_secret": "${SECRET}",
        },
        "unused": {"kind": "token", "token": "${NOT_SET}"},
    },
    "deployments": [
        {"name": "prod-eu-1", "url": "https://a.example.com/d1", "tags": ["prod", "eu"]},
        {"name": "prod-eu-2", "url": "https://A.example.com:8443/d2/", "tags": ["prod"]},
        {"name": "dev-1", "url": "http://127.0.0.1:8080", "auth": "cc", "api": "v1"},
        {"name": "dev-2", "url": "http://[::1]:8081/x", "max_in_flight": 2},
        {"name": "legacy", "url": "http://legacy.corp", "allow_insecure": True},
        {"name": "twin", "url": "https://a.example.com/d1/", "allow_duplicate_url": True},
    ],
}
ENV = {"TOKEN": "t0ken-value", "SECRET": "s3cret-value"}
_leaves = st.one_of(
    _scalars,
    _urls,
    st.sampled_from(["${TOKEN}", "${UNSET}", "${X:-5}", "prod-eu-1", "cc", "v2", "nope"]),
    st.lists(st.sampled_from(["prod", "eu", "x"]), max_size=3),
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            found += _paths(value, (*prefix, index))
    return found


@st.composite
def near_valid_fleets(draw: st.DrawFn) -> str:
    """The good fleet with some URLs rewritten and up to two things replaced, deleted
    or added."""
    doc = copy.deepcopy(GOOD)
    for entry in doc["deployments"]:
        if draw(st.sampled_from([False, False, True])):
            entry["url"] = draw(st.one_of(_usual_urls, _usual_urls, _odd_urls))
            entry["allow_insecure"] = draw(st.booleans())
    for _ in range(draw(st.sampled_from([0, 0, 1, 2]))):
        path = draw(st.sampled_from(_paths(doc)[1:]))
        parent: Any = doc
        for step in path[:-1]:
            parent = parent[step]
        action = draw(st.sampled_from(["replace", "delete", "add"]))
        if action == "replace":
            parent[path[-1]] = draw(_leaves)
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["url", "tags", "nmae", "auth", "x"]))] = draw(_leaves)
        else:
            parent.append(copy.deepcopy(parent[-1]) if parent else draw(_leaves))
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=draw(st.booleans()))


def test_the_good_fleet_loads() -> None:
    """The mutations start from a valid fleet, so each probes one fault."""
    assert len(parse_fleet(yaml.safe_dump(GOOD), env=ENV).deployments) == 6


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(near_valid_fleets())
def test_fast_and_general_paths_agree_on_fleets(text: str) -> None:
    """The same Fleet, or the same error at the same file, line and key."""

    def load() -> Fleet:
        return parse_fleet(text, source="fleet.yaml", env=ENV)

    fast = outcome(load)
    with general_paths_only():
        assert fast == outcome(load)
