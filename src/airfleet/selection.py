"""Choosing deployments: ``tag:prod``, ``name:prod-*``; comma = or, repeated = and."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from airfleet.errors import UsageError
from airfleet.inventory import Deployment

__all__ = ["Selection", "Selector", "parse_selectors", "select"]

# What makes a pattern a glob; any other pattern matches itself alone.
_GLOB = frozenset("*?[")
FORMS = "use tag:NAME, name:GLOB or a bare name glob; comma = or, repeat -s = and"


@dataclass(frozen=True, slots=True)
class Selector:
    """One term: a tag (glob allowed) or a deployment-name glob."""

    kind: Literal["tag", "name"]
    pattern: str

    def matches(self, deployment: Deployment) -> bool:
        if self.kind == "name":
            return fnmatch.fnmatchcase(deployment.name, self.pattern)
        if not _GLOB.intersection(self.pattern):
            return self.pattern in deployment.tags  # a plain tag: one set lookup
        return any(fnmatch.fnmatchcase(tag, self.pattern) for tag in deployment.tags)

    def __str__(self) -> str:
        return f"{self.kind}:{self.pattern}"


@dataclass(frozen=True, slots=True)
class Selection:
    """Groups of terms: a deployment matches when every group has a matching term."""

    groups: tuple[tuple[Selector, ...], ...]

    def matches(self, deployment: Deployment) -> bool:
        return all(any(term.matches(deployment) for term in group) for group in self.groups)

    def __str__(self) -> str:
        return " and ".join(",".join(str(t) for t in group) for group in self.groups) or "all"


def _term(text: str) -> Selector:
    word = text.strip()
    if not word:
        raise UsageError(f"empty selector term; {FORMS}")
    kind, sep, pattern = word.partition(":")
    if not sep:
        return Selector("name", word)
    if kind not in ("tag", "name"):
        raise UsageError(f"unknown selector kind {kind!r} in {word!r}; {FORMS}")
    if not pattern:
        raise UsageError(f"selector {word!r} has no pattern; {FORMS}")
    return Selector(kind, pattern)  # type: ignore[arg-type]


def parse_selectors(groups: Sequence[str]) -> Selection:
    """Each string is one ``-s`` value (terms joined by commas)."""
    return Selection(tuple(tuple(_term(t) for t in group.split(",")) for group in groups))


def select(deployments: Sequence[Deployment], groups: Sequence[str]) -> tuple[Deployment, ...]:
    """The deployments matching every group, in file order; all when no group is given."""
    selection = parse_selectors(groups)
    chosen = tuple(d for d in deployments if selection.matches(d))
    if not chosen:
        tags = sorted({t for d in deployments for t in d.tags})
        names = [d.name for d in deployments[:5]]
        hint = f"known tags: {', '.join(tags[:10])}" if tags else f"names: {', '.join(names)}"
        raise UsageError(f"selection '{selection}' matches no deployment; {hint}")
    return chosen
