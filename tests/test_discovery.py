"""Discovery from the Astro platform API, end to end against the simulator's platform.

The simulator serves Astro's v1 platform API as production does what a
client must survive: pages smaller than the limit asked for, deployments
without their workspace's name, URLs without a scheme and with the API's
prefix (over https, signed by a private CA), hibernating deployments, and
the per-token rate enforced with 429. Every assertion on what was sent is
on what the simulated servers counted.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

import airfleet
from _cli import run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet._yaml import load_located
from airfleet.discovery import PAGE_SIZE, astro_api_url, deployment_from_astro
from airfleet.engine import Engine
from airfleet.errors import ConfigError, DiscoveryError
from airfleet.fleet_file import load_fleet, parse_fleet
from airfleet.fleet_freeze import freeze_fleet
from airfleet.inventory import AstroSource, Deployment, Secret
from airfleet.operations import plan_health, plan_trigger
from airfleet.results import Outcome
from airfleet.selection import select
from airfleet.sim import Simulator
from airfleet.sim.simulator import ENV_VARS

pytestmark = pytest.mark.anyio

WORKSPACES = ("analytics", "finance", "platform")


@dataclass(frozen=True)
class Tls:
    ca_pem: Path
    server: ssl.SSLContext


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    pem = tmp_path_factory.mktemp("discovery-ca") / "ca.pem"
    ca.cert_pem.write_to_path(pem)
    return Tls(pem, context)


def _fleet_text(sim: Simulator, url: str, tls: Tls, **kwargs: Any) -> str:
    return sim.discovery_yaml(url, extra_defaults={"tls": {"ca_bundle": str(tls.ca_pem)}}, **kwargs)


@pytest.fixture
async def astro(tls: Tls) -> AsyncIterator[tuple[Simulator, str]]:
    """250 deployments in 3 workspaces, a tenth hibernating; pages of at most 5,
    so reading them all takes 50 requests: the platform's rate is what paces them."""
    sim = Simulator(deployments=250, api="mixed", seed=18)
    sim.enable_astro(workspaces=WORKSPACES, page_max=5)
    async with sim.running(ssl=tls.server) as server:
        yield sim, server.url


def _env(sim: Simulator) -> dict[str, str]:
    return sim.env()


def _line_of_source(text: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("- astro:"))


# -- the issue's scenario, in-process ----------------------------------------------------


async def test_250_astro_deployments_discovered_selected_by_workspace_and_run(
    astro: tuple[Simulator, str], tls: Tls
) -> None:
    sim, url = astro
    fleet = parse_fleet(_fleet_text(sim, url, tls), env=_env(sim))
    assert fleet.deployments == ()  # nothing static: all of it comes from the platform

    found = await airfleet.discover(fleet)

    assert len(found.deployments) == 250
    assert found.discovery == ()
    platform = sim.stats()["astro"]
    assert platform["requests_by_endpoint"] == {"deployments": 50, "workspaces": 1}
    # The documented per-token rate, as the platform counted arrivals.
    assert platform["max_per_second"] <= 25
    assert platform["rate_limited"] == 0
    # A large page was asked for; the platform gave 5 and paging followed it.
    assert set(platform["limits_asked"]) == {PAGE_SIZE}

    asleep = {d.name for d in found.deployments if d.unavailable}
    assert asleep == {n for n in sim.names if sim.astro and sim.astro.hibernating(n)}
    assert len(asleep) == 25
    by_name = {d.name: d for d in found.deployments}
    assert by_name["dep-0000"].api == "v2"
    assert "airflow3" in by_name["dep-0000"].tags
    assert by_name["dep-0001"].api == "v1"
    assert "airflow2" in by_name["dep-0001"].tags
    assert by_name["dep-0009"].tags >= {"dev", "analytics"}
    # The scheme the platform left out is https, and the API prefix is airfleet's own.
    assert by_name["dep-0000"].url == f"{url}/d/dep-0000"

    analytics = select(found.deployments, ["tag:analytics"])
    assert len(analytics) == 84
    sim.reset_stats()
    async with Engine(found) as engine:
        report = await engine.run(plan_trigger(analytics, ["example_etl"]))

    results = {r.deployment: r for r in report.results}
    awake = {d.name for d in analytics if not d.unavailable}
    assert {n for n, r in results.items() if r.outcome is Outcome.OK} == awake
    for name in {d.name for d in analytics} - awake:
        assert results[name].outcome is Outcome.SKIPPED
        assert results[name].error == "hibernating (Astro status HIBERNATING)"
        assert results[name].data["deployment_status"] == "HIBERNATING"
        assert results[name].requests == 0
    assert all(results[n].data["deployment_status"] == "HEALTHY" for n in awake)
    stats = sim.stats()
    # Not one request to a hibernating deployment, and no detection: a
    # trigger's own two (the run, then its DAG's paused flag) and no more.
    assert stats["requests_by_deployment"] == dict.fromkeys(awake, 2)
    assert "version" not in stats["requests_by_endpoint"]
    assert stats["runs_total"] == len(awake)
    assert report.summary.exit_code == 0  # a skip is not a failure


async def test_the_platform_s_429_and_retry_after_are_honoured(tls: Tls) -> None:
    sim = Simulator(deployments=60, api="v2", seed=3)
    # The server allows 3 a second; the client's pacing, at 25, meets 429s.
    org = sim.enable_astro(page_max=5, per_second=3, hibernating_every=None)
    async with sim.running(ssl=tls.server) as server:
        fleet = parse_fleet(_fleet_text(sim, server.url, tls), env=_env(sim))
        found = await airfleet.discover(fleet)
    assert len(found.deployments) == 60
    platform = sim.stats()["astro"]
    # 13 pages. Each 429 asks for a second's pause; a client that waited less
    # would meet a 429 on nearly every request after the first three.
    assert platform["rate_limited"] >= 1
    assert platform["requests"] - platform["rate_limited"] == 13
    assert platform["rate_limited"] <= 13 // 3 + 2
    assert org.entries  # the organization is what was listed


async def test_a_late_first_arrival_does_not_crowd_the_platform_s_window(tls: Tls) -> None:
    sim = Simulator(deployments=200, api="v2", seed=2)
    # The first request lands 300 ms after it left (a handshake across the
    # world), among the ones sent after it; the platform counts arrivals.
    org = sim.enable_astro(page_max=5, hibernating_every=None, workspace_names=True)
    org.first_arrival_ms = 300
    async with sim.running(ssl=tls.server) as server:
        found = await airfleet.discover(
            parse_fleet(_fleet_text(sim, server.url, tls), env=_env(sim))
        )
    assert len(found.deployments) == 200
    platform = sim.stats()["astro"]
    assert platform["requests"] == 40
    assert platform["max_per_second"] <= 25
    assert platform["rate_limited"] == 0


async def test_sources_sharing_a_token_share_its_rate(
    astro: tuple[Simulator, str], tls: Tls
) -> None:
    sim, url = astro
    assert sim.astro is not None
    ids = {name: ident for ident, name in sim.astro.workspaces.items()}
    text = f"""
version: 1
defaults: {{tls: {{ca_bundle: "{tls.ca_pem}"}}}}
discover:
  - astro:
      organization: {sim.astro.organization}
      token: ${{AIRFLEET_SIM_TOKEN}}
      api_url: {url}/astro
      workspaces: [{ids["analytics"]}]
  - astro:
      organization: {sim.astro.organization}
      token: ${{AIRFLEET_SIM_TOKEN}}
      api_url: {url}/astro
      workspaces: [{ids["finance"]}, {ids["platform"]}]
"""
    found = await airfleet.discover(parse_fleet(text, env=_env(sim)))
    assert len(found.deployments) == 250
    platform = sim.stats()["astro"]
    assert platform["max_per_second"] <= 25  # two sources, one token: one rate
    assert platform["rate_limited"] == 0
    # The second source's profile is named after its place.
    assert {d.auth for d in found.deployments} == {"astro", "astro-2"}


async def test_workspace_filter_and_names_given_with_the_deployments(tls: Tls) -> None:
    sim = Simulator(deployments=30, api="mixed", seed=5)
    org = sim.enable_astro(workspace_names=True)
    async with sim.running(ssl=tls.server) as server:
        text = _fleet_text(sim, server.url, tls, workspaces=["finance"])
        found = await airfleet.discover(parse_fleet(text, env=_env(sim)))
    assert {d.name for d in found.deployments} == {
        name
        for name, entry in org.entries.items()
        if org.workspaces[entry.workspace_id] == "finance"
    }
    assert all("finance" in d.tags for d in found.deployments)
    # Names came with the deployments: the workspaces endpoint was not needed.
    assert sim.stats()["astro"]["requests_by_endpoint"] == {"deployments": 1}


async def test_a_platform_refusing_large_pages_is_read_in_its_default_pages(tls: Tls) -> None:
    sim = Simulator(deployments=45, api="v2", seed=6)
    sim.enable_astro(limit_max=40, hibernating_every=None, workspace_names=True)
    async with sim.running(ssl=tls.server) as server:
        found = await airfleet.discover(
            parse_fleet(_fleet_text(sim, server.url, tls), env=_env(sim))
        )
    assert len(found.deployments) == 45
    # 100 refused with 400, then the default page of 20: three pages.
    assert sim.stats()["astro"]["limits_asked"] == [PAGE_SIZE, None, None, None]


async def test_statuses_other_than_hibernating_are_attempted_and_reported(tls: Tls) -> None:
    sim = Simulator(deployments=4, api="mixed", seed=7)
    org = sim.enable_astro(hibernating_every=None)
    org.entries["dep-0001"].status = "UNHEALTHY"
    org.entries["dep-0002"].status = "DEPLOYING"
    async with sim.running(ssl=tls.server) as server:
        found = await airfleet.discover(
            parse_fleet(_fleet_text(sim, server.url, tls), env=_env(sim))
        )
        async with Engine(found) as engine:
            report = await engine.run(plan_health(found.deployments))
    results = {r.deployment: r for r in report.results}
    assert all(r.outcome is Outcome.OK for r in results.values())
    assert results["dep-0001"].data["deployment_status"] == "UNHEALTHY"
    assert results["dep-0002"].data["deployment_status"] == "DEPLOYING"
    assert sim.stats()["requests_by_deployment"] == dict.fromkeys(sim.names, 2)


# -- failures: one clear error, nothing sent to a deployment ----------------------------


async def test_a_refused_token_is_one_error_without_the_token(tls: Tls) -> None:
    sim = Simulator(deployments=3, api="v2", seed=8)
    org = sim.enable_astro()
    org.echo_credentials = True  # the refusal quotes the header it was sent
    wrong = "astro-wrong-token-5f0c2a9e11"
    async with sim.running(ssl=tls.server) as server:
        fleet = parse_fleet(_fleet_text(sim, server.url, tls), env={ENV_VARS["api_token"]: wrong})
        with pytest.raises(DiscoveryError) as caught:
            await airfleet.discover(fleet)
    message = str(caught.value)
    assert "HTTP 401" in message
    assert "refused the token" in message
    assert org.organization in message
    assert "<string>" in message
    assert wrong not in message
    assert wrong[:8] not in message
    assert wrong[-8:] not in message
    assert caught.value.exit_code == 2
    assert sim.stats()["astro"]["refused"] == 1  # a 401 is not retried
    assert sim.stats()["requests_total"] == 0


async def test_an_api_url_that_is_not_the_platform_api(tls: Tls) -> None:
    sim = Simulator(deployments=2, api="v2", seed=9)
    sim.enable_astro()
    async with sim.running(ssl=tls.server) as server:
        # An Airflow 3 server's UI answers 200 HTML for any unknown path.
        text = _fleet_text(sim, server.url, tls).replace("/astro", "/d/dep-0000")
        with pytest.raises(DiscoveryError, match=r"not the API's JSON \(text/html"):
            await airfleet.discover(parse_fleet(text, env=_env(sim)))
        text = _fleet_text(sim, server.url, tls).replace("clsimorg", "clnoorg")
        with pytest.raises(DiscoveryError, match=r"HTTP 404.*no such organization"):
            await airfleet.discover(parse_fleet(text, env=_env(sim)))


async def test_an_unreachable_platform(tls: Tls) -> None:
    sim = Simulator(deployments=1, api="v2")
    sim.enable_astro()
    with socket.socket() as sock:  # a loopback port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    fleet = parse_fleet(_fleet_text(sim, f"https://127.0.0.1:{port}", tls), env=_env(sim))
    one_retry = tuple(dataclasses.replace(s, retries=1) for s in fleet.discovery)
    with pytest.raises(
        DiscoveryError, match=f"GET https://127.0.0.1:{port}/astro/v1/.*cannot connect"
    ):
        await airfleet.discover(dataclasses.replace(fleet, discovery=one_retry))


async def test_a_discovered_name_or_url_a_static_entry_has_is_a_config_error(
    tls: Tls,
) -> None:
    sim = Simulator(deployments=3, api="v2", seed=10)
    sim.enable_astro(hibernating_every=None)
    async with sim.running(ssl=tls.server) as server:
        base = _fleet_text(sim, server.url, tls)
        same_name = base + (
            "deployments:\n  - {name: dep-0001, url: 'https://127.0.0.1:1/x', auth: astro}\n"
        )
        with pytest.raises(ConfigError) as caught:
            await airfleet.discover(parse_fleet(same_name, env=_env(sim)))
        assert "'dep-0001'" in str(caught.value)
        assert "static deployment" in str(caught.value)
        assert caught.value.line == _line_of_source(base)
        same_url = base + (
            f"deployments:\n  - {{name: mine, url: '{server.url}/d/dep-0002/', auth: astro}}\n"
        )
        with pytest.raises(ConfigError, match=r"'dep-0002'.*same URL.*'mine'"):
            await airfleet.discover(parse_fleet(same_url, env=_env(sim)))
    assert sim.stats()["requests_total"] == 0


# -- the command line ------------------------------------------------------------------


@pytest.fixture(scope="module")
def astro_thread(tls: Tls) -> Iterator[SimThread]:
    sim = Simulator(deployments=250, api="mixed", seed=18)
    sim.enable_astro(workspaces=WORKSPACES)
    with sim_in_thread(sim, ssl=tls.server) as running:
        yield running


@pytest.fixture
def fleet_yaml(astro_thread: SimThread, tls: Tls, tmp_path: Path) -> Path:
    """A fleet.yaml that discovers the threaded simulator's organization."""
    path = tmp_path / "fleet.yaml"
    path.write_text(_fleet_text(astro_thread.sim, astro_thread.url, tls), encoding="utf-8")
    return path


def test_cli_discovers_selects_by_workspace_and_freezes(
    astro_thread: SimThread, fleet_yaml: Path, tmp_path: Path
) -> None:
    sim = astro_thread.sim
    env = sim.env()
    sim.reset_stats()

    run = run_airfleet(
        "-c", str(fleet_yaml), "trigger", "example_etl", "-s", "tag:analytics",
        "--report", "json", env=env,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["summary"]["ok"] == 75
    assert report["summary"]["skipped"] == 9
    assert "discovered 250 deployments" in run.stderr
    assert "25 unavailable" in run.stderr
    stats = sim.stats()
    asleep = {n for n in sim.names if sim.astro and sim.astro.hibernating(n)}
    awake = {n for n in sim.names if "analytics" in _workspace(sim, n)} - asleep
    assert stats["requests_by_deployment"] == dict.fromkeys(awake, 2)
    # 100 asked for, 50 given: 5 pages, and the workspaces' names.
    assert stats["astro"]["requests"] == 6
    assert stats["astro"]["max_per_second"] <= 25

    frozen = tmp_path / "frozen.yaml"
    written = run_airfleet("-c", str(fleet_yaml), "discover", "-o", str(frozen), env=env)
    assert written.returncode == 0, written.stderr
    text = frozen.read_text(encoding="utf-8")
    assert "${AIRFLEET_SIM_TOKEN}" in text
    assert sim.credentials.api_token not in text
    assert "discover:" not in text
    static = load_fleet(frozen, env=env)
    assert len(static.deployments) == 225
    assert static.discovery == ()
    assert not {d.name for d in static.deployments} & asleep
    assert all(d.api in ("v1", "v2") for d in static.deployments)

    sim.reset_stats()
    again = run_airfleet(
        "-c", str(frozen), "trigger", "example_etl", "-s", "tag:analytics",
        "--report", "json", env=env,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["summary"]["ok"] == 75
    stats = sim.stats()
    assert stats["astro"]["requests"] == 0  # a frozen file needs no platform
    assert stats["requests_by_deployment"] == dict.fromkeys(awake, 2)


def _workspace(sim: Simulator, name: str) -> str:
    assert sim.astro is not None
    return sim.astro.workspaces[sim.astro.entries[name].workspace_id]


def test_cli_discovery_failure_is_one_line_exit_2_nothing_sent(
    astro_thread: SimThread, fleet_yaml: Path, tmp_path: Path
) -> None:
    sim = astro_thread.sim
    sim.reset_stats()
    run = run_airfleet(
        "-c", str(fleet_yaml), "health", env={ENV_VARS["api_token"]: "not-the-token-0123456789"}
    )
    assert run.returncode == 2
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("airfleet: error: discover:")
    assert f"{fleet_yaml}:{_line_of_source(fleet_yaml.read_text())}" in lines[0]
    assert "Traceback" not in run.stderr
    assert "0123456789" not in run.stderr
    assert sim.stats()["requests_total"] == 0


def test_cli_dry_run_shows_the_discovered_plan(
    astro_thread: SimThread, fleet_yaml: Path, tmp_path: Path
) -> None:
    sim = astro_thread.sim
    sim.reset_stats()
    run = run_airfleet(
        "-c", str(fleet_yaml), "trigger", "example_etl", "-s", "name:dep-000*",
        "--dry-run", "--report", "json", env=sim.env(),
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    plan = json.loads(run.stdout)
    assert plan["calls"] == 10
    assert plan["skipped"] == [
        {"deployment": "dep-0009", "reason": "hibernating (Astro status HIBERNATING)"}
    ]
    assert {r["deployment"] for r in plan["requests"]} == {f"dep-000{i}" for i in range(9)}
    assert {r["api"] for r in plan["requests"]} == {"v1", "v2"}  # declared, not "auto"
    assert sim.stats()["requests_total"] == 0


def test_cli_discover_without_a_discover_section(tmp_path: Path) -> None:
    fleet_yaml = tmp_path / "fleet.yaml"
    fleet_yaml.write_text(
        "version: 1\nauth: {t: {kind: token, token: x}}\n"
        "deployments: [{name: a, url: 'http://127.0.0.1:1'}]\n",
        encoding="utf-8",
    )
    run = run_airfleet("-c", str(fleet_yaml), "discover")
    assert run.returncode == 2
    assert "has no discover: section" in run.stderr


# -- the fleet file's discover: section --------------------------------------------------


SOURCE = """\
version: 1
discover:
  - astro:
      organization: clorg
      token: ${ASTRO_TOKEN}
"""


def test_discover_section_makes_a_token_profile_of_its_token() -> None:
    fleet = parse_fleet(SOURCE, env={"ASTRO_TOKEN": "t0k3n-value-123"})
    (source,) = fleet.discovery
    assert source.organization == "clorg"
    assert source.api_url == "https://api.astronomer.io"
    assert source.max_per_second == 25
    assert source.template.auth == "astro"
    assert fleet.auth["astro"].kind == "token"
    assert source.line == 3


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        ("      auth: nope\n", 6, "auth profile 'nope' is not defined"),
        (
            "      tags: {prod: 'tag:x'}\n",
            6,
            "'tag:x': a discovered deployment is tagged by its name",
        ),
        ("      tags: {prod: 'name:'}\n", 6, "has no pattern"),
        ("      api_url: 'http://api.example.com'\n", 6, "plain http to a non-loopback host"),
        ("      workspace: [a]\n", 6, "did you mean 'workspaces'"),
        ("      max_per_second: 0\n", 6, "greater than 0"),
    ],
)
def test_bad_discover_entries_are_config_errors_with_their_line(
    extra: str, line: int, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_fleet(SOURCE + extra, source="fleet.yaml", env={"ASTRO_TOKEN": "t0k3n-value-123"})
    assert message in str(caught.value)
    assert caught.value.file == "fleet.yaml"
    assert caught.value.line == line


def test_an_unset_token_variable_names_it_and_its_line() -> None:
    with pytest.raises(ConfigError, match="ASTRO_TOKEN is not set") as caught:
        parse_fleet(SOURCE, source="fleet.yaml", env={})
    assert caught.value.line == 5


def test_a_fleet_needs_deployments_or_discovery() -> None:
    with pytest.raises(ConfigError, match="no deployments: list them under 'deployments'"):
        parse_fleet("version: 1\nauth: {t: {kind: token, token: x}}\n")


def test_the_made_profile_may_not_shadow_one_of_the_file() -> None:
    text = SOURCE.replace("discover:", "auth: {astro: {kind: token, token: other}}\ndiscover:")
    with pytest.raises(ConfigError, match=r"a profile named 'astro'.*name the profile they use"):
        parse_fleet(text, env={"ASTRO_TOKEN": "t0k3n-value-123"})


# -- what one platform entry becomes ------------------------------------------------------


def _source(**tags: tuple[str, ...]) -> AstroSource:
    return AstroSource("org", Secret("tok-en-value-abc"), Deployment("", "", "astro"), tags=tags)


def _item(**changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "cldep1",
        "name": "etl-prod",
        "workspaceId": "clws1",
        "status": "HEALTHY",
        "airflowVersion": "3.1.2",
        "isDevelopmentMode": False,
        "webServerAirflowApiUrl": "acme.astronomer.run/d1234/api/v2",
    }
    item.update(changes)
    return item


def test_an_entry_s_name_url_version_and_tags() -> None:
    deployment = deployment_from_astro(
        _item(), _source(prod=("*-prod",), eu=("eu-*",)), "Data Platform"
    )
    assert deployment is not None
    assert deployment.name == "etl-prod"
    assert deployment.url == "https://acme.astronomer.run/d1234"
    assert deployment.api == "v2"
    assert deployment.tags == {"data-platform", "airflow3", "prod"}
    assert deployment.status == "HEALTHY"
    assert deployment.unavailable is None
    assert deployment.auth == "astro"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"airflowVersion": "2.10.5"}, ("v1", "airflow2")),
        ({"airflowVersion": None}, ("auto", None)),
        ({"isDevelopmentMode": True}, ("v2", "dev")),
        ({"name": "My ETL (prod)"}, ("v2", None)),
    ],
)
def test_entry_variants(changes: dict[str, Any], expected: tuple[str, str | None]) -> None:
    deployment = deployment_from_astro(_item(**changes), _source(), None)
    assert deployment is not None
    api, tag = expected
    assert deployment.api == api
    if tag is not None:
        assert tag in deployment.tags
    assert "clws1" in deployment.tags  # no workspace name known: its id
    if "name" in changes:
        assert deployment.name == "My-ETL-prod"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "HIBERNATING"}, "hibernating (Astro status HIBERNATING)"),
        ({"status": "CREATING", "webServerAirflowApiUrl": ""}, "no Airflow API URL yet"),
        ({"webServerAirflowApiUrl": "http://acme.example/d1/api/v2"}, "no usable Airflow API URL"),
        ({"webServerAirflowApiUrl": "a b c"}, "no usable Airflow API URL"),
    ],
)
def test_entries_no_request_may_go_to(changes: dict[str, Any], reason: str) -> None:
    deployment = deployment_from_astro(_item(**changes), _source(), "ws")
    assert deployment is not None
    assert deployment.unavailable is not None
    assert reason in deployment.unavailable


def test_something_that_is_not_a_deployment_entry_is_dropped() -> None:
    assert deployment_from_astro({"name": "x"}, _source(), None) is None
    assert deployment_from_astro({"id": 3, "name": "x"}, _source(), None) is None


_HOST = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z][a-z0-9-]{0,10}){1,3}", fullmatch=True)
_PATH = st.from_regex(r"(/[A-Za-z0-9_-]{1,12}){0,3}", fullmatch=True)


@given(host=_HOST, path=_PATH, version=st.sampled_from(["/api/v1", "/api/v2", "/api/v2/", ""]),
       scheme=st.sampled_from(["", "https://"]))  # fmt: skip
def test_api_urls_become_the_https_deployment_url(
    host: str, path: str, version: str, scheme: str
) -> None:
    url = astro_api_url(f"{scheme}{host}{path}{version}")
    assert url == f"https://{host}{path}"
    assert astro_api_url(url) == url  # already a deployment URL: unchanged


# -- freezing ----------------------------------------------------------------------------


async def test_a_frozen_fleet_is_the_discovered_one_with_its_references_kept(
    astro: tuple[Simulator, str], tls: Tls
) -> None:
    sim, url = astro
    text = _fleet_text(sim, url, tls) + (
        "auth:\n"
        "  ops: {kind: password, username: admin, password: '${OPS_PASSWORD}'}\n"
        "deployments:\n"
        "  - {name: on-prem, url: 'https://airflow.internal.example', auth: ops, tags: [onprem]}\n"
    )
    env = {**_env(sim), "OPS_PASSWORD": "ops-password-31337"}
    fleet = parse_fleet(text, source="fleet.yaml", env=env)
    found = await airfleet.discover(fleet)

    frozen, warnings = freeze_fleet(load_located(text, source="fleet.yaml"), fleet.discovery, found)

    assert warnings == []
    assert "${OPS_PASSWORD}" in frozen
    assert "${AIRFLEET_SIM_TOKEN}" in frozen
    assert "ops-password-31337" not in frozen
    assert sim.credentials.api_token not in frozen
    static = parse_fleet(frozen, env=env)

    def shape(d: Deployment) -> tuple[Any, ...]:
        return (d.name, d.url, d.api, d.auth, d.tags, d.network)

    awake = [d for d in found.deployments if d.unavailable is None]
    assert [shape(d) for d in static.deployments] == [shape(d) for d in awake]
    assert static.deployments[0].name == "on-prem"  # static entries first, as written
    assert len(frozen.splitlines()) < 6 * len(awake)  # one short entry each
    assert frozen.count("hibernating (Astro status HIBERNATING)") == 25  # the comment


def test_a_literal_token_is_not_copied_into_the_frozen_file() -> None:
    secret = "literal-astro-token-9f8e7d6c"
    text = SOURCE.replace("${ASTRO_TOKEN}", secret)
    fleet = parse_fleet(text, env={})
    found = dataclasses.replace(fleet, discovery=())
    frozen, warnings = freeze_fleet(load_located(text, source="f.yaml"), fleet.discovery, found)
    assert secret not in frozen
    assert "${AIRFLEET_ASTRO_TOKEN}" in frozen
    assert len(warnings) == 1
    assert "export it" in warnings[0]
    assert secret not in warnings[0]


def test_a_secret_elsewhere_in_the_file_refuses_a_frozen_copy() -> None:
    text = SOURCE + "defaults: {proxy: 'http://bot:proxy-pass-5e6f7a8b@proxy.example:3128'}\n"
    fleet = parse_fleet(text, env={"ASTRO_TOKEN": "t0k3n-value-123"})
    with pytest.raises(ConfigError, match="a password written out in a URL") as caught:
        freeze_fleet(load_located(text, source="f.yaml"), fleet.discovery, fleet)
    assert caught.value.line == 6
    assert "proxy-pass" not in str(caught.value)


def test_cli_discover_writes_to_stdout_without_an_output(
    astro_thread: SimThread, fleet_yaml: Path, tmp_path: Path
) -> None:
    sim = astro_thread.sim
    sim.reset_stats()
    run = run_airfleet("-c", str(fleet_yaml), "discover", env=sim.env())
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith("# Written by `airfleet discover`")
    assert sim.credentials.api_token not in run.stdout + run.stderr
    assert sim.stats()["requests_total"] == 0  # the platform was asked; no deployment


# -- platforms that page oddly ----------------------------------------------------------


async def test_a_platform_that_ignores_offset_is_read_once() -> None:
    seen: list[str] = []

    async def deployments(request: web.Request) -> web.Response:
        seen.append(request.query_string)
        items = [
            {"id": f"d{i}", "name": f"d{i}", "workspaceId": "w", "workspaceName": "w",
             "status": "HEALTHY", "airflowVersion": "3.0.1",
             "webServerAirflowApiUrl": f"127.0.0.1:1/d{i}/api/v2"}
            for i in range(2)
        ]  # fmt: skip
        # The same page for every offset, and a total it never reaches.
        return web.json_response({"deployments": items, "totalCount": 10, "offset": 0})

    app = web.Application()
    app.router.add_get("/v1/organizations/org/deployments", deployments)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        text = SOURCE.replace("clorg", "org") + f"      api_url: 'http://127.0.0.1:{port}'\n"
        found = await airfleet.discover(parse_fleet(text, env={"ASTRO_TOKEN": "t0k3n-value-1"}))
    finally:
        await runner.cleanup()
    assert [d.name for d in found.deployments] == ["d0", "d1"]
    assert seen == ["offset=0&limit=100", "offset=2&limit=100"]
