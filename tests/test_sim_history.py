"""The simulator's run history, run listings and import errors, as Airflow 2.11 and 3.3 serve them.

Expectations are computed from the simulator's own state, not written down,
so they hold for any seed; the behaviours per version were observed against
real 2.11.2 and 3.3.2 servers.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest

from airfleet.sim import Simulator
from airfleet.sim.state import HISTORY_UNTIL, DagRun

pytestmark = pytest.mark.anyio

V2, V1 = "/d/dep-0000/api/v2", "/d/dep-0001/api/v1"
BOTH = pytest.mark.parametrize("base", [V1, V2], ids=["v1", "v2"])
TRACE = (
    "Traceback (most recent call last):\n"
    '  File "/opt/airflow/dags/broken.py", line 2, in <module>\n'
    "    import not_a_module\n"
    "ModuleNotFoundError: No module named 'not_a_module'\n"
)


class Client:
    """GETs and PATCHes to one running simulator, as its API token."""

    def __init__(self, sim: Simulator, url: str, session: aiohttp.ClientSession) -> None:
        self.sim = sim
        self.url = url
        self.session = session
        self.headers = {"Authorization": f"Bearer {sim.credentials.api_token}"}

    async def get(self, path: str, query: str = "") -> tuple[int, Any]:
        # The query is sent as written: a bare "+" must reach the server as one.
        url = self.url + path + (f"?{query}" if query else "")
        async with self.session.get(url, headers=self.headers) as resp:
            return resp.status, json.loads(await resp.text())

    async def send(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        async with self.session.request(
            method, self.url + path, json=body, headers=self.headers
        ) as resp:
            return resp.status, json.loads(await resp.text())

    async def listing(self, base: str, query: str = "", dag: str = "~") -> dict[str, Any]:
        status, body = await self.get(f"{base}/dags/{dag}/dagRuns", query)
        assert status == 200, body
        assert isinstance(body, dict)
        return body


def history_sim(**kwargs: Any) -> Simulator:
    options: dict[str, Any] = {"deployments": 2, "api": "mixed", "seed": 5, "run_history": 150}
    options.update(kwargs)
    return Simulator(**options)


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    sim = history_sim(import_errors={"dep-0000": [("broken.py", TRACE)]})
    async with sim.running() as server, aiohttp.ClientSession() as session:
        yield Client(sim, server.url, session)


def past(sim: Simulator, base: str) -> list[DagRun]:
    return sim.deployments["dep-0000" if base == V2 else "dep-0001"].runs_of(None)


def moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def run_keys(sim: Simulator) -> list[tuple[str, str, str, str, datetime | None, datetime | None]]:
    return [
        (name, run.dag_id, run.dag_run_id, run.forced or "", run.started, run.ended)
        for name, dep in sim.deployments.items()
        for run in dep.runs_of(None)
    ]


# -- the history itself ------------------------------------------------------------------------


def test_history_is_deterministic_per_seed_and_mixed() -> None:
    """Same seed, same history; all states and both run types; all before the fixed instant."""
    first, again, other = history_sim(), history_sim(), history_sim(seed=6)
    assert run_keys(first) == run_keys(again)
    assert run_keys(first) != run_keys(other)
    for dep in first.deployments.values():
        runs = dep.runs_of(None)
        assert len(runs) == 150
        states = [run.forced for run in runs]
        assert {"success", "failed", "running", "queued"} <= set(states)
        assert states.count("success") > len(runs) / 2
        assert {run.run_type for run in runs} == {"scheduled", "manual"}
        assert len({run.dag_id for run in runs}) > 1
        for run in runs:
            assert run.logical_date is not None
            assert HISTORY_UNTIL - timedelta(days=3) <= run.logical_date < HISTORY_UNTIL
            assert (run.started is None) == (run.forced == "queued")
            assert (run.ended is not None) == (run.forced in ("success", "failed"))
            assert run.ended is None or run.ended < HISTORY_UNTIL
        # Unique per DAG, as Airflow's (dag_id, logical_date) constraint wants.
        assert len({(run.dag_id, run.logical_date) for run in runs}) == len(runs)
        assert all(run.forced != "success" for run in runs if run.dag_id == "always_fails")


def test_history_leaves_the_fault_sequence_alone() -> None:
    """The history has its own generator: seeded faults draw the same numbers with or without it."""
    assert history_sim().rng.random() == history_sim(run_history=0).rng.random()


def test_history_until_moves_the_window() -> None:
    """The 3 days end at ``history_until``, which must be zone-aware."""
    until = datetime.fromisoformat("2025-06-01T00:00:00+00:00")
    runs = history_sim(history_until=until).deployments["dep-0000"].runs_of(None)
    assert all(until - timedelta(days=3) <= (run.logical_date or until) < until for run in runs)
    with pytest.raises(ValueError, match="time zone"):
        Simulator(deployments=1, history_until=datetime(2026, 1, 1))


@BOTH
async def test_past_runs_are_served_still_and_not_counted(client: Client, base: str) -> None:
    """A past run answers GET as it is listed, never moves, and runs_total counts triggers only."""
    run = past(client.sim, base)[0]
    path = f"{base}/dags/{run.dag_id}/dagRuns/{quote(run.dag_run_id, safe='')}"
    status, body = await client.get(path)
    assert (status, body["state"], body["dag_run_id"]) == (200, run.forced, run.dag_run_id)
    assert {"run_type", "start_date", "end_date", "state", "dag_id", "logical_date"} <= body.keys()
    assert moment(body["start_date"]) == run.started
    stats = client.sim.stats()
    assert (stats["runs_total"], stats["runs"]) == (0, {})
    trigger = {"dag_run_id": "new", **({"logical_date": None} if base == V2 else {})}
    assert (await client.send("POST", f"{base}/dags/hello/dagRuns", trigger))[0] == 200
    assert client.sim.stats()["runs_total"] == 1
    listed = await client.listing(base)
    assert listed["total_entries"] == 151
    assert (await client.get(path))[1] == body


@BOTH
async def test_patching_a_past_run_dates_it_as_airflow_does(client: Client, base: str) -> None:
    """A stuck run marked success ends now; one re-queued loses its dates."""
    stuck = next(run for run in past(client.sim, base) if run.forced == "running")
    path = f"{base}/dags/{stuck.dag_id}/dagRuns/{quote(stuck.dag_run_id, safe='')}"
    status, body = await client.send("PATCH", path, {"state": "success"})
    assert (status, body["state"]) == (200, "success")
    assert body["end_date"] is not None
    assert moment(body["start_date"]) == stuck.started
    status, body = await client.send("PATCH", path, {"state": "queued"})
    assert (body["state"], body["start_date"], body["end_date"]) == ("queued", None, None)


# -- listing runs --------------------------------------------------------------------------------


@BOTH
async def test_state_filter_repeats(client: Client, base: str) -> None:
    """state=failed&state=running: either state, counted before paging."""
    expected = sum(run.forced in ("failed", "running") for run in past(client.sim, base))
    body = await client.listing(base, "state=failed&state=running&limit=5")
    assert body["total_entries"] == expected
    assert len(body["dag_runs"]) == 5
    everything = await client.listing(base, "state=failed&state=running")
    assert {run["state"] for run in everything["dag_runs"]} == {"failed", "running"}


async def test_state_filter_spelling_per_version(client: Client) -> None:
    """Airflow 2 also splits commas and matches an unknown state to nothing; Airflow 3 refuses."""
    split = await client.listing(V1, "state=failed,running")
    assert split == await client.listing(V1, "state=failed&state=running")
    assert (await client.listing(V1, "state=bogus"))["total_entries"] == 0
    status, body = await client.get(f"{V2}/dags/~/dagRuns", "state=failed,running")
    assert status == 422
    assert body["detail"].startswith("Invalid value for state. Valid values are queued")


@BOTH
async def test_start_date_gte(client: Client, base: str) -> None:
    """Airflow 2 skips runs not started; Airflow 3 counts them as starting now."""
    bound = HISTORY_UNTIL - timedelta(days=1)
    runs = past(client.sim, base)
    started = [run for run in runs if run.started is not None and run.started >= bound]
    queued = [run for run in runs if run.started is None]
    body = await client.listing(base, "start_date_gte=2026-11-23T00:00:00Z")
    assert body["total_entries"] == len(started) + (len(queued) if base == V2 else 0)
    for run in body["dag_runs"]:
        start = moment(run["start_date"])
        assert (start is None and base == V2) or (start is not None and start >= bound)
    # "+00:00" works when encoded; a bare "+" arrives as a space, and is refused.
    encoded = await client.listing(base, "start_date_gte=2026-11-23T00:00:00%2B00:00")
    assert encoded["total_entries"] == body["total_entries"]
    status, _ = await client.get(
        f"{base}/dags/~/dagRuns", "start_date_gte=2026-11-23T00:00:00+00:00"
    )
    assert status == (422 if base == V2 else 400)


async def test_logical_date_filter_spelling_per_version(client: Client) -> None:
    """execution_date_gte on v1, run_after_gte on v2; connexion refuses what its spec lacks."""
    bound = HISTORY_UNTIL - timedelta(days=1)
    query = "execution_date_gte=2026-11-23T00:00:00Z"
    v1_runs = past(client.sim, V1)
    expected = sum(run.logical_date is not None and run.logical_date >= bound for run in v1_runs)
    assert (await client.listing(V1, query))["total_entries"] == expected
    status, body = await client.get(f"{V1}/dags/~/dagRuns", "run_after_gte=2026-11-23T00:00:00Z")
    assert status == 400
    assert body["detail"] == "Extra query parameter(s) run_after_gte not in spec"
    v2_runs = past(client.sim, V2)
    expected = sum((run.run_after or run.queued_at) >= bound for run in v2_runs)
    assert (await client.listing(V2, "run_after_gte=2026-11-23T00:00:00Z"))[
        "total_entries"
    ] == expected
    # FastAPI ignores a parameter it does not know.
    assert (await client.listing(V2, query))["total_entries"] == len(v2_runs)


async def test_bad_dates_per_version(client: Client) -> None:
    """v1: 400 problem JSON for any date without a zone; v2: 422, and 500 for a naive one."""
    status, body = await client.get(f"{V1}/dags/~/dagRuns", "end_date_lte=yesterday")
    assert (status, body["title"]) == (400, "Bad Request")
    assert body["detail"].startswith("'yesterday' is not a 'date-time'")
    assert (await client.get(f"{V1}/dags/~/dagRuns", "end_date_lte=2026-11-23T00:00:00"))[0] == 400
    status, body = await client.get(f"{V2}/dags/~/dagRuns", "end_date_lte=yesterday&limit=x")
    assert status == 422
    assert [item["loc"] for item in body["detail"]] == [
        ["query", "limit"],
        ["query", "end_date_lte"],
    ]
    status, body = await client.get(f"{V2}/dags/~/dagRuns", "end_date_lte=2026-11-23")
    assert (status, body["detail"]["reason"]) == (500, "Database error")


@pytest.mark.parametrize(
    ("base", "order_by", "column"),
    [
        (V1, "-start_date", "start_date"),
        (V2, "-start_date", "start_date"),
        (V1, "-execution_date", "logical_date"),
        (V2, "-logical_date", "logical_date"),
        (V2, "-run_after", "run_after"),
    ],
)
async def test_order_by_descending(client: Client, base: str, order_by: str, column: str) -> None:
    """Newest first; as on Postgres, runs without the date come first descending, last ascending."""
    for query, descending in ((f"order_by={order_by}", True), (f"order_by={order_by[1:]}", False)):
        body = await client.listing(base, f"{query}&limit=100")
        values = [moment(run[column]) for run in body["dag_runs"]]
        dated = sorted((value for value in values if value is not None), reverse=descending)
        nulls = [None] * (len(values) - len(dated))
        assert values == (nulls + dated if descending else dated + nulls)
    if column == "start_date":  # the queued runs head the newest-first page
        queued = sum(run.forced == "queued" for run in past(client.sim, base))
        first = await client.listing(base, f"order_by={order_by}&limit={queued + 1}")
        assert [run["start_date"] is None for run in first["dag_runs"]] == [True] * queued + [False]


async def test_order_by_spelling_per_version(client: Client) -> None:
    """Each version refuses the other's name for the logical date, with its own error shape."""
    status, body = await client.get(f"{V1}/dags/~/dagRuns", "order_by=-logical_date")
    assert (status, body["status"]) == (400, 400)
    assert "'logical_date' is disallowed" in body["detail"]
    status, body = await client.get(f"{V2}/dags/~/dagRuns", "order_by=-execution_date")
    assert (status, body) == (
        400,
        {
            "detail": "Ordering with 'execution_date' is disallowed or the attribute does not "
            "exist on the model"
        },
    )


@BOTH
async def test_paging_clamps_limit_and_counts_everything(client: Client, base: str) -> None:
    """limit is clamped to 100 silently; pages put together are the whole listing."""
    body = await client.listing(base, "limit=500")
    assert (len(body["dag_runs"]), body["total_entries"]) == (100, 150)
    rest = await client.listing(base, "limit=100&offset=100")
    assert len(rest["dag_runs"]) == 50
    ids = [(run["dag_id"], run["dag_run_id"]) for run in body["dag_runs"] + rest["dag_runs"]]
    assert ids == [(run.dag_id, run.dag_run_id) for run in past(client.sim, base)]
    # The default page and limit=0: Airflow 2 falls back to 100, Airflow 3 means it (50, 0).
    default = await client.listing(base)
    zero = await client.listing(base, "limit=0")
    if base == V1:
        assert len(default["dag_runs"]) == len(zero["dag_runs"]) == 100
    else:
        assert (len(default["dag_runs"]), len(zero["dag_runs"])) == (50, 0)
        assert default.keys() >= {"next_cursor", "previous_cursor", "total_entries_limit"}
    assert zero["total_entries"] == 150


@BOTH
async def test_tilde_lists_every_dag(client: Client, base: str) -> None:
    """``~`` is every DAG's runs; a DAG's own listing is its share; an unknown DAG per version."""
    every = await client.listing(base)
    per_dag = {}
    for dag in client.sim.deployments["dep-0000"].dags:
        body = await client.listing(base, dag=dag)
        assert {run["dag_id"] for run in body["dag_runs"]} <= {dag}
        per_dag[dag] = body["total_entries"]
    assert sum(per_dag.values()) == every["total_entries"] == 150
    assert sum(1 for count in per_dag.values() if count) > 1
    status, body = await client.get(f"{base}/dags/nope/dagRuns")
    if base == V2:
        assert (status, body) == (404, {"detail": "The Dag with ID: `nope` was not found"})
    else:
        assert (status, body) == (200, {"dag_runs": [], "total_entries": 0})
    assert client.sim.stats()["requests_by_endpoint"]["list_runs"] >= 6


async def test_v1_fields_pick_keys(client: Client) -> None:
    """Airflow 2's ``fields`` keeps only the named keys of each run."""
    body = await client.listing(V1, "fields=dag_id,state&limit=3")
    assert [set(run) for run in body["dag_runs"]] == [{"dag_id", "state"}] * 3


async def test_v2_listing_parses_with_the_official_client(client: Client) -> None:
    """apache-airflow-client 3.3.2's models accept the run and import-error listings."""
    # Imported here: it takes about 2 s, paid once per session (the faithfulness tests share it).
    from airflow_client import client as af

    runs = af.DAGRunCollectionResponse.from_dict(await client.listing(V2, "limit=100"))
    assert runs is not None
    assert len(runs.dag_runs) == 100
    assert {run.run_type.value for run in runs.dag_runs} == {"scheduled", "manual"}
    status, body = await client.get(f"{V2}/importErrors")
    errors = af.ImportErrorCollectionResponse.from_dict(body)
    assert errors is not None
    assert (status, errors.import_errors[0].bundle_name) == (200, "dags-folder")


# -- import errors -------------------------------------------------------------------------------


async def test_import_errors_per_version(client: Client) -> None:
    """v2: relative filename and bundle_name; v1: the absolute path and no bundle."""
    client.sim.add_import_error("dep-0001", "broken.py", TRACE)
    client.sim.add_import_error("dep-0001", "/opt/airflow/dags/other.py", "SyntaxError\n")
    status, body = await client.get(f"{V2}/importErrors")
    assert status == 200
    assert body["total_entries"] == 1
    (error,) = body["import_errors"]
    assert error.keys() == {
        "import_error_id",
        "timestamp",
        "filename",
        "stack_trace",
        "bundle_name",
    }
    assert (error["filename"], error["bundle_name"], error["stack_trace"]) == (
        "broken.py",
        "dags-folder",
        TRACE,
    )
    status, body = await client.get(f"{V1}/importErrors")
    assert [e["filename"] for e in body["import_errors"]] == [
        "/opt/airflow/dags/broken.py",
        "/opt/airflow/dags/other.py",
    ]
    for error in body["import_errors"]:
        assert error.keys() == {"import_error_id", "timestamp", "filename", "stack_trace"}
    assert client.sim.stats()["requests_by_endpoint"]["import_errors"] == 2


@BOTH
async def test_import_errors_page_and_order(client: Client, base: str) -> None:
    """Paged and clamped like other listings; a re-parsed file keeps its id, a fixed one goes."""
    name = "dep-0000" if base == V2 else "dep-0001"
    client.sim.clear_import_errors(name)
    ids = [client.sim.add_import_error(name, f"f{i:03d}.py", TRACE) for i in range(120)]
    assert ids == list(range(ids[0], ids[0] + 120))
    status, body = await client.get(f"{base}/importErrors", "limit=500")
    assert (status, len(body["import_errors"]), body["total_entries"]) == (200, 100, 120)
    status, body = await client.get(f"{base}/importErrors", "limit=5&offset=118")
    assert [e["import_error_id"] for e in body["import_errors"]] == ids[118:]
    status, body = await client.get(f"{base}/importErrors", "order_by=-filename&limit=1")
    assert body["import_errors"][0]["filename"].endswith("f119.py")
    # A file parsed again keeps its row and id; a fixed file's error goes.
    assert client.sim.add_import_error(name, "f000.py", "new trace") == ids[0]
    client.sim.clear_import_errors(name, "f001.py")
    status, body = await client.get(f"{base}/importErrors", "limit=2")
    assert [(e["import_error_id"], e["stack_trace"]) for e in body["import_errors"]] == [
        (ids[0], "new trace"),
        (ids[2], TRACE),
    ]
    assert body["total_entries"] == 119
    status, body = await client.get(f"{base}/importErrors", "order_by=bogus")
    assert status == 400
    if base == V1:
        status, body = await client.get(f"{base}/importErrors", "filename=f000.py")
        assert (status, body["detail"]) == (400, "Extra query parameter(s) filename not in spec")


def test_import_errors_for_unknown_deployment_are_refused() -> None:
    """A typo in ``import_errors`` fails at construction, naming the deployment."""
    with pytest.raises(ValueError, match="dep-9999"):
        Simulator(deployments=1, import_errors={"dep-9999": [("x.py", "trace")]})
