"""What no retry can fix fails at once; a dead token URL fails within its own budget."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from airfleet.engine import Engine
from airfleet.events import AttemptFinished, Event
from airfleet.inventory import (
    ClientCredentialsAuth,
    Deployment,
    Fleet,
    Secret,
    TokenAuth,
)
from airfleet.operations import plan_pools
from airfleet.results import Outcome
from airfleet.testing import FakeClock

pytestmark = pytest.mark.anyio


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def garbage_server() -> AsyncIterator[str]:
    """A TCP server that answers every connection with something that is not HTTP."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.write(b"SSH-2.0-OpenSSH_9.6 not http at all\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


def one_deployment(url: str, *, retries: int = 4) -> Fleet:
    profile = TokenAuth("t", Secret("ready-token-123"))
    return Fleet((Deployment("d", url, "t", api="v2", retries=retries),), {"t": profile})


def attempts_seen(events: list[Event]) -> list[AttemptFinished]:
    return [e for e in events if isinstance(e, AttemptFinished)]


@pytest.mark.parametrize(
    ("scheme", "said"), [("http", "malformed HTTP response"), ("https", "TLS with")]
)
async def test_what_no_retry_can_fix_is_tried_once(
    garbage_server: str, scheme: str, said: str
) -> None:
    """A server that does not speak HTTP, or TLS to a plain port: one attempt,
    and the error says which."""
    url = garbage_server.replace("http://", f"{scheme}://")
    events: list[Event] = []
    clock = FakeClock()
    async with (
        clock.autojump(),
        Engine(one_deployment(url), listeners=[events.append], clock=clock) as engine,
    ):
        report = await engine.run(plan_pools(engine.fleet.deployments))
    (result,) = report.results
    assert result.outcome is Outcome.FAILED
    assert said in (result.error or "")
    assert [a.delay_s for a in attempts_seen(events)] == [None]


async def test_a_dead_token_url_fails_within_the_profiles_own_budget() -> None:
    """timeout_s 3, retries 1 on the profile: two attempts, at most 6 s (on the
    engine's clock), then every call needing the token fails saying why."""
    dead = f"http://127.0.0.1:{free_port()}/oauth/token"
    profile = ClientCredentialsAuth(
        "cc", dead, "id", Secret("client-secret-1"), timeout_s=3, retries=1
    )
    deployments = tuple(Deployment(f"d{i}", f"http://d{i}.test", "cc", api="v2") for i in range(3))
    events: list[Event] = []
    clock = FakeClock()
    async with (
        clock.autojump(),
        Engine(
            Fleet(deployments, {"cc": profile}), listeners=[events.append], clock=clock
        ) as engine,
    ):
        report = await engine.run(plan_pools(deployments))
    assert report.summary.failed == 3
    assert all("cannot connect" in (r.error or "") for r in report.results)
    token_attempts = [a for a in attempts_seen(events) if a.path == "/oauth/token"]
    assert len(token_attempts) == 2  # one fetch for all three calls, retried once
    assert clock.now() <= 6.0
