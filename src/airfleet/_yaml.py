"""YAML with line numbers: every mapping key and list item remembers its line.

Shared by every file airfleet reads (fleet.yaml, pool specs, job files), so all
of them report errors as ``file:line: key: message``.

Two readers, one result. Plain YAML, what these files are (no anchors,
aliases, tags or merge keys; string keys, each once), is read straight from
libyaml's events into data, at a third of the cost of ``yaml.load``; its line
map is made only if something asks for it, which an error does. Anything
else, and anything wrong, is composed node by node, which reports each
problem at its line.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from airfleet.errors import ConfigError

__all__ = ["Located", "config_error_from", "did_you_mean", "load_located", "substitute_env"]

Path_ = tuple[str | int, ...]
_MAX_DEPTH = 64
# libyaml's parser, where installed, reads a 10,000-deployment fleet ~10x faster.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
# ${VAR}, ${VAR:-default}, and ${airflow:conn.ID.FIELD} / ${airflow:var.KEY}:
# the names a mapping given to substitute_env may resolve (airfleet.airflow's
# does, from Airflow's connections and variables, so secrets backends work).
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*|airflow:[^}\s]+?)(?::-([^}]*))?\}")
AIRFLOW_PREFIX = "airflow:"


@dataclass(frozen=True, slots=True)
class Located:
    """Plain data from a YAML document, and the line of every key and item in it."""

    data: Any
    lines: Mapping[Path_, int]
    source: str

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        key = tuple(path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return self.lines.get((), None)

    def error(self, path: Sequence[str | int], message: str) -> ConfigError:
        return ConfigError(message, file=self.source, line=self.line_of(path), key=dotted(path))


def dotted(path: Sequence[str | int]) -> str | None:
    """``("deployments", 2, "url")`` -> ``deployments[2].url``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def load_located(text: str, *, source: str) -> Located:
    """Parse one YAML document into plain data plus key lines; ConfigError on bad YAML."""
    try:
        data = _PlainReader(text).read()
    except _NotPlain:
        return _composed(text, source=source)
    return Located(data, _LinesOnDemand(text, source), source)


class _NotPlain(Exception):
    """The text is not plain YAML, or not valid: the composing reader takes it."""


class _PlainReader:
    """Plain YAML from the parser's events into dicts, lists and scalars, as
    ``yaml.safe_load`` builds them; ``_NotPlain`` at anything else."""

    def __init__(self, text: str) -> None:
        self._loader = _LOADER(text)
        self._resolvers = self._loader.yaml_implicit_resolvers

    def read(self) -> Any:
        next_event = self._loader.get_event
        try:
            next_event()  # the stream's start
            if isinstance(next_event(), yaml.StreamEndEvent):
                return None  # no document at all
            data = self._value(next_event(), 0)
            next_event()  # the document's end
            if not isinstance(next_event(), yaml.StreamEndEvent):
                raise _NotPlain  # a second document
            return data
        except (yaml.YAMLError, ValueError, TypeError, OverflowError):
            raise _NotPlain from None
        finally:
            self._loader.dispose()

    def _value(self, event: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _NotPlain  # a recursive alias, perhaps: composing tells
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event)
        if event.anchor is not None or event.tag is not None:
            raise _NotPlain  # an alias, an anchor or a tag
        next_event = self._loader.get_event
        if isinstance(event, yaml.MappingStartEvent):
            out: dict[str, Any] = {}
            while not isinstance(key_event := next_event(), yaml.MappingEndEvent):
                key = self._scalar(key_event) if isinstance(key_event, yaml.ScalarEvent) else None
                if not isinstance(key, str) or key in out:
                    raise _NotPlain  # a key that is no string, or a duplicate
                out[key] = self._value(next_event(), depth + 1)
            return out
        if isinstance(event, yaml.SequenceStartEvent):
            items = []
            while not isinstance(item := next_event(), yaml.SequenceEndEvent):
                items.append(self._value(item, depth + 1))
            return items
        raise _NotPlain

    def _scalar(self, event: yaml.ScalarEvent) -> Any:
        if event.anchor is not None or event.tag is not None:
            raise _NotPlain
        value: str = event.value
        if not event.implicit[0]:
            return value  # quoted: a string
        # Resolver.resolve, for a resolver without wildcard or path resolvers
        # (SafeLoader's): the first regular expression that matches names the type.
        for tag, pattern in self._resolvers.get(value[:1], ()):
            if pattern.match(value):
                if tag == _STR_TAG:
                    return value
                if tag == _MERGE_TAG:
                    raise _NotPlain
                return self._loader.construct_object(yaml.ScalarNode(tag, value))
        return value


class _LinesOnDemand(Mapping[Path_, int]):
    """The line map of plain YAML, composed from its text the first time it is read."""

    def __init__(self, text: str, source: str) -> None:
        self._text = text
        self._source = source

    @functools.cached_property
    def _lines(self) -> Mapping[Path_, int]:
        return _composed(self._text, source=self._source).lines

    def __getitem__(self, path: Path_) -> int:
        return self._lines[path]

    def __iter__(self) -> Iterator[Path_]:
        return iter(self._lines)

    def __len__(self) -> int:
        return len(self._lines)


def _composed(text: str, *, source: str) -> Located:
    """Any YAML, node by node, with the line of every key and item."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"not valid YAML: {problem}", file=source, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"not valid YAML: {exc}", file=source) from None
    lines: dict[Path_, int] = {}
    if node is None:
        return Located(None, lines, source)
    lines[()] = node.start_mark.line + 1
    constructor = yaml.constructor.SafeConstructor()
    data = _walk(node, (), lines, constructor, source, 0)
    return Located(data, lines, source)


def _walk(
    node: yaml.Node,
    path: Path_,
    lines: dict[Path_, int],
    constructor: yaml.constructor.SafeConstructor,
    source: str,
    depth: int,
) -> Any:
    if depth > _MAX_DEPTH:
        raise ConfigError(
            "nested too deeply (a recursive alias?)", file=source, line=node.start_mark.line + 1
        )
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                raise ConfigError("merge keys (<<) are not supported", file=source, line=line)
            key = _scalar(key_node, constructor, source)
            if not isinstance(key, str):
                raise ConfigError(
                    f"keys must be strings, not {key!r}", file=source, line=line, key=dotted(path)
                )
            if key in out:
                raise ConfigError(
                    f"duplicate key {key!r}", file=source, line=line, key=dotted(path)
                )
            lines[(*path, key)] = line
            out[key] = _walk(value_node, (*path, key), lines, constructor, source, depth + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[(*path, index)] = item.start_mark.line + 1
            items.append(_walk(item, (*path, index), lines, constructor, source, depth + 1))
        return items
    return _scalar(node, constructor, source)


def _scalar(node: yaml.Node, constructor: yaml.constructor.SafeConstructor, source: str) -> Any:
    if not isinstance(node, yaml.ScalarNode):
        raise ConfigError("a key must be a plain value", file=source, line=node.start_mark.line + 1)
    try:
        return constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(
            f"cannot read value: {exc}", file=source, line=node.start_mark.line + 1
        ) from None


def substitute_env(located: Located, value: Any, path: Path_, env: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string under ``value``."""
    if isinstance(value, str):
        if "${" not in value:
            return value  # most strings: nothing to look for

        def one(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise located.error(path, _unresolved(name, env))

        return _VAR.sub(one, value)
    if isinstance(value, dict):
        return {k: substitute_env(located, v, (*path, k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute_env(located, v, (*path, i), env) for i, v in enumerate(value)]
    return value


def _unresolved(name: str, env: Mapping[str, str]) -> str:
    if not name.startswith(AIRFLOW_PREFIX):
        return f"environment variable {name} is not set; export it or use ${{{name}:-default}}"
    # A mapping that resolves Airflow references says why one did not.
    explain = getattr(env, "explain_missing", None)
    if callable(explain):
        return str(explain(name))
    return (
        f"${{{name}}} reads Airflow's connections and variables, so it resolves only in "
        "a task run by airfleet.airflow; elsewhere use ${VAR} from the environment"
    )


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a close match exists, else ``""``."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def config_error_from(
    located: Located, exc: ValidationError, allowed: Mapping[Path_, Iterable[str]] | None = None
) -> ConfigError:
    """The most telling pydantic error as a ConfigError with file, line and key.

    The input value is never quoted: it may be a secret.
    """
    errors = exc.errors(include_input=False, include_url=False)
    # An unknown key first: a misspelt required key ("nmae") is better told
    # as "unknown key 'nmae' (did you mean 'name')" than as "name is required".
    error = min(errors, key=lambda e: e["type"] != "extra_forbidden")
    loc = _in_data(located.data, tuple(p for p in error["loc"] if isinstance(p, str | int)))
    kind = error["type"]
    if kind == "union_tag_not_found":
        return located.error(loc, "needs 'kind': client-credentials, token or password")
    if kind == "extra_forbidden":
        name = str(loc[-1])
        choices = _allowed_for(loc[:-1], allowed or {})
        hint = did_you_mean(name, choices)
        known = f"; allowed: {', '.join(sorted(choices))}" if choices and not hint else ""
        return located.error(loc, f"unknown key {name!r}{hint}{known}")
    if kind == "missing":
        return located.error(loc, "is required")
    message = str(error["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    return located.error(loc, message)


def _in_data(data: Any, loc: Path_) -> Path_:
    """Drop location parts that are not in the data (pydantic adds union tags)."""
    out: list[str | int] = []
    node = data
    for index, part in enumerate(loc):
        last = index == len(loc) - 1
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        # Descend only into containers before the last part: a union tag
        # ("token") can share its name with a scalar field.
        if (in_dict or in_list) and (last or isinstance(node[part], dict | list)):
            node = node[part]
            out.append(part)
        elif last:
            out.append(part)  # a missing or unknown key: keep its name
    return tuple(out)


def _allowed_for(parent: Path_, allowed: Mapping[Path_, Iterable[str]]) -> list[str]:
    # Patterns use "*" for any list index or mapping key.
    for pattern, names in allowed.items():
        if len(pattern) == len(parent) and all(
            p == "*" or p == q for p, q in zip(pattern, parent, strict=True)
        ):
            return list(names)
    return []
