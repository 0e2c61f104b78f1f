"""Shared fixtures: the anyio backend, and a simulator on a free loopback port."""

from __future__ import annotations

import os

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # Every server the suite starts is on loopback, and airfleet honours the
    # proxy variables as requests does, loopback included: a proxy named by
    # a developer's or a CI machine's environment must not carry the tests.
    for name in ("NO_PROXY", "no_proxy"):
        os.environ[name] = ",".join(filter(None, (os.environ.get(name), "127.0.0.1", "localhost")))


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp runs on asyncio only; anyio's default would also try trio.
    return "asyncio"
