"""The simulator answers as real Airflow 3.3.2 and 2.11.2 did (tests/fixtures/airflow-*/).

Each fixture was recorded from a real server by tests/real/test_real_shapes.py
(which also checks, on every CI run, that the real servers still answer so).
Here the same requests go to the simulator: same status, same keys
recursively, and for Airflow 2 the same problem-JSON ``type`` and ``title``.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from _shapes import shape
from _simthread import SimThread, sim_in_thread
from airfleet.sim import Simulator

FIXTURES = Path(__file__).parent / "fixtures"
DAGS = ("airfleet_ok", "airfleet_fails", "airfleet_idle")


def send(method: str, url: str, body: Any = None, auth: str | None = None) -> tuple[int, Any, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if auth:
        request.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            raw, status, kind = (
                response.read(),
                response.status,
                response.headers.get_content_type(),
            )
    except urllib.error.HTTPError as exc:
        raw, status, kind = exc.read(), exc.code, exc.headers.get_content_type()
    try:
        return status, json.loads(raw) if raw else None, kind
    except ValueError:
        return status, raw.decode("utf-8", errors="replace"), kind


class Replayer:
    """Replays a fixture's steps against one simulated deployment."""

    def __init__(self, sim: SimThread, api: str) -> None:
        self.base = f"{sim.url}/d/dep-0000"
        self.creds = sim.sim.credentials
        self.api = api
        self._jwt = ""

    def authorization(self, kind: str) -> str | None:
        if kind == "admin" and self.api == "v1":
            raw = f"{self.creds.username}:{self.creds.password}".encode()
            return "Basic " + base64.b64encode(raw).decode()
        if kind == "admin":
            if not self._jwt:
                body = {"username": self.creds.username, "password": self.creds.password}
                status, answer, _ = send("POST", f"{self.base}/auth/token", body)
                assert status == 201
                self._jwt = answer["access_token"]
            return f"Bearer {self._jwt}"
        if kind == "wrong-basic":
            return "Basic " + base64.b64encode(b"admin:not-the-password").decode()
        if kind == "junk-bearer":
            return "Bearer x.y.z"
        return None

    def replay(self, steps: list[dict[str, Any]]) -> tuple[int, Any, str]:
        text = json.dumps(steps)
        names = {
            "{dag}": "airfleet_idle",
            "{run}": f"shape-{uuid.uuid4().hex[:8]}",
            "{user}": self.creds.username,
            "{password}": self.creds.password,
        }
        for placeholder, value in names.items():
            text = text.replace(placeholder, value)
        answer: tuple[int, Any, str] = (0, None, "")
        for step in json.loads(text):
            auth = self.authorization(step.get("auth", "admin"))
            answer = send(step["method"], self.base + step["path"], step.get("body"), auth)
        return answer


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, Replayer]]:
    v2 = Simulator(deployments=1, api="v2", dags=DAGS, failing_dags=("airfleet_fails",))
    v1 = Simulator(deployments=1, api="v1", dags=DAGS, failing_dags=("airfleet_fails",))
    with sim_in_thread(v2) as sim2, sim_in_thread(v1) as sim1:
        yield {"3.3.2": Replayer(sim2, "v2"), "2.11.2": Replayer(sim1, "v1")}


def cases() -> list[Any]:
    found = []
    for folder in sorted(FIXTURES.glob("airflow-*")):
        for path in sorted(folder.glob("*.json")):
            recorded = json.loads(path.read_text(encoding="utf-8"))
            if "request" in recorded:
                release = folder.name.removeprefix("airflow-")
                found.append(pytest.param(release, path, id=f"{release}/{path.stem}"))
    return found


@pytest.mark.parametrize(("release", "path"), cases())
def test_simulator_answers_like_the_real_server(
    sims: dict[str, Replayer], release: str, path: Path
) -> None:
    """Same status and keys as the recorded real answer (problem-JSON type/title on v1)."""
    recorded = json.loads(path.read_text(encoding="utf-8"))
    status, body, kind = sims[release].replay(recorded["request"])
    assert status == recorded["status"], body
    assert shape(body) == shape(recorded["body"]), body
    want = recorded["body"]
    if isinstance(want, str):  # an HTML page (Airflow 2's 404 outside the API)
        assert kind == "text/html"
    if isinstance(want, dict) and "title" in want and "type" in want:
        assert (body["type"], body["title"]) == (want["type"], want["title"])


def test_every_recorded_answer_is_replayed() -> None:
    """Both releases have fixtures with requests (a rename must not hide them)."""
    releases = {param.values[0] for param in cases()}
    assert releases == {"3.3.2", "2.11.2"}
