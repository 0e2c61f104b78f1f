"""Networks, over real sockets: private CAs, client certificates, forward proxies.

A private CA (trustme) signs the simulator's https certificate and a client
certificate; a real forward proxy (proxy.py, in a subprocess) carries the
proxied calls. Every test asserts on what the server or the proxy saw (the
simulator's counters, the proxy's access log, or a dead proxy that any
proxied call would have failed on), not only on airfleet's own results.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
import requests.utils
import structlog
import trustme
import yaml

import airfleet
import airfleet.network
import airfleet.transport
from _cli import run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet import redaction
from airfleet.cli._context import CliContext
from airfleet.fleet_file import parse_fleet
from airfleet.inventory import Tls
from airfleet.network import EnvironmentProxies, parse_proxy_url, ssl_context
from airfleet.sim import Simulator

PROXY_USER = "fleet-bot"
PROXY_PASSWORD = "pr0xy-s3cret-pw"  # long enough for redaction to mask it (6+)
_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


@pytest.fixture(autouse=True)
def no_network_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test sets the proxy and CA variables it means, and no others."""
    for name in _VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


# -- a private PKI ----------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A private CA and its certificates, as PEM files in one directory."""

    ca: trustme.CA
    server: trustme.LeafCert
    other_server: trustme.LeafCert  # signed by a second private CA
    dir: Path
    ca_pem: Path
    other_ca_pem: Path
    client_pem: Path  # key and certificate chain in one file
    client_cert_pem: Path
    client_key_pem: Path
    stranger_pem: Path  # a client certificate from a CA the server does not trust

    def server_context(
        self, *, require_client: bool = False, other: bool = False
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        (self.other_server if other else self.server).configure_cert(context)
        if require_client:
            self.ca.configure_trust(context)
            context.verify_mode = ssl.CERT_REQUIRED
        return context


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    where = tmp_path_factory.mktemp("pki")
    ca, other_ca = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    other_server = other_ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("fleet-bot@example.com")
    stranger = other_ca.issue_cert("stranger@example.com")
    ca.cert_pem.write_to_path(where / "ca.pem")
    other_ca.cert_pem.write_to_path(where / "other-ca.pem")
    client.private_key_and_cert_chain_pem.write_to_path(where / "client.pem")
    client.cert_chain_pems[0].write_to_path(where / "client-cert.pem")
    client.private_key_pem.write_to_path(where / "client-key.pem")
    stranger.private_key_and_cert_chain_pem.write_to_path(where / "stranger.pem")
    return Pki(
        ca,
        server,
        other_server,
        where,
        where / "ca.pem",
        where / "other-ca.pem",
        where / "client.pem",
        where / "client-cert.pem",
        where / "client-key.pem",
        where / "stranger.pem",
    )


# -- a real forward proxy ---------------------------------------------------------------


@dataclass(frozen=True)
class ForwardProxy:
    """proxy.py on a loopback port, requiring a user and password; its access log."""

    origin: str  # http://127.0.0.1:PORT
    log: Path

    @property
    def url(self) -> str:
        return self.origin.replace("://", f"://{PROXY_USER}:{PROXY_PASSWORD}@")

    def saw(self, needle: str, at_least: int = 1) -> list[str]:
        """Access-log lines containing ``needle``, once there are ``at_least`` of them.

        proxy.py writes a line when a client connection closes; the engine
        has closed its connections when a run's engine exits, so the lines
        come soon after. Waiting is bounded, and what is asserted is the
        lines, not how long they took.
        """
        deadline = time.monotonic() + 15
        while True:
            lines = [
                line
                for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines()
                if "access_log" in line and needle in line
            ]
            if len(lines) >= at_least or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ForwardProxy]:
    where = tmp_path_factory.mktemp("proxy")
    port_file, log = where / "port", where / "access.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "proxy",
                "--hostname",
                "127.0.0.1",
                "--port",
                "0",
                "--port-file",
                str(port_file),
                "--num-workers",
                "1",
                "--num-acceptors",
                "1",
                "--data-dir",
                str(where),
                "--basic-auth",
                f"{PROXY_USER}:{PROXY_PASSWORD}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its workers too are stopped by the group's id
        )
    try:
        port = _wait_listening(process, port_file)
        yield ForwardProxy(f"http://127.0.0.1:{port}", log)
    finally:
        _stop(process)


def _wait_listening(process: subprocess.Popen[bytes], port_file: Path) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"proxy.py exited with {process.returncode} before listening")
        text = port_file.read_text().strip() if port_file.exists() else ""
        if text:
            port = int(text.split()[0])
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
            except OSError:
                pass
            else:
                return port
        time.sleep(0.02)
    raise RuntimeError("proxy.py did not listen within 30 s")


def _stop(process: subprocess.Popen[Any]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(10)
            break
        except subprocess.TimeoutExpired:
            continue


def closed_port() -> int:
    """A loopback port nobody listens on: a dead proxy."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- fleets and runs ----------------------------------------------------------------------


def fleet_text(
    sim: Simulator,
    url: str,
    *,
    auth: str = "token",
    defaults: dict[str, Any] | None = None,
    deployments: dict[int, dict[str, Any]] | None = None,
    profile: dict[str, Any] | None = None,
) -> str:
    """The simulator's fleet.yaml (declared APIs: no detection), with network keys added."""
    document = yaml.safe_load(sim.fleet_yaml(url, auth=auth, api="declared"))  # type: ignore[arg-type]
    document["defaults"].update({"retries": 2, **(defaults or {})})
    for index, extra in (deployments or {}).items():
        document["deployments"][index].update(extra)
    if profile:
        document["auth"][auth].update(profile)
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


async def run_pools(sim: Simulator, text: str, base: Path) -> airfleet.RunReport:
    fleet = parse_fleet(text, source="fleet.yaml", env=sim.env(), base_dir=base)
    async with airfleet.Engine(fleet) as engine:
        return await engine.run(airfleet.plan_pools(fleet.deployments))


@asynccontextmanager
async def serving(
    context: ssl.SSLContext | None, *, deployments: int = 2, prefix: str = "dep"
) -> AsyncIterator[tuple[Simulator, str]]:
    sim = Simulator(deployments=deployments, api="v2", name_prefix=prefix)
    async with sim.running(ssl=context) as server:
        yield sim, server.url


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def by_name(report: airfleet.RunReport) -> dict[str, airfleet.Result]:
    return {r.deployment: r for r in report.results}


# -- private CAs ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_private_ca_fails_without_config_naming_the_fix_and_is_not_retried(
    pki: Pki,
) -> None:
    """No CA configured: each call fails at once (retries allowed, none made) with one
    line naming tls.ca_bundle and REQUESTS_CA_BUNDLE; the server saw no request."""
    async with serving(pki.server_context()) as (sim, url):
        report = await run_pools(sim, fleet_text(sim, url), pki.dir)
        assert sim.stats()["requests_seen"] == 0
    for result in report.results:
        assert not result.ok
        assert result.attempts == 1
        assert result.error is not None
        assert "\n" not in result.error
        assert "not signed by a CA airfleet trusts" in result.error
        assert "tls.ca_bundle" in result.error
        assert "REQUESTS_CA_BUNDLE" in result.error


@pytest.mark.anyio
async def test_ca_bundle_in_defaults_trusts_the_private_ca(pki: Pki) -> None:
    """``defaults.tls.ca_bundle`` (relative to the fleet file): every call is ok, and
    the server answered each of them."""
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}})
        report = await run_pools(sim, text, pki.dir)
        stats = sim.stats()
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    assert stats["requests_by_deployment"] == {"dep-0000": 1, "dep-0001": 1}


@pytest.mark.anyio
@pytest.mark.parametrize("scheme", ["https", "http"])
async def test_building_an_ssl_context_does_not_crowd_a_rate(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, scheme: str
) -> None:
    """An SSL context takes tens of milliseconds to build. Built by the first
    request after its admission, that request arrived with the next one and
    the server counted 13 in a second under a rate of 12. It is built before
    the run (and never for plain http, even with REQUESTS_CA_BUNDLE set)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.ca_pem))
    context = pki.server_context() if scheme == "https" else None
    async with serving(context, deployments=4) as (sim, url):
        text = fleet_text(sim, url, defaults={"max_per_second": 5})
        text = text.replace("version: 1\n", "version: 1\nlimits: {max_per_second: 12}\n", 1)
        fleet = parse_fleet(text, source="fleet.yaml", env=sim.env(), base_dir=pki.dir)
        dags = ["example_etl", "refresh_dims", "nightly_load", "hello", "always_fails"]
        async with airfleet.Engine(fleet) as engine:
            report = await engine.run(airfleet.plan_trigger(fleet.deployments, dags))
        stats = sim.stats()
    assert report.summary.ok == 20, [r.error for r in report.results if r.error]
    assert stats["max_per_second"] <= 12
    assert stats["max_per_second"] >= 10  # the rate was reached: the test can fail


@pytest.mark.anyio
async def test_ca_bundle_on_a_deployment_applies_to_it_and_its_token_url_alone(
    pki: Pki,
) -> None:
    """One deployment's ``tls``: it (and its Airflow 3 ``/auth/token``, a password
    profile's token URL) verifies; the other deployment still fails, unseen."""
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(
            sim, url, auth="password", deployments={0: {"tls": {"ca_bundle": str(pki.ca_pem)}}}
        )
        report = await run_pools(sim, text, pki.dir)
        stats = sim.stats()
    results = by_name(report)
    assert results["dep-0000"].ok, results["dep-0000"].error
    assert not results["dep-0001"].ok
    assert "tls.ca_bundle" in (results["dep-0001"].error or "")
    assert stats["token_fetches"]["jwt"] == {"dep-0000": 1}
    assert "dep-0001" not in stats["requests_by_deployment"]


@pytest.mark.anyio
@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
async def test_requests_ca_bundle_in_the_environment_is_trusted(
    pki: Pki, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """requests' variables for a CA bundle are honoured, with no key in the file."""
    monkeypatch.setenv(variable, str(pki.ca_pem))
    async with serving(pki.server_context()) as (sim, url):
        report = await run_pools(sim, fleet_text(sim, url), pki.dir)
        assert sim.stats()["requests_total"] == 2
    assert all(r.ok for r in report.results), [r.error for r in report.results]


@pytest.mark.anyio
async def test_an_unusable_requests_ca_bundle_fails_each_call_naming_it(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REQUESTS_CA_BUNDLE naming no file: every call fails at once saying so, and
    nothing is sent; a ca_bundle in the file wins over the variable."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pki.dir / "gone.pem"))
    async with serving(pki.server_context()) as (sim, url):
        report = await run_pools(sim, fleet_text(sim, url), pki.dir)
        assert sim.stats()["requests_seen"] == 0
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}})
        explicit = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_total"] == 2
    for result in report.results:
        assert result.attempts == 1
        assert "REQUESTS_CA_BUNDLE: " in (result.error or "")
        assert "gone.pem: no such file" in (result.error or "")
    assert all(r.ok for r in explicit.results), [r.error for r in explicit.results]


def test_ca_bundle_is_added_to_the_system_store_not_put_in_its_place(pki: Pki) -> None:
    """The context holds the system store's CAs and, besides them, the bundle's."""
    system = ssl.create_default_context().cert_store_stats()["x509_ca"]
    context = ssl_context(Tls(ca_bundle=str(pki.ca_pem)))
    assert system > 0
    assert context.cert_store_stats()["x509_ca"] == system + 1
    subjects = [str(ca["subject"]) for ca in context.get_ca_certs()]
    assert sum("trustme" in subject for subject in subjects) == 1  # the bundle's one CA


@pytest.mark.anyio
async def test_ssl_cert_file_still_works_beside_ca_bundle(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL's SSL_CERT_FILE (standing in for the system store here) and a
    ca_bundle are both trusted in one run: two servers, one per private CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki.other_ca_pem))
    async with (
        serving(pki.server_context(), prefix="ours") as (ours, ours_url),
        serving(pki.server_context(other=True), prefix="theirs") as (theirs, theirs_url),
    ):
        document = yaml.safe_load(fleet_text(ours, ours_url))
        other = yaml.safe_load(fleet_text(theirs, theirs_url))
        document["deployments"] += other["deployments"]
        document["defaults"]["tls"] = {"ca_bundle": "ca.pem"}
        report = await run_pools(ours, yaml.safe_dump(document), pki.dir)
        seen = (ours.stats()["requests_total"], theirs.stats()["requests_total"])
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    assert seen == (2, 2)


def test_the_sim_command_serves_https_with_given_files(pki: Pki, tmp_path: Path) -> None:
    """``airfleet sim --tls-cert`` serves https and writes a fleet.yaml for it;
    with the CA as ca_bundle every call is ok, as the simulator's stats say."""
    pki.server.private_key_and_cert_chain_pem.write_to_path(tmp_path / "server.pem")
    config = tmp_path / "sim-fleet.yaml"
    command = [sys.executable, "-m", "airfleet", "sim", "--deployments", "2", "--port", "0"]
    command += ["--api", "v2", "--auth", "token", "--tls-cert", str(tmp_path / "server.pem")]
    command += ["--write-config", str(config)]
    with subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as process:
        try:
            assert process.stderr is not None
            first = process.stderr.readline()  # "simulated fleet of 2 deployments at URL/d/<name>"
            url = first.split(" at ", 1)[1].split("/d/", 1)[0]
            assert url.startswith("https://127.0.0.1:"), first
            while "deployments" not in (config.read_text() if config.exists() else ""):
                time.sleep(0.02)
            document = yaml.safe_load(config.read_text())
            document["defaults"]["tls"] = {"ca_bundle": str(pki.ca_pem)}
            sim = Simulator(deployments=2, api="v2")  # the same seed: the same credentials
            report = anyio.run(run_pools, sim, yaml.safe_dump(document), tmp_path)
            trusting = ssl.create_default_context(cafile=pki.ca_pem)
            with urllib.request.urlopen(f"{url}/_sim/stats", context=trusting) as answer:  # noqa: S310 - loopback
                stats = json.loads(answer.read())
        finally:
            _stop(process)
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    assert stats["requests_total"] == 2


# -- client certificates ----------------------------------------------------------------


@pytest.mark.anyio
async def test_a_server_that_requires_a_client_certificate_names_tls_client_cert(
    pki: Pki,
) -> None:
    """Without a client certificate: one attempt, a message naming tls.client_cert,
    and the server (which refused the handshake) saw no request."""
    async with serving(pki.server_context(require_client=True)) as (sim, url):
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}})
        report = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_seen"] == 0
    for result in report.results:
        assert not result.ok
        assert result.attempts == 1
        assert "requires a client certificate" in (result.error or "")
        assert "tls.client_cert" in (result.error or "")


@pytest.mark.anyio
@pytest.mark.parametrize("files", ["one file", "two files"])
async def test_a_client_certificate_is_presented(pki: Pki, files: str) -> None:
    """``client_cert`` holding the key, or ``client_cert`` plus ``client_key``: the
    server verifies it and answers."""
    tls: dict[str, Any] = {"ca_bundle": "ca.pem", "client_cert": "client.pem"}
    if files == "two files":
        tls.update(client_cert="client-cert.pem", client_key="client-key.pem")
    async with serving(pki.server_context(require_client=True)) as (sim, url):
        report = await run_pools(sim, fleet_text(sim, url, defaults={"tls": tls}), pki.dir)
        assert sim.stats()["requests_total"] == 2
    assert all(r.ok for r in report.results), [r.error for r in report.results]


@pytest.mark.anyio
async def test_a_client_certificate_the_server_does_not_trust_is_named(pki: Pki) -> None:
    """A certificate from another CA: refused, and the message says it was ours."""
    tls = {"ca_bundle": "ca.pem", "client_cert": "stranger.pem"}
    async with serving(pki.server_context(require_client=True)) as (sim, url):
        report = await run_pools(sim, fleet_text(sim, url, defaults={"tls": tls}), pki.dir)
        assert sim.stats()["requests_seen"] == 0
    for result in report.results:
        assert result.attempts == 1
        assert "refused the client certificate of tls.client_cert" in (result.error or "")


@pytest.mark.anyio
async def test_a_token_url_is_reached_with_its_profiles_tls(pki: Pki) -> None:
    """A client-credentials profile's ``tls`` is for its token URL: without it the
    token fetch fails naming tls.ca_bundle (the token service saw nothing); with
    it one token is fetched and every call is ok."""
    async with serving(pki.server_context()) as (sim, url):
        per_deployment = {i: {"tls": {"ca_bundle": "ca.pem"}} for i in range(2)}
        text = fleet_text(sim, url, auth="oauth", deployments=per_deployment)
        without = await run_pools(sim, text, pki.dir)
        assert sim.stats()["token_fetches"]["oauth"] == 0
        text = fleet_text(
            sim,
            url,
            auth="oauth",
            deployments=per_deployment,
            profile={"tls": {"ca_bundle": "ca.pem"}},
        )
        with_tls = await run_pools(sim, text, pki.dir)
        stats = sim.stats()
    for result in without.results:
        assert "token endpoint" in (result.error or "")
        assert "tls.ca_bundle" in (result.error or "")
    assert all(r.ok for r in with_tls.results), [r.error for r in with_tls.results]
    assert stats["token_fetches"]["oauth"] == 1


@pytest.mark.anyio
async def test_one_ssl_context_per_distinct_setting(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four deployments with two distinct settings, run twice: two contexts built."""
    built: list[Tls] = []
    real = airfleet.network.ssl_context

    def counting(tls: Tls, env_bundle: str | None = None) -> ssl.SSLContext:
        built.append(tls)
        return real(tls, env_bundle)

    # The transport's own reference to the builder: the transport itself is real.
    monkeypatch.setattr(airfleet.transport, "ssl_context", counting)
    async with serving(pki.server_context(), deployments=4) as (sim, url):
        text = fleet_text(
            sim,
            url,
            defaults={"tls": {"ca_bundle": "ca.pem"}},
            deployments={3: {"tls": {"client_cert": "client.pem"}}},
        )
        fleet = parse_fleet(text, env=sim.env(), base_dir=pki.dir)
        async with airfleet.Engine(fleet) as engine:
            for _ in range(2):
                report = await engine.run(airfleet.plan_pools(fleet.deployments))
                assert all(r.ok for r in report.results), [r.error for r in report.results]
        assert sim.stats()["requests_total"] == 8
    assert len(built) == 2
    assert {t.client_cert is not None for t in built} == {True, False}


# -- verify: false ------------------------------------------------------------------------


def test_verify_false_reaches_an_untrusted_server_and_warns_on_every_run(
    pki: Pki,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two CLI runs in this process, each against a server no CA vouches for: each
    is answered, and each logs one warning naming the deployments it applies to."""
    sim = Simulator(deployments=2, api="v2")
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    warnings: list[list[MutableMapping[str, Any]]] = []
    with sim_in_thread(sim, ssl=pki.server_context()) as running:
        config = tmp_path / "fleet.yaml"
        config.write_text(fleet_text(sim, running.url, defaults={"tls": {"verify": False}}))
        for _ in range(2):
            context = CliContext(config_path=str(config))
            fleet = context.fleet()
            with structlog.testing.capture_logs() as logs:
                code = context.execute(
                    fleet, airfleet.plan_pools(fleet.deployments), report_format="json", output=None
                )
            assert code == 0
            warnings.append([e for e in logs if "tls.verify: false" in e["event"]])
        assert sim.stats()["requests_total"] == 4
    capsys.readouterr()  # the two reports
    assert [len(w) for w in warnings] == [1, 1]
    for (event,) in warnings:
        assert event["log_level"] == "warning"
        assert event["applies_to"] == "deployment dep-0000, deployment dep-0001"


def test_the_cli_shows_the_verify_false_warning_on_stderr_without_verbose(
    pki: Pki, tmp_path: Path
) -> None:
    """Without -v, stderr still carries the warning; the server answered."""
    sim = Simulator(deployments=2, api="v2")
    with sim_in_thread(sim, ssl=pki.server_context()) as running:
        config = tmp_path / "fleet.yaml"
        config.write_text(fleet_text(sim, running.url, deployments={1: {"tls": {"verify": False}}}))
        out = run_airfleet("-c", str(config), "pools", "-s", "dep-0001", env=sim.env())
        assert sim.stats()["requests_by_deployment"] == {"dep-0001": 1}
    assert out.returncode == 0, out.stderr
    assert "tls.verify: false" in out.stderr
    assert "deployment dep-0001" in out.stderr


# -- proxies ------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("variable", ["HTTP_PROXY", "http_proxy"])
async def test_http_proxy_carries_plain_http_calls(
    pki: Pki, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    """HTTP_PROXY (or http_proxy), loopback included: the proxy forwarded each call,
    with the credentials of its URL."""
    monkeypatch.setenv(variable, proxy.url)
    async with serving(None) as (sim, url):
        report = await run_pools(sim, fleet_text(sim, url), pki.dir)
        assert sim.stats()["requests_total"] == 2
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    lines = proxy.saw(f"GET 127.0.0.1:{port_of(url)}/d/", at_least=2)
    assert len(lines) == 2
    assert all("200 OK" in line for line in lines)


@pytest.mark.anyio
async def test_https_proxy_tunnels_https_calls_with_connect(
    pki: Pki, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY: https calls go through a CONNECT tunnel, TLS end to end with the
    server (its private CA still verified)."""
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}})
        report = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_total"] == 2
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    assert proxy.saw(f"CONNECT 127.0.0.1:{port_of(url)} ")


@pytest.mark.anyio
async def test_no_proxy_bypasses_the_environments_proxy(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY names a dead proxy: every call fails saying so (the server saw
    nothing), until NO_PROXY=127.0.0.1 sends them direct."""
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HTTPS_PROXY", dead)
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}, "retries": 0})
        proxied = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_seen"] == 0
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        direct = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_total"] == 2
    for result in proxied.results:
        assert f"cannot connect to the proxy {dead}" in (result.error or "")
    assert all(r.ok for r in direct.results), [r.error for r in direct.results]


@pytest.mark.anyio
async def test_the_proxy_key_needs_no_environment_and_wins_over_it(
    pki: Pki, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``proxy:`` on a deployment beats ``defaults.proxy``, which beats HTTPS_PROXY:
    here the environment's and the default's proxies are dead, the deployment's
    is real and carried its calls."""
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(
            sim,
            url,
            defaults={"tls": {"ca_bundle": "ca.pem"}, "retries": 0, "proxy": dead},
            deployments={0: {"proxy": proxy.url}},
        )
        report = await run_pools(sim, text, pki.dir)
        stats = sim.stats()
    results = by_name(report)
    assert results["dep-0000"].ok, results["dep-0000"].error
    assert f"cannot connect to the proxy {dead}" in (results["dep-0001"].error or "")
    assert stats["requests_by_deployment"] == {"dep-0000": 1}
    assert proxy.saw(f"CONNECT 127.0.0.1:{port_of(url)} ")


@pytest.mark.anyio
async def test_proxy_false_goes_direct_even_when_the_environment_names_one(
    pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``proxy: false``: the environment's (dead) proxy is not used."""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{closed_port()}")
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}, "proxy": False})
        report = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_total"] == 2
    assert all(r.ok for r in report.results), [r.error for r in report.results]


@pytest.mark.anyio
async def test_a_proxy_refusing_the_credentials_is_named_and_not_retried(
    pki: Pki, proxy: ForwardProxy
) -> None:
    """A wrong proxy password: the CONNECT is refused (407), the message names the
    proxy's origin and says what to check, once, with no retry."""
    wrong = proxy.origin.replace("://", f"://{PROXY_USER}:not-the-password@")
    async with serving(pki.server_context()) as (sim, url):
        text = fleet_text(sim, url, defaults={"tls": {"ca_bundle": "ca.pem"}, "proxy": wrong})
        report = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_seen"] == 0
    for result in report.results:
        assert result.attempts == 1
        assert f"the proxy {proxy.origin} refused to open a tunnel" in (result.error or "")
        assert "407" in (result.error or "")
        assert "not-the-password" not in (result.error or "")


@pytest.mark.anyio
async def test_a_token_url_is_reached_through_its_profiles_proxy(
    pki: Pki, proxy: ForwardProxy
) -> None:
    """A client-credentials profile's ``proxy`` is for its token URL alone: a dead
    one fails the token fetch naming it (the token service saw nothing); the
    real one tunnels the fetch while the deployments' calls go direct."""
    dead = f"http://127.0.0.1:{closed_port()}"
    async with serving(pki.server_context()) as (sim, url):
        tls = {"tls": {"ca_bundle": "ca.pem"}}
        text = fleet_text(
            sim, url, auth="oauth", defaults={**tls, "retries": 0}, profile={"proxy": dead}
        )
        failed = await run_pools(sim, text, pki.dir)
        assert sim.stats()["requests_seen"] == 0
        text = fleet_text(
            sim, url, auth="oauth", defaults={**tls, "retries": 0}, profile={"proxy": proxy.url}
        )
        report = await run_pools(sim, text, pki.dir)
        stats = sim.stats()
    for result in failed.results:
        assert f"cannot connect to the proxy {dead}" in (result.error or "")
    assert all(r.ok for r in report.results), [r.error for r in report.results]
    assert stats["token_fetches"]["oauth"] == 1
    assert stats["requests_total"] == 2
    assert proxy.saw(f"CONNECT 127.0.0.1:{port_of(url)} ")


def test_a_proxy_password_never_shows_in_reports_errors_or_verbose_logs(
    pki: Pki, proxy: ForwardProxy, tmp_path: Path
) -> None:
    """One deployment through the real proxy, one through a dead one, both with
    the password from the environment, ``-v --log-format json``: the first is
    ok, the second names the dead proxy's origin, and no output holds the
    password or the Proxy-Authorization value it makes."""
    dead = f"http://127.0.0.1:{closed_port()}"
    with_password = "http://" + PROXY_USER + ":${PROXY_PASSWORD}@"
    sim = Simulator(deployments=2, api="v2")
    with sim_in_thread(sim, ssl=pki.server_context()) as running:
        config = tmp_path / "fleet.yaml"
        config.write_text(
            fleet_text(
                sim,
                running.url,
                defaults={"tls": {"ca_bundle": str(pki.ca_pem)}, "retries": 0},
                deployments={
                    0: {"proxy": with_password + proxy.origin.split("://")[1]},
                    1: {"proxy": with_password + dead.split("://")[1]},
                },
            )
        )
        out = run_airfleet(
            "-v",
            "--log-format",
            "json",
            "-c",
            str(config),
            "pools",
            "--report",
            "json",
            env={**sim.env(), "PROXY_PASSWORD": PROXY_PASSWORD},
        )
        assert sim.stats()["requests_by_deployment"] == {"dep-0000": 1}
    assert out.returncode == 1, out.stderr
    results = {r["deployment"]: r for r in json.loads(out.stdout)["results"]}
    assert results["dep-0000"]["outcome"] == "ok"
    assert f"cannot connect to the proxy {dead}" in results["dep-0001"]["error"]
    header = base64.b64encode(f"{PROXY_USER}:{PROXY_PASSWORD}".encode()).decode()
    for text in (out.stdout, out.stderr):
        assert PROXY_PASSWORD not in text
        assert header not in text
    assert f"cannot connect to the proxy {dead}" in out.stderr  # -v logged the attempt
    assert proxy.saw(f"CONNECT 127.0.0.1:{port_of(running.url)} ")


def test_a_proxy_url_keeps_its_password_to_itself() -> None:
    """Parsed: the password is a Secret (masked by redaction) and in no repr; a
    malformed URL's error masks the user info, even with an unencoded '/' in it."""
    parsed = parse_proxy_url(f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:3128")
    assert parsed.url == "http://proxy.internal:3128"
    assert parsed.password is not None
    assert parsed.password.reveal() == PROXY_PASSWORD
    assert PROXY_PASSWORD not in repr(parsed)
    assert redaction.scrub(f"x {PROXY_PASSWORD} y") == "x *** y"
    # A variable without a scheme is an http proxy, as curl takes it.
    assert parse_proxy_url("proxy.internal:3128", assume_http=True).url == (
        "http://proxy.internal:3128"
    )
    for bad in (
        f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:99999",
        f"ftp://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:3128",
        f"http://{PROXY_USER}:pr0xy/s3cret@proxy.internal:3128",
    ):
        with pytest.raises(ValueError, match=r"\*\*\*@proxy\.internal") as caught:
            parse_proxy_url(bad)
        assert "s3cret" not in str(caught.value)


# requests' own choice for each (environment, URL), compared with ours.
PROXY_ENVIRONMENTS: list[dict[str, str]] = [
    {"HTTP_PROXY": "http://h-proxy:1"},
    {"HTTPS_PROXY": "http://s-proxy:2"},
    {"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:1"},
    {"ALL_PROXY": "http://a-proxy:3", "HTTPS_PROXY": "http://s-proxy:2"},
    {"HTTPS_PROXY": "http://s-proxy:2", "NO_PROXY": "example.com"},
    {"HTTPS_PROXY": "http://s-proxy:2", "NO_PROXY": ".example.com"},
    {"HTTPS_PROXY": "http://s-proxy:2", "NO_PROXY": "10.0.0.0/8"},
    {"HTTPS_PROXY": "http://s-proxy:2", "NO_PROXY": "*"},
    {"HTTPS_PROXY": "http://s-proxy:2", "NO_PROXY": "api.example.com:8443"},
    {"HTTPS_PROXY": "http://s-proxy:2", "HTTP_PROXY": "http://h:1", "NO_PROXY": "127.0.0.1"},
    {"HTTPS_PROXY": "http://s-proxy:2", "no_proxy": "other.org, localhost"},
]
URLS = [
    "http://example.com/x",
    "https://example.com/x",
    "https://api.example.com:8443/x",
    "https://api.example.com/x",
    "https://10.1.2.3/x",
    "http://127.0.0.1:8080/x",
    "https://localhost/x",
    "https://other.org/x",
]


@pytest.mark.parametrize("environment", PROXY_ENVIRONMENTS, ids=lambda e: ",".join(e))
def test_environment_proxies_are_chosen_as_requests_chooses_them(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    """For each URL, the proxy we pick is the one requests picks (or none for both)."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    ours = EnvironmentProxies()
    for url in URLS:
        theirs = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
        if theirs is not None:
            theirs = requests.utils.prepend_scheme_if_needed(theirs, "http")
        mine = ours.proxy_for(url)
        assert (mine.url if mine else None) == theirs, (url, environment)


# -- config errors ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_sim() -> Iterator[SimThread]:
    with sim_in_thread(Simulator(deployments=2, api="v2")) as running:
        yield running


NETWORK_CONFIG_ERRORS: list[tuple[str, Callable[[Path], dict[str, Any]], str, str]] = [
    (
        "missing ca_bundle",
        lambda d: {"tls": {"ca_bundle": "missing.pem"}},
        "ca_bundle",
        "missing.pem: no such file",
    ),
    (
        "client_key without client_cert",
        lambda d: {"tls": {"client_key": "key.pem"}},
        "client_key",
        "client_key needs client_cert",
    ),
    (
        "unknown key under tls",
        lambda d: {"tls": {"verfy": False}},
        "verfy",
        "unknown key 'verfy' (did you mean 'verify'?)",
    ),
    (
        "bad proxy url",
        lambda d: {"proxy": f"http://{PROXY_USER}:{PROXY_PASSWORD}@proxy.internal:99999"},
        "proxy",
        "'http://***@proxy.internal:99999' is not a proxy URL",
    ),
    ("proxy true", lambda d: {"proxy": True}, "proxy", "true is not a proxy"),
    (
        "not a PEM file",
        lambda d: {"tls": {"ca_bundle": str(d / "fleet.yaml")}},
        "ca_bundle",
        "not a PEM file of CA certificates",
    ),
]


@pytest.mark.parametrize(
    ("name", "keys", "key", "message"),
    NETWORK_CONFIG_ERRORS,
    ids=[case[0] for case in NETWORK_CONFIG_ERRORS],
)
def test_network_config_errors_are_one_line_with_file_and_line_exit_2(
    plain_sim: SimThread,
    tmp_path: Path,
    name: str,
    keys: Callable[[Path], dict[str, Any]],
    key: str,
    message: str,
) -> None:
    """Exit 2, one stderr line with the file, the line of the key and the problem,
    no traceback, no password, and the server saw nothing."""
    sim = plain_sim.sim
    config = tmp_path / "fleet.yaml"
    config.write_text(fleet_text(sim, plain_sim.url, deployments={1: keys(tmp_path)}))
    lines_of_file = config.read_text().splitlines()
    start = next(n for n, text in enumerate(lines_of_file) if "name: dep-0001" in text)
    line = next(
        n
        for n, text in enumerate(lines_of_file, 1)
        if n > start and text.strip().startswith(f"{key}:")
    )
    before = plain_sim.stats()["requests_seen"]
    out = run_airfleet("-c", str(config), "pools", env=sim.env())
    assert out.returncode == 2, (name, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, (name, out.stderr)
    assert f"{config}:{line}: deployments[1]" in lines[0], (name, lines[0], line)
    assert message in lines[0], (name, lines[0])
    assert "Traceback" not in out.stderr
    assert PROXY_PASSWORD not in out.stderr
    assert plain_sim.stats()["requests_seen"] == before


MINIMAL = """\
version: 1
auth:
  t: {kind: token, token: tok-abcdef}
  login: {kind: password, username: admin, password: pw-abcdef}
defaults:
  auth: t
deployments:
  - name: a
    url: https://a.example.com
"""
# (what is wrong, the lines that add it, what the error must say)
WRONG_VALUES: list[tuple[str, str, str]] = [
    ("empty path", "    tls: {ca_bundle: ''}\n", "tls.ca_bundle: String should have at least"),
    ("NUL in a path", '    tls: {client_cert: "a\\0b"}\n', "tls.client_cert: a file name cannot"),
    ("a number as proxy", "    proxy: 3128\n", "proxy: a number is not a proxy"),
    ("a list as proxy", "    proxy: [a]\n", "proxy: a list is not a proxy"),
    ("a host with spaces", "    proxy: 'http://pro xy:3128'\n", "is not a proxy URL"),
    ("a path on a proxy", "    proxy: 'http://proxy:3128/x'\n", "without a path"),
    ("verify as text", "    tls: {verify: 'no'}\n", "tls.verify: Input should be a valid boolean"),
    ("tls not a mapping", "    tls: [ca.pem]\n", "deployments[0].tls: Input should be"),
]


@pytest.mark.parametrize(
    ("name", "lines", "message"), WRONG_VALUES, ids=[w[0] for w in WRONG_VALUES]
)
def test_wrong_network_values_are_config_errors(name: str, lines: str, message: str) -> None:
    """Every wrong value under proxy or tls is a ConfigError on line 10, nothing else."""
    with pytest.raises(airfleet.ConfigError) as caught:
        parse_fleet(MINIMAL + lines, source="fleet.yaml")
    assert str(caught.value).startswith("fleet.yaml:10: deployments[0]."), str(caught.value)
    assert message in str(caught.value)


@pytest.mark.parametrize(("kind", "key"), [("password", "tls"), ("token", "proxy")])
def test_network_keys_on_profiles_that_fetch_from_no_url_of_their_own_say_where_they_go(
    kind: str, key: str
) -> None:
    """A password profile's token URL is the deployment's; a token profile fetches
    nothing: either way the key belongs on the deployments or in defaults."""
    name = "login" if kind == "password" else "t"
    text = MINIMAL.replace(
        f"  {name}: {{kind: {kind}, ", f"  {name}: {{{key}: {{}}, kind: {kind}, "
    )
    with pytest.raises(airfleet.ConfigError, match=f"a {kind} profile takes no '{key}'") as caught:
        parse_fleet(text, source="fleet.yaml")
    assert "set " + key + " on the deployments, or in defaults" in str(caught.value)


def test_deployment_tls_keys_override_defaults_key_by_key(pki: Pki) -> None:
    """A deployment's tls keys replace defaults' one by one; paths resolve against
    the fleet file's directory; equal settings are one shared object."""
    text = MINIMAL.replace(
        "defaults:\n", "defaults:\n  tls: {ca_bundle: ca.pem, verify: false}\n"
    ) + (
        "    tls: {client_cert: client.pem, verify: true}\n"
        "  - name: b\n    url: https://b.example.com\n"
        "  - name: c\n    url: https://c.example.com\n"
    )
    (config := pki.dir / "fleet-key-by-key.yaml").write_text(text)
    a, b, c = airfleet.load_fleet(config).deployments
    assert a.network.tls == Tls(str(pki.ca_pem), str(pki.client_pem), None, True)
    assert b.network.tls == Tls(str(pki.ca_pem), None, None, False)
    assert b.network is c.network
