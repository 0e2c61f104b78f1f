"""Bad input, end to end: one line on stderr, exit 2, no traceback, and the server saw nothing.

Every broken fleet.yaml here points at a live simulator, so "nothing was
sent" is measured, not assumed: API requests, token fetches and failed
token fetches must all be unchanged. The fuzz tests drive the loaders
(fleet.yaml, pools.yaml, job files) with near-valid documents, mutated one
key at a time, so they reach deep validation, not only the YAML parser.
"""

from __future__ import annotations

import contextlib
import copy
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _cli import run_airfleet
from _simthread import SimThread, sim_in_thread
from airfleet.errors import ConfigError
from airfleet.fleet_file import parse_fleet
from airfleet.jobs.spec import parse_job
from airfleet.pool_spec import parse_pool_spec
from airfleet.sim import Simulator


@pytest.fixture(scope="module")
def sim() -> Iterator[SimThread]:
    with sim_in_thread(Simulator(deployments=3, api="mixed", seed=51)) as running:
        yield running


def seen(sim: SimThread) -> tuple[int, int, int]:
    """Everything the server counts: API requests, tokens issued, token requests refused."""
    stats = sim.stats()
    return (
        stats["requests_total"],
        stats["token_fetches"]["total"],
        stats["token_fetch_failures"],
    )


def airfleet(
    args: list[str], env: dict[str, str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return run_airfleet(*args, env=env, cwd=cwd, timeout_s=60)


def good_fleet(sim: SimThread) -> str:
    """The simulator's fleet.yaml in block style, so each case can break one line of it."""
    document = yaml.safe_load(sim.sim.fleet_yaml(sim.url, auth="oauth"))
    return yaml.safe_dump(document, sort_keys=False, default_flow_style=False)


# (name, how to break the good fleet.yaml, what the one line must say)
BROKEN_FLEETS: list[tuple[str, Any, str]] = [
    ("malformed yaml", lambda t: t.replace("deployments:", "deployments: [", 1), "line"),
    ("tab indentation", lambda t: t.replace("\n  ", "\n\t", 1), "line"),
    (
        "wrong type",
        lambda t: t.replace("defaults:\n", "defaults:\n  max_in_flight: lots\n", 1),
        "max_in_flight",
    ),
    (
        "negative limit",
        lambda t: t.replace("defaults:\n", "defaults:\n  max_per_second: -5\n", 1),
        "max_per_second",
    ),
    (
        "unknown key",
        lambda t: t.replace("defaults:\n", "defaults:\n  retires: 3\n", 1),
        "did you mean",
    ),
    (
        "unknown top-level key",
        lambda t: t.replace("version: 1\n", "version: 1\ndeploymnets: []\n", 1),
        "deploymnets",
    ),
    (
        "duplicate deployment",
        lambda t: t.replace("- name: dep-0001\n", "- name: dep-0000\n", 1),
        "dep-0000",
    ),
    (
        "missing env var",
        lambda t: t.replace("AIRFLEET_SIM_CLIENT_SECRET", "AIRFLEET_NOT_SET_ANYWHERE", 1),
        "AIRFLEET_NOT_SET_ANYWHERE",
    ),
    ("invalid url scheme", lambda t: t.replace("url: http://", "url: ftp://", 1), "url"),
    (
        "plain http off loopback",
        lambda t: t.replace("url: http://127.0.0.1", "url: http://example.com", 1),
        "allow_insecure",
    ),
    (
        "deployment url scheme",
        lambda t: t.replace("\n  url: http://", "\n  url: htp://", 1),
        "deployments[0].url",
    ),
    ("url without host", lambda t: t.replace("url: http://127.0.0.1", "url: http://", 1), "url"),
    (
        "url with user info",
        lambda t: t.replace("url: http://127.0.0.1", "url: http://admin:pw-in-url@127.0.0.1", 1),
        "user name or password (http://***@127.0.0.1",
    ),
    (
        "one server listed twice",
        lambda t: t.replace("/d/dep-0001\n", "/d/dep-0000/\n", 1),
        "deployment 'dep-0001' has the same URL as deployment 'dep-0000'",
    ),
    (
        "port that is no port",
        lambda t: t.replace("url: http://127.0.0.1:", "url: http://127.0.0.1:x", 1),
        "the port must be a number",
    ),
    ("unsupported version", lambda t: t.replace("version: 1", "version: 7", 1), "version"),
    (
        "unknown auth profile",
        lambda t: t.replace("  auth: oauth\n", "  auth: oauht\n", 1),
        "oauht",
    ),
    ("not a mapping", lambda t: "- just\n- a list\n", "mapping"),
    ("empty file", lambda t: "", "fleet.yaml"),
]


@pytest.mark.parametrize(
    ("name", "breaker", "message"), BROKEN_FLEETS, ids=[b[0] for b in BROKEN_FLEETS]
)
def test_broken_fleet_is_one_line_exit_2_and_nothing_sent(
    sim: SimThread, tmp_path: Path, name: str, breaker: Any, message: str
) -> None:
    """Each broken fleet.yaml: exit 2, one stderr line naming the problem, zero requests."""
    text = good_fleet(sim)
    broken = breaker(text)
    assert broken != text, name
    config = tmp_path / "fleet.yaml"
    config.write_text(broken, encoding="utf-8")
    before = seen(sim)
    out = airfleet(["-c", str(config), "trigger", "hello"], sim.sim.env())
    assert out.returncode == 2, (name, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, (name, out.stderr)
    assert lines[0].startswith("airfleet: error:"), lines[0]
    assert message in lines[0], (name, lines[0])
    assert "Traceback" not in out.stderr
    assert out.stdout == ""
    assert seen(sim) == before, name


BAD_ARGUMENTS: list[tuple[list[str], str]] = [
    (["trigger", "hello", "-s", "tag:nope"], "matches no deployment"),
    (["trigger", "hello", "-s", "color:red"], "color"),
    (["trigger", "hello", "-s", ""], "select"),
    (["trigger", "hello", "-s", "tag:"], "tag:"),
    (["trigger", "hello", "--conf", "{not json"], "not valid JSON"),
    (["trigger", "hello", "--conf", '"a string"'], "must be a JSON object"),
    (["trigger", "hello", "--conf", "@/no/such/conf.json"], "cannot read"),
    (["trigger", "hello", "--logical-date", "yesterday"], "ISO-8601"),
    (["trigger", "hello", "--timeout", "-1"], "--timeout"),
    (["trigger"], "DAG_ID"),
    (["dags", "--report", "pdf"], "--report"),
    (["audit", "pools", "--spec", "/no/such/pools.yaml"], "pools.yaml"),
    (["frobnicate"], "frobnicate"),
    (["pools", "-o", "/no/such/dir/pools.json"], "cannot write the report to /no/such/dir"),
    (["trigger", "hello", "-o", "/dev/null/report.xml"], "cannot write the report"),
    # Contradictory or idle flags: said, never silently ignored.
    (["dags", "--paused", "--active"], "--paused and --active contradict each other"),
    (["dags", "--active", "--paused"], "--paused and --active contradict each other"),
    (["pause", "hello", "refresh_dims", "hello"], "DAG 'hello' is given twice"),
    (["unpause", "hello", "--dry-run", "-o", "plan.json"], "--dry-run makes no report"),
    (["pause", "hello", "--dry-run", "--report", "junit"], "not as junit"),
    (["audit", "pools", "--spec", "/no/such/pools.yaml", "--prune"], "only with --apply"),
    (
        ["audit", "pools", "--spec", "/no/such/pools.yaml", "--apply", "--dry-run", "-o", "f.json"],
        "--dry-run makes no report",
    ),
    (["run", "/no/such/job.yaml", "--dry-run", "-o", "plan.json"], "--dry-run makes no report"),
    (["run", "/no/such/job.yaml", "--dry-run", "--report", "csv"], "not as csv"),
]


@pytest.mark.parametrize(
    ("args", "message"), BAD_ARGUMENTS, ids=[" ".join(a) for a, _ in BAD_ARGUMENTS]
)
def test_bad_arguments_are_one_line_exit_2_and_nothing_sent(
    sim: SimThread, tmp_path: Path, args: list[str], message: str
) -> None:
    """Bad selections, confs, dates, options and files: exit 2, one line, zero requests."""
    config = tmp_path / "fleet.yaml"
    config.write_text(good_fleet(sim), encoding="utf-8")
    before = seen(sim)
    out = airfleet(["-c", str(config), *args], sim.sim.env())
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert line.startswith("airfleet: error: "), line
    assert message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
    assert seen(sim) == before


def test_bad_pool_spec_is_one_line_exit_2_and_nothing_sent(sim: SimThread, tmp_path: Path) -> None:
    """audit pools with a spec of the wrong shape: one located line, exit 2, zero requests."""
    config = tmp_path / "fleet.yaml"
    config.write_text(good_fleet(sim), encoding="utf-8")
    spec = tmp_path / "pools.yaml"
    spec.write_text("version: 1\npools:\n  etl: {slots: many}\n", encoding="utf-8")
    before = seen(sim)
    out = airfleet(["-c", str(config), "audit", "pools", "--spec", str(spec)], sim.sim.env())
    assert out.returncode == 2
    (line,) = out.stderr.strip().splitlines()
    assert "pools.yaml:3" in line
    assert "slots" in line
    assert seen(sim) == before


BAD_JOBS: list[tuple[str, str]] = [
    ("steps:\n  - trigerr: {dags: [hello]}\n", "did you mean 'trigger'"),
    ("steps:\n  - audit_pools: {spec: missing-pools.yaml}\n", "missing-pools.yaml"),
    ("steps:\n  - trigger: {dags: [hello], conf: [1, 2]}\n", "conf"),
    ("steps:\n  - trigger: {dags: [hello]\n", "job.yaml"),
    ("steps: []\n", "steps"),
    ("steps:\n  - trigger: {dags: [hello], timeout_s: 60}\n", "timeout_s is for waiting"),
    ("steps:\n  - trigger: {dags: [hello], poll_s: 5}\n", "poll_s is for waiting"),
    ("steps:\n  - trigger: {dags: [hello, hello]}\n", "'hello' is listed twice"),
    ("steps:\n  - audit_pools: {spec: p.yaml, prune: true}\n", "prune deletes pools only"),
]


@pytest.mark.parametrize(("steps", "message"), BAD_JOBS)
def test_bad_job_file_is_one_line_exit_2_and_nothing_sent(
    sim: SimThread, tmp_path: Path, steps: str, message: str
) -> None:
    """A job with an unknown step kind or a missing file: exit 2, one line, nothing sent or kept."""
    config = tmp_path / "fleet.yaml"
    config.write_text(good_fleet(sim), encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(f"version: 1\nname: bad\nfleet: fleet.yaml\n{steps}", encoding="utf-8")
    state = tmp_path / "state"
    before = seen(sim)
    out = airfleet(["run", str(job), "--state-dir", str(state)], sim.sim.env())
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert message in line
    assert "Traceback" not in out.stderr
    assert seen(sim) == before
    assert not state.exists() or not any(state.rglob("*.jsonl"))


def test_a_c_option_that_the_jobs_own_fleet_would_override_is_exit_2(
    sim: SimThread, tmp_path: Path
) -> None:
    """-c naming another file than the job's fleet: is exit 2, nothing sent; -c naming
    the same file, or $AIRFLEET_CONFIG (a standing default), is fine."""
    (tmp_path / "fleet.yaml").write_text(good_fleet(sim), encoding="utf-8")
    (tmp_path / "other.yaml").write_text(good_fleet(sim), encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(
        "version: 1\nname: own-fleet\nfleet: fleet.yaml\nsteps:\n  - health: {}\n",
        encoding="utf-8",
    )
    state = ["--state-dir", str(tmp_path / "state")]
    before = seen(sim)
    out = airfleet(["-c", str(tmp_path / "other.yaml"), "run", str(job), *state], sim.sim.env())
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "is not the fleet" in line
    assert "fleet: " in line
    assert seen(sim) == before
    same = airfleet(
        ["-c", "fleet.yaml", "run", str(job), *state, "--dry-run"], sim.sim.env(), tmp_path
    )
    assert same.returncode == 0, same.stderr
    env = {**sim.sim.env(), "AIRFLEET_CONFIG": str(tmp_path / "other.yaml")}
    standing = airfleet(["run", str(job), *state, "--dry-run"], env)
    assert standing.returncode == 0, standing.stderr
    assert seen(sim) == before


def test_a_state_dir_that_cannot_be_made_is_one_line_exit_2_and_nothing_sent(
    sim: SimThread, tmp_path: Path
) -> None:
    """--state-dir under a file: exit 2 naming the directory and the option, nothing sent."""
    config = tmp_path / "fleet.yaml"
    config.write_text(good_fleet(sim), encoding="utf-8")
    job = tmp_path / "job.yaml"
    job.write_text(
        "version: 1\nname: ok\nfleet: fleet.yaml\nsteps:\n  - trigger: {dags: [hello]}\n",
        encoding="utf-8",
    )
    before = seen(sim)
    out = airfleet(["run", str(job), "--state-dir", "/dev/null/state"], sim.sim.env())
    assert out.returncode == 2, out.stderr
    (line,) = out.stderr.strip().splitlines()
    assert "/dev/null/state" in line
    assert "--state-dir" in line
    assert seen(sim) == before


# -- fuzz: the loaders raise ConfigError or nothing ------------------------------------

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=16),
    st.sampled_from(["${UNSET_VAR}", "${X:-}", "${", "http://", "tag:", "name:*", "-1", "1e400"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=10,
)

GOOD_FLEET: dict[str, Any] = {
    "version": 1,
    "limits": {"max_in_flight": 8, "max_per_second": 20},
    "defaults": {"auth": "cc", "max_per_second": 5, "timeout_s": 10, "retries": 2, "api": "auto"},
    "auth": {
        "cc": {
            "kind": "client-credentials",
            "token_url": "https://auth.example.com/oauth/token",
            "client_id": "id",
            "client_secret": "${SECRET}",
            "audience": "aud",
        },
        "tok": {"kind": "token", "token": "${TOKEN}", "max_per_second": 10},
        "pw": {"kind": "password", "username": "admin", "password": "${PASSWORD}"},
    },
    "deployments": [
        {"name": "a", "url": "https://a.example.com/x", "tags": ["prod", "eu"]},
        {"name": "b", "url": "http://127.0.0.1:8080", "auth": "pw", "api": "v1"},
        {"name": "c", "url": "https://c.example.com", "auth": "tok", "allow_insecure": False},
    ],
}
ENV = {"SECRET": "s3cret-value", "TOKEN": "t0ken-value", "PASSWORD": "pa55word"}


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(doc, dict):
        for key, value in doc.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            found += _paths(value, (*prefix, i))
    return found


def _mutate(doc: dict[str, Any], data: st.DataObject) -> Any:
    """Replace, delete or add one thing somewhere in a valid document."""
    out = copy.deepcopy(doc)
    path = data.draw(st.sampled_from(_paths(out)[1:]))
    parent: Any = out
    for step in path[:-1]:
        parent = parent[step]
    action = data.draw(st.sampled_from(["replace", "delete", "add"]))
    if action == "replace":
        parent[path[-1]] = data.draw(_values)
    elif action == "delete":
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10))] = data.draw(_values)
    else:
        parent.append(data.draw(_values))
    return out


def _dump(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def test_the_unmutated_fuzz_seeds_are_valid(tmp_path: Path) -> None:
    """The fuzz starts from valid documents, so its mutations probe one fault at a time."""
    assert len(parse_fleet(_dump(GOOD_FLEET), env=ENV).deployments) == 3
    assert parse_pool_spec(_dump(GOOD_POOLS)) is not None
    (tmp_path / "pools.yaml").write_text(_dump(GOOD_POOLS), encoding="utf-8")
    (tmp_path / "fleet.yaml").write_text(_dump(GOOD_FLEET), encoding="utf-8")
    assert parse_job(_dump(GOOD_JOB), base=tmp_path) is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fleet_loader_fuzz_near_valid_only_ever_raises_config_error(data: st.DataObject) -> None:
    """One mutation of a valid fleet.yaml: a Fleet or a ConfigError, never anything else."""
    text = _dump(_mutate(GOOD_FLEET, data))
    with contextlib.suppress(ConfigError):
        parse_fleet(text, source="fleet.yaml", env=ENV)


GOOD_POOLS: dict[str, Any] = {
    "version": 1,
    "pools": {"default_pool": {"slots": 64}, "etl": {"slots": 8, "description": "ETL"}},
    "overrides": [{"match": "tag:prod", "pools": {"etl": {"slots": 16, "include_deferred": True}}}],
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_pool_spec_loader_fuzz_only_ever_raises_config_error(data: st.DataObject) -> None:
    """One mutation of a valid pools.yaml, or arbitrary text: a spec or a ConfigError."""
    text = (
        _dump(_mutate(GOOD_POOLS, data))
        if data.draw(st.booleans())
        else data.draw(st.text(max_size=200))
    )
    with contextlib.suppress(ConfigError):
        parse_pool_spec(text, source="pools.yaml")


GOOD_JOB: dict[str, Any] = {
    "version": 1,
    "name": "fuzz",
    "fleet": "fleet.yaml",
    "window": "daily",
    "select": ["tag:prod"],
    "steps": [
        {"health": {}},
        {"trigger": {"id": "t", "dags": ["a", "b"], "conf": {"x": 1}, "wait": True}},
        {"pause": {"dags": ["a"], "continue_on_failure": True}},
        {"audit_pools": {"spec": "pools.yaml", "apply": False}},
    ],
}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_job_loader_fuzz_only_ever_raises_config_error(data: st.DataObject) -> None:
    """One mutation of a valid job file, or arbitrary text: a Job or a ConfigError."""
    base = Path(__file__).resolve().parent.parent / "configs"
    text = (
        _dump(_mutate(GOOD_JOB, data))
        if data.draw(st.booleans())
        else data.draw(st.text(max_size=200))
    )
    with contextlib.suppress(ConfigError):
        parse_job(text, source="job.yaml", base=base)
