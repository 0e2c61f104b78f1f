"""Shared fixtures: the anyio backend, and a simulator on a free loopback port."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # aiohttp runs on asyncio only; anyio's default would also try trio.
    return "asyncio"
