"""Job files: a named, ordered list of fleet operations, validated as strictly as fleet.yaml.

::

    version: 1
    name: nightly-refresh
    fleet: ../fleet.yaml           # relative to the job file; default: -c / $AIRFLEET_CONFIG
    select: [tag:prod]             # optional, for every step (and-ed with each step's own)
    window: daily                  # optional: hourly | daily | ISO-8601 duration (PT6H, P1W)
    steps:
      - trigger:
          id: load                 # optional; names the step in run ids (default: step1, ...)
          dags: [refresh_dims, nightly_load]
          select: [tag:eu]
          conf: {full: true}
          wait: true
          timeout_s: 3600
          continue_on_failure: false
          limits: {max_in_flight: 8, max_per_second: 5}
      - audit_pools: {spec: ../pools.yaml, apply: false}
      - health: {}

Every error names the file, the line and the key, as fleet.yaml's do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from airfleet._yaml import Located, config_error_from, did_you_mean, dotted, load_located
from airfleet.errors import ConfigError, UsageError
from airfleet.jobs.windows import parse_window
from airfleet.operations.api import check_api_path
from airfleet.operations.reads import parse_since
from airfleet.pool_spec import PoolSpec, load_pool_spec
from airfleet.selection import parse_selectors

__all__ = [
    "STEP_KINDS",
    "ApiOptions",
    "AuditOptions",
    "DagsOptions",
    "HealthOptions",
    "ImportErrorsOptions",
    "Job",
    "JobStep",
    "RunsOptions",
    "StepKind",
    "StepLimits",
    "TriggerOptions",
    "load_job",
    "parse_job",
]

StepKind = Literal[
    "trigger", "pause", "unpause", "health", "audit_pools", "api", "runs", "import_errors"
]
STEP_KINDS: tuple[StepKind, ...] = (
    "trigger",
    "pause",
    "unpause",
    "health",
    "audit_pools",
    "api",
    "runs",
    "import_errors",
)

# Names end up in directory names and run ids: keep them to what both accept.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_NAME_RULE = "use letters, digits, '.', '_' and '-', starting with a letter or digit"


# -- value objects ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepLimits:
    """Fleet-wide limits for one step's calls (None: the fleet's own)."""

    max_in_flight: int | None = None
    max_per_second: float | None = None


@dataclass(frozen=True, slots=True)
class TriggerOptions:
    """Trigger ``dags``; with ``wait``, wait for each run to end."""

    dags: tuple[str, ...]
    conf: Mapping[str, Any] = field(default_factory=dict)
    note: str | None = None
    wait: bool = False
    timeout_s: float = 3600.0
    poll_s: float = 10.0


@dataclass(frozen=True, slots=True)
class DagsOptions:
    """Pause or unpause ``dags``."""

    dags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class HealthOptions:
    """Health takes no options."""


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """Audit pools against ``spec``; with ``apply``, fix them (``prune``: delete extras)."""

    spec: PoolSpec
    apply: bool = False
    prune: bool = False


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """One request to ``path`` under each deployment's API root (``airfleet api``).

    ``fields`` are query parameters for GET and DELETE and the JSON body
    otherwise, unless ``body`` is given (then they go in the query).
    """

    path: str
    method: str = "GET"
    fields: Mapping[str, Any] = field(default_factory=dict)
    body: Any = None
    paginate: bool = False


@dataclass(frozen=True, slots=True)
class RunsOptions:
    """List DAG runs (``airfleet runs``); ``since`` is read when the step is planned."""

    dags: tuple[str, ...] = ()
    states: tuple[str, ...] = ()
    since: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class ImportErrorsOptions:
    """Import errors take no options."""


StepOptions = (
    TriggerOptions
    | DagsOptions
    | HealthOptions
    | AuditOptions
    | ApiOptions
    | RunsOptions
    | ImportErrorsOptions
)


@dataclass(frozen=True, slots=True)
class JobStep:
    """One step: an operation, on a selection, with its failure policy and limits."""

    index: int
    id: str
    kind: StepKind
    options: StepOptions
    select: tuple[str, ...] = ()
    continue_on_failure: bool = False
    limits: StepLimits | None = None
    line: int | None = None

    @property
    def label(self) -> str:
        """``step 2 (trigger load)`` for messages."""
        named = f" {self.id}" if self.id != f"step{self.index}" else ""
        return f"step {self.index} ({self.kind}{named})"

    def __repr__(self) -> str:
        return f"JobStep({self.index}, {self.id!r}, {self.kind!r})"


@dataclass(frozen=True, slots=True)
class Job:
    """A validated job file."""

    name: str
    steps: tuple[JobStep, ...]
    source: str = "<memory>"
    fleet: str | None = None
    select: tuple[str, ...] = ()
    window: str | None = None
    span: timedelta | None = None
    fingerprint: str = ""

    def __repr__(self) -> str:
        return f"Job({self.name!r}, {len(self.steps)} steps, window={self.window!r})"


# -- schema (pydantic stays at this edge) ---------------------------------------------------

PositiveInt = Annotated[int, Field(strict=True, gt=0)]
Rate = Annotated[float, Field(gt=0)]
Selectors = str | list[str]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Limits(_Strict):
    max_in_flight: PositiveInt | None = None
    max_per_second: Rate | None = None


class _Step(_Strict):
    id: str | None = None
    select: Selectors = []
    continue_on_failure: bool = False
    limits: _Limits | None = None

    @field_validator("id")
    @classmethod
    def _id(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.match(value):
            raise ValueError(f"{value!r}: {_NAME_RULE}")
        return value


class _Dags(_Step):
    dags: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]

    @field_validator("dags")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen = {d for d in value if value.count(d) > 1}
        if seen:
            raise ValueError(f"{sorted(seen)[0]!r} is listed twice")
        return value


class _Trigger(_Dags):
    conf: dict[str, Any] = {}
    note: str | None = None
    wait: bool = False
    timeout_s: Annotated[float, Field(gt=0)] = 3600.0
    poll_s: Annotated[float, Field(ge=0.1)] = 10.0

    @field_validator("conf")
    @classmethod
    def _json(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            json.dumps(value)
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"must be plain JSON ({exc}); quote dates and times, e.g. '2026-11-24'"
            ) from None
        return value


class _Health(_Step):
    pass


class _Audit(_Step):
    spec: Annotated[str, Field(min_length=1)]
    apply: bool = False
    prune: bool = False


class _Api(_Step):
    path: Annotated[str, Field(min_length=1)]
    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"] = "GET"
    fields: dict[str, Any] = {}
    body: Any = None
    paginate: bool = False

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        try:
            check_api_path(value)
        except UsageError as exc:
            raise ValueError(str(exc)) from None
        return value


class _Runs(_Step):
    dags: list[Annotated[str, Field(min_length=1)]] = []
    states: list[Literal["queued", "running", "success", "failed"]] = []
    since: str | None = None
    limit: PositiveInt | None = None

    @field_validator("since")
    @classmethod
    def _since(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_since(value)
            except UsageError as exc:
                raise ValueError(str(exc).replace("--since ", "")) from None
        return value


class _ImportErrors(_Step):
    pass


class _Job(_Strict):
    version: Literal[1]
    name: str
    fleet: Annotated[str, Field(min_length=1)] | None = None
    select: Selectors = []
    window: str | None = None
    steps: Annotated[list[Any], Field(min_length=1)]

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r}: {_NAME_RULE}")
        return value

    @field_validator("window")
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        if value is not None:
            parse_window(value)
        return value


_MODELS: dict[StepKind, type[_Step]] = {
    "trigger": _Trigger,
    "pause": _Dags,
    "unpause": _Dags,
    "health": _Health,
    "audit_pools": _Audit,
    "api": _Api,
    "runs": _Runs,
    "import_errors": _ImportErrors,
}
_ALLOWED_TOP: dict[tuple[str | int, ...], tuple[str, ...]] = {(): tuple(_Job.model_fields)}


def _allowed(model: type[_Step]) -> dict[tuple[str | int, ...], tuple[str, ...]]:
    return {(): tuple(model.model_fields), ("limits",): tuple(_Limits.model_fields)}


# -- loading ---------------------------------------------------------------------------


def load_job(path: str | os.PathLike[str]) -> Job:
    """Read and validate a job file; raise ConfigError (file, line, key) if invalid.

    Files it names (the fleet, pool specs) are relative to the job file. Pool
    specs are loaded and validated here too, so a bad one stops the job before
    anything is sent.
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such job file; see configs/jobs/ for examples", file=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read it: {exc}", file=source) from exc
    return parse_job(text, source=source, base=Path(source).parent)


def parse_job(text: str, *, source: str = "<string>", base: Path | None = None) -> Job:
    """Validate job-file text; only ConfigError escapes. ``base``: where relative paths start."""
    base = base or Path()
    located = load_located(text, source=source)
    if located.data is None:
        raise ConfigError("the file is empty; start from configs/jobs/nightly.yaml", file=source)
    if not isinstance(located.data, dict):
        raise located.error((), "the top level must be a mapping with version, name and steps")
    try:
        model = _Job.model_validate(located.data)
    except ValidationError as exc:
        raise config_error_from(located, exc, _ALLOWED_TOP) from None
    job_select = _selectors(located, ("select",), model.select)
    fleet = None
    if model.fleet is not None:
        fleet = _existing(located, ("fleet",), base, model.fleet, "fleet file")
    steps: list[JobStep] = []
    ids: dict[str, int] = {}
    for position, raw in enumerate(model.steps):
        step = _step(located, position, raw, base)
        if step.id in ids:
            raise located.error(
                ("steps", position),
                f"step id {step.id!r} is used twice (steps {ids[step.id]} and {step.index}); "
                "give each step its own id",
            )
        ids[step.id] = step.index
        steps.append(step)
    digest = hashlib.sha256(
        json.dumps(located.data["steps"], sort_keys=True, default=str).encode()
    ).hexdigest()[:16]
    return Job(
        name=model.name,
        steps=tuple(steps),
        source=source,
        fleet=fleet,
        select=job_select,
        window=model.window,
        span=parse_window(model.window) if model.window else None,
        fingerprint=digest,
    )


def _step(located: Located, position: int, raw: Any, base: Path) -> JobStep:
    path: tuple[str | int, ...] = ("steps", position)
    kinds = ", ".join(STEP_KINDS)
    if not isinstance(raw, dict) or not raw:
        raise located.error(path, f"a step is a mapping with one key naming its kind ({kinds})")
    if len(raw) > 1:
        raise located.error(
            path,
            f"a step has exactly one key, its kind ({kinds}); found {', '.join(raw)}: "
            "indent the options under the kind",
        )
    kind_name, body = next(iter(raw.items()))
    if kind_name not in _MODELS:
        hint = did_you_mean(kind_name, STEP_KINDS)
        raise located.error(
            (*path, kind_name),
            f"unknown step kind {kind_name!r}{hint}; kinds: {kinds}",
        )
    kind: StepKind = kind_name
    where = (*path, kind)
    body = {} if body is None else body
    if not isinstance(body, dict):
        raise located.error(where, f"the options of a {kind} step must be a mapping")
    model = _MODELS[kind]
    try:
        parsed = model.model_validate(body)
    except ValidationError as exc:
        raise _nested_error(located, where, exc, _allowed(model)) from None
    _no_idle_options(located, where, parsed)
    index = position + 1
    options: StepOptions
    if isinstance(parsed, _Trigger):
        options = TriggerOptions(
            tuple(parsed.dags),
            dict(parsed.conf),
            parsed.note,
            wait=parsed.wait,
            timeout_s=parsed.timeout_s,
            poll_s=parsed.poll_s,
        )
    elif isinstance(parsed, _Dags):
        options = DagsOptions(tuple(parsed.dags))
    elif isinstance(parsed, _Audit):
        spec_path = _existing(located, (*where, "spec"), base, parsed.spec, "pool spec")
        options = AuditOptions(load_pool_spec(spec_path), apply=parsed.apply, prune=parsed.prune)
    elif isinstance(parsed, _Api):
        options = ApiOptions(
            parsed.path, parsed.method, dict(parsed.fields), parsed.body, parsed.paginate
        )
    elif isinstance(parsed, _Runs):
        options = RunsOptions(tuple(parsed.dags), tuple(parsed.states), parsed.since, parsed.limit)
    elif isinstance(parsed, _ImportErrors):
        options = ImportErrorsOptions()
    else:
        options = HealthOptions()
    limits = None
    if parsed.limits is not None:
        limits = StepLimits(parsed.limits.max_in_flight, parsed.limits.max_per_second)
    return JobStep(
        index=index,
        id=parsed.id or f"step{index}",
        kind=kind,
        options=options,
        select=_selectors(located, (*where, "select"), parsed.select),
        continue_on_failure=parsed.continue_on_failure,
        limits=limits,
        line=located.line_of(path),
    )


def _no_idle_options(located: Located, where: tuple[str | int, ...], parsed: _Step) -> None:
    # An option that only works beside another one, set without it, is a
    # mistake the job would otherwise hide: say so where it is written.
    if isinstance(parsed, _Trigger) and not parsed.wait:
        for key in ("timeout_s", "poll_s"):
            if key in parsed.model_fields_set:
                raise located.error(
                    (*where, key), f"{key} is for waiting: set wait: true, or drop {key}"
                )
    if isinstance(parsed, _Audit) and parsed.prune and not parsed.apply:
        raise located.error(
            (*where, "prune"), "prune deletes pools only with apply: true; set both, or neither"
        )


def _selectors(
    located: Located, path: tuple[str | int, ...], value: str | list[str]
) -> tuple[str, ...]:
    groups = (value,) if isinstance(value, str) else tuple(value)
    try:
        parse_selectors(groups)
    except UsageError as exc:
        raise located.error(path, str(exc)) from None
    return groups


def _existing(
    located: Located, path: tuple[str | int, ...], base: Path, name: str, what: str
) -> str:
    target = Path(name) if Path(name).is_absolute() else base / name
    if not target.is_file():
        raise located.error(
            path, f"{what} {str(target)!r} does not exist (paths are relative to the job file)"
        )
    return str(target)


def _nested_error(
    located: Located,
    prefix: tuple[str | int, ...],
    exc: ValidationError,
    allowed: Mapping[tuple[str | int, ...], tuple[str, ...]],
) -> ConfigError:
    """A step's pydantic error, located in the whole file."""
    n = len(prefix)
    node: Any = located.data
    for part in prefix:
        node = node[part]
    lines = {k[n:]: v for k, v in located.lines.items() if k[:n] == prefix}
    inner = config_error_from(Located(node, lines, located.source), exc, allowed)
    outer = dotted(prefix) or ""
    key = (
        outer if not inner.key else f"{outer}{'' if inner.key.startswith('[') else '.'}{inner.key}"
    )
    return ConfigError(inner.message, file=inner.file, line=inner.line, key=key)
