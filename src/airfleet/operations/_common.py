"""Pieces every operation shares: reading answers and turning errors into verdicts."""

from __future__ import annotations

import operator
from collections.abc import Callable, Generator, Hashable
from typing import Any, TypeVar

from airfleet.dialects.base import Dialect
from airfleet.errors import ApiError
from airfleet.protocol import Answer, Request, Response, Step, Verdict
from airfleet.results import Outcome

T = TypeVar("T")


def read(reader: Callable[[Any], T], response: Response) -> T:
    """Apply a dialect reader; a body of the wrong shape becomes an ``ApiError``."""
    try:
        return reader(response.body)
    except ValueError as exc:
        what = "not JSON" if response.body is None else str(exc)
        raise ApiError(response.status, f"unexpected answer: {what}", body=response.text) from exc


def failed(dialect: Dialect, response: Response, *, what: str = "") -> Verdict:
    """A failed verdict that says what the server said."""
    reason = dialect.error_message(response)
    prefix = f"{what}: " if what else ""
    return Verdict(
        Outcome.FAILED, error=f"{prefix}HTTP {response.status}: {reason}", status=response.status
    )


def ask(request: Request) -> Generator[Step, Answer, Response]:
    """Yield one request and return its answer, typed (for ``yield from``)."""
    answer = yield request
    assert isinstance(answer, Response)  # noqa: S101 - the engine's contract
    return answer


def ask_all(requests: tuple[Request, ...]) -> Generator[Step, Answer, tuple[Response, ...]]:
    """Yield requests to send concurrently; return their answers in order."""
    answers = yield requests
    assert isinstance(answers, tuple)  # noqa: S101 - the engine's contract
    return answers


def paginate(
    dialect: Dialect,
    make: Callable[..., Request],
    reader: Callable[[Any], tuple[list[dict[str, Any]], int | None]],
    key: str | Callable[[dict[str, Any]], Hashable],
) -> Generator[Step, Answer, tuple[list[dict[str, Any]], int | None]]:
    """Every item of a paged list, deduplicated by ``key`` (a field, or a function of
    the item), in the order of its key.

    Servers clamp ``limit`` silently, so pages are counted by the items each
    answer actually holds. When the first page says ``total_entries``, the
    remaining pages are fetched concurrently; a sequential sweep then picks up
    anything the concurrent pass missed (items added meanwhile).
    """
    key_of: Callable[[dict[str, Any]], Hashable] = (
        operator.itemgetter(key) if isinstance(key, str) else key
    )
    limit = dialect.page_limit
    first = yield make(limit=limit, offset=0)  # not `ask`: one generator less per listing
    assert isinstance(first, Response)  # noqa: S101 - the engine's contract
    if not first.ok:
        raise ApiError(first.status, dialect.error_message(first), body=first.text)
    items, total = read(reader, first)
    if len(items) <= 1 and total is not None and len(items) >= total:
        # All of it in one answer, nothing to merge or sort: the common case
        # (a deployment's pools are often just default_pool).
        return items, total
    by_key = {key_of(item): item for item in items}
    page = len(items)
    offset = page
    if total is not None and page and total > page:
        offsets = range(page, total, page)
        answers = yield from ask_all(tuple(make(limit=limit, offset=o) for o in offsets))
        for answer in answers:
            if not answer.ok:
                raise ApiError(answer.status, dialect.error_message(answer), body=answer.text)
            more, _ = read(reader, answer)
            by_key.update((key_of(item), item) for item in more)
        offset = total
    while page and (total is None or len(by_key) < total):
        answer = yield from ask(make(limit=limit, offset=offset))
        if not answer.ok:
            raise ApiError(answer.status, dialect.error_message(answer), body=answer.text)
        more, new_total = read(reader, answer)
        known = len(by_key)
        by_key.update((key_of(item), item) for item in more)
        if len(by_key) == known:
            # An empty page, or a server that ignores offset: nothing new comes.
            break
        offset += len(more)
        page = len(more)
        if new_total is not None:
            total = new_total
    return sorted(by_key.values(), key=lambda item: str(key_of(item))), total
