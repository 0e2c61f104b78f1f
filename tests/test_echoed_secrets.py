"""Servers that quote the credentials they were sent: no secret reaches any output."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from rich.console import Console

from _reports import assert_valid_junit
from _simthread import sim_in_thread
from airfleet import redaction
from airfleet.engine import Engine
from airfleet.inventory import (
    ClientCredentialsAuth,
    Deployment,
    Fleet,
    PasswordAuth,
    Secret,
    TokenAuth,
)
from airfleet.logs import configure_logging, log_event
from airfleet.operations import plan_pools
from airfleet.report import FORMATS, render
from airfleet.results import Outcome
from airfleet.sim import Faults, Simulator
from test_secrets import SPEC, airfleet, job_file

pytestmark = pytest.mark.anyio

READY_TOKEN = "echo-ready-token-4b1d"
PASSWORD = "echo-password-9c2e"
CLIENT_SECRET = "echo-client-secret-77aa"
BASIC = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()


@pytest.fixture
async def echoing_server() -> AsyncIterator[str]:
    """Every refusal quotes what was sent: the Authorization header, the login
    body, the client credentials."""

    async def token_service(request: web.Request) -> web.Response:
        body = await request.json()
        return web.json_response(
            {"error": "invalid_client", "error_description": f"unknown client {body}"},
            status=400,
        )

    async def login(request: web.Request) -> web.Response:
        body = await request.json()
        detail = f"Invalid credentials for {body['username']}:{body['password']}"
        return web.json_response({"detail": detail}, status=401)

    async def api(request: web.Request) -> web.Response:
        header = request.headers.get("Authorization", "")
        if "/api/v1/" in request.path:
            problem = {"title": "Forbidden", "status": 403, "detail": f"refused {header}"}
            return web.json_response(problem, status=403)
        return web.json_response({"detail": f"Authorization: {header} is not valid"}, status=401)

    app = web.Application()
    app.router.add_post("/oauth/token", token_service)
    app.router.add_post("/d/{name}/auth/token", login)
    app.router.add_route("*", "/d/{name}/{tail:.*}", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


def echo_fleet(url: str) -> Fleet:
    profiles: dict[str, Any] = {
        "ready": TokenAuth("ready", Secret(READY_TOKEN)),
        "login": PasswordAuth("login", "admin", Secret(PASSWORD)),
        "cc": ClientCredentialsAuth("cc", f"{url}/oauth/token", "id", Secret(CLIENT_SECRET)),
    }
    deployments = (
        Deployment("bearer", f"{url}/d/bearer", "ready", api="v2", retries=0),
        Deployment("basic", f"{url}/d/basic", "login", api="v1", retries=0),
        Deployment("jwt", f"{url}/d/jwt", "login", api="v2", retries=0),
        Deployment("oauth", f"{url}/d/oauth", "cc", api="v2", retries=0),
    )
    return Fleet(deployments, profiles)


async def test_no_echoed_secret_reaches_a_report_or_a_log_line(echoing_server: str) -> None:
    """A 401 quoting the bearer token, a 403 quoting the basic header, a login
    quoting the password, a token service quoting the client secret: every
    report format and every -v log line shows none of them, whole or encoded."""
    fleet = echo_fleet(echoing_server)
    logs = io.StringIO()
    configure_logging(fmt="json", verbose=True, stream=logs)
    try:
        async with Engine(fleet, listeners=[log_event]) as engine:
            report = await engine.run(plan_pools(fleet.deployments))
    finally:
        configure_logging(fmt="json", verbose=False)
    assert [r.outcome for r in report.results] == [Outcome.FAILED] * 4
    assert all("***" in (r.error or "") for r in report.results), [r.error for r in report.results]
    outputs = [logs.getvalue(), json.dumps([r.to_dict() for r in report.results])]
    for fmt in FORMATS:
        out = io.StringIO()
        console = Console(file=out, width=200, force_terminal=False)
        render(fmt, summary=report.summary, results=report.results, out=out, console=console)
        outputs.append(out.getvalue())
    for text in outputs:
        for secret in (READY_TOKEN, PASSWORD, CLIENT_SECRET, BASIC):
            assert secret not in text


# Wrong secrets, so every server refuses (and quotes) them; random-looking, as
# a test's own words ("password-trigger.json") must not pass for their parts.
WRONG = {
    "AIRFLEET_SIM_CLIENT_SECRET": "Zq8cS5d1e9f0aK2m",
    "AIRFLEET_SIM_TOKEN": "Tk7rT77c3ab91Lq0",
    "AIRFLEET_SIM_PASSWORD": "Pw3xB0b9f2e6cN4v",
}


def pieces(secret: str) -> set[str]:
    """Every part of ``secret`` as long as the redaction's fragment."""
    size = redaction.FRAGMENT
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def test_an_echoing_simulator_leaks_no_part_of_a_secret_through_any_command(
    tmp_path: Path,
) -> None:
    """The simulator behind a gateway, quoting every credential it refuses, and
    wrong secrets of each kind: reports, -v logs, the job's journal and history
    hold no part of any secret (nor of the basic header they make)."""
    sim = Simulator(deployments=4, api="mixed", faults=Faults(echo_credentials=True, gateway=True))
    (tmp_path / "pools.yaml").write_text(SPEC, encoding="utf-8")
    state = tmp_path / "state"
    blobs: list[str] = []
    with sim_in_thread(sim) as running:
        env = {**sim.env(), **WRONG}
        for auth in ("oauth", "token", "password"):
            config = running.write_fleet(tmp_path / f"{auth}.yaml", auth=auth)
            job = job_file(tmp_path, config, f"echo-{auth}")
            out = tmp_path / auth
            for args in (
                ["-c", str(config), "trigger", "hello", "-o", f"{out}-trigger.json"],
                ["-c", str(config), "pools", "--report", "markdown"],
                ["run", str(job), "--state-dir", str(state), "-o", f"{out}-run.xml"],
                ["history", f"echo-{auth}", "--state-dir", str(state)],
            ):
                done = airfleet(args, env)
                assert "Traceback" not in done.stderr, args
                blobs += [done.stdout, done.stderr]
    files = [p for p in tmp_path.rglob("*") if p.is_file() and not p.name.endswith(".yaml")]
    for report in (p for p in files if p.suffix == ".xml"):
        assert_valid_junit(report.read_text(encoding="utf-8"))  # masks keep it valid
    assert any(p.is_relative_to(state) for p in files), "the jobs left no journal"
    blobs += [p.read_text(encoding="utf-8", errors="replace") for p in files]
    everything = "\n".join(blobs)
    # The test can fail: the servers quoted what they refused, and it was masked.
    assert "***" in everything
    assert sim.stats()["auth_failures"] > 0
    basic = base64.b64encode(
        f"{sim.credentials.username}:{WRONG['AIRFLEET_SIM_PASSWORD']}".encode()
    )
    for secret in (*WRONG.values(), basic.decode()):
        leaked = [piece for piece in pieces(secret) if piece in everything]
        assert leaked == [], f"part of a secret leaked: {len(leaked)} pieces"
