"""The recorded answers in tests/fixtures/airflow-*/ still match the real servers.

Each fixture holds the requests that produce it (``request``: a list of steps;
the last one's answer is recorded) with the status and body the real server
gave. Here every fixture is replayed against the real server and compared by
status and by keys, recursively; tests/test_sim_fixtures.py replays the same
requests against the simulator. So the simulator is pinned to what real
Airflow does, and the pins to what it still does.

``AIRFLEET_RECORD_FIXTURES=1`` rewrites the fixtures from the real servers
instead (tokens and secrets replaced by placeholders).
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from _shapes import shape

from ._real import RealAirflow, ra

pytestmark = [pytest.mark.real_airflow, pytest.mark.timeout(120, func_only=True)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORD = os.environ.get("AIRFLEET_RECORD_FIXTURES") == "1"
SECRET_KEYS = frozenset({"access_token"})


def scrub(value: Any, home: str) -> Any:
    """Tokens out; the server's temporary home as $AIRFLOW_HOME, so re-recording is stable."""
    if isinstance(value, dict):
        return {k: "<redacted>" if k in SECRET_KEYS else scrub(v, home) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, home) for v in value]
    if isinstance(value, str):
        return value.replace(home, "$AIRFLOW_HOME")
    return value


def replay(server: Any, steps: list[dict[str, Any]]) -> tuple[int, Any]:
    """Send each step to the real server; the last answer."""
    names = {"{dag}": "airfleet_idle", "{run}": f"shape-{uuid.uuid4().hex[:8]}"}
    answer: tuple[int, Any] = (0, None)
    for step in steps:
        text = json.dumps(step)
        for placeholder, value in names.items():
            text = text.replace(placeholder, value)
        text = text.replace("{user}", server.username).replace("{password}", server.password)
        step = json.loads(text)
        if step["method"] == "POST" and server.api == "v1":
            # Airflow 2 refuses two runs of a DAG with the same logical date,
            # and "now" has a resolution of a second.
            time.sleep(1.1)
        headers = {"Authorization": authorization(server, step.get("auth", "admin"))}
        if not headers["Authorization"]:
            headers = {}
        url = server.url + step["path"]
        answer = ra._send(step["method"], url, step.get("body"), headers=headers)
    return answer


def authorization(server: Any, kind: str) -> str:
    if kind == "admin":
        return str(server.authorization())
    if kind == "wrong-basic":
        return "Basic " + base64.b64encode(b"admin:not-the-password").decode()
    if kind == "junk-bearer":
        return "Bearer x.y.z"
    return ""


def fixture_files(server: Any) -> list[Path]:
    """The recorded answers of the newest fixtures directory of the server's release line."""
    folders = sorted(FIXTURES.glob(f"airflow-{server.release}.*"))
    assert folders, f"no fixtures for Airflow {server.release} in {FIXTURES}"
    return sorted(folders[-1].glob("*.json"))


def check(server: Any) -> None:
    files = fixture_files(server)
    mismatches = []
    for path in files:
        recorded = json.loads(path.read_text(encoding="utf-8"))
        if "request" not in recorded:
            continue  # an answer no request here can reproduce (an expired JWT)
        status, body = replay(server, recorded["request"])
        if RECORD:
            recorded.update(status=status, body=scrub(body, str(server.home)))
            path.write_text(json.dumps(recorded, indent=2) + "\n", encoding="utf-8")
            continue
        if status != recorded["status"] or shape(body) != shape(recorded["body"]):
            mismatches.append(f"{path.name}: real {status} {body!r}")
    assert not mismatches, "\n".join(mismatches)


def test_airflow_3_answers_as_recorded(real: RealAirflow) -> None:
    """Every Airflow 3 fixture: same status and keys from the real server."""
    check(real.af3)


def test_airflow_2_answers_as_recorded(real: RealAirflow) -> None:
    """Every Airflow 2 fixture: same status and keys from the real server."""
    check(real.af2)
