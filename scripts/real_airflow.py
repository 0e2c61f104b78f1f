#!/usr/bin/env python3
"""Install, start and stop real Apache Airflow servers for airfleet's conformance tests.

    scripts/real-airflow install [3.3] [2.11]     install into the cache (reused when complete)
    scripts/real-airflow up [--no-scheduler]       start both servers, print their URLs, wait for
                                                   Ctrl-C (or SIGTERM), then stop them
    scripts/real-airflow stop DIR                  stop whatever a crashed ``up`` left in DIR

Each Airflow release gets its own virtual environment under the cache directory
(``$AIRFLEET_REAL_AIRFLOW_CACHE``, default ``~/.cache/airfleet/real-airflow``),
never the project's. An install is reused once its ``complete`` marker exists;
a file lock lets a background pre-install (``.ci/run``) and the test session
share one install instead of racing.

A server gets a fresh ``AIRFLOW_HOME`` (SQLite database, a DAGs folder of three
``schedule=None`` DAGs, one of which fails), binds to 127.0.0.1 on a free port,
and is stopped, with every process it started, when the ``running`` block ends.

The tests import this file (tests/real/conftest.py); it uses the standard
library only, so ``python3 scripts/real_airflow.py`` works without the project
installed.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = [
    "RELEASES",
    "Release",
    "Server",
    "SetupError",
    "cache_dir",
    "ensure_installed",
    "running",
    "start",
    "start_second_api_server",
    "warm_up",
]

USERNAME = "admin"
INSTALL_TIMEOUT_S = 900.0
LOCK_WAIT_S = 960.0  # a little longer than one install: a concurrent installer finishes first
COMMAND_TIMEOUT_S = 300.0
START_TIMEOUT_S = 180.0  # about 6 s on an idle machine; CI machines are shared
STOP_GRACE_S = 15.0


@dataclass(frozen=True, slots=True)
class Release:
    """One Airflow release line to install: what to ask pip for, and why each pin."""

    key: str
    requirements: tuple[str, ...]

    @property
    def major(self) -> int:
        return int(self.key.split(".")[0])


RELEASES: dict[str, Release] = {
    # Without Airflow's constraints file (not reachable from CI: it lives on
    # GitHub, only PyPI is), pip picks the newest dependencies that Airflow's
    # own metadata allows. Verified to install and serve on 2026-11-25:
    # apache-airflow 3.3.2 (SQLAlchemy 2.1.9, FastAPI 0.136.3) and 2.11.2
    # (FAB provider 1.5.4, Flask-AppBuilder 4.5.4, connexion 2.15.1,
    # SQLAlchemy 1.4.54). No pin was needed beyond the release line; add one
    # here, with the reason, if a new dependency release breaks a server.
    "3.3": Release("3.3", ("apache-airflow==3.3.*",)),
    "2.11": Release("2.11", ("apache-airflow==2.11.*",)),
}

DAGS_FILE = '''\
"""DAGs for airfleet's conformance tests: one succeeds, one fails, one is never run."""

from datetime import datetime

try:
    from airflow.sdk import dag, task  # Airflow 3
except ImportError:  # Airflow 2
    from airflow.decorators import dag, task

START = datetime(2026, 1, 1)


@dag(dag_id="airfleet_ok", schedule=None, start_date=START, catchup=False, tags=["airfleet"])
def airfleet_ok():
    @task
    def hello():
        return "ok"

    hello()


@dag(dag_id="airfleet_fails", schedule=None, start_date=START, catchup=False, tags=["airfleet"])
def airfleet_fails():
    @task(retries=0)
    def boom():
        raise RuntimeError("airfleet_fails fails on purpose")

    boom()


@dag(dag_id="airfleet_idle", schedule=None, start_date=START, catchup=False, tags=["idle"])
def airfleet_idle():
    @task
    def idle():
        return None

    idle()


airfleet_ok()
airfleet_fails()
airfleet_idle()
'''
DAG_IDS = ("airfleet_ok", "airfleet_fails", "airfleet_idle")
# An Airflow DAG file that no longer imports (its words "airflow" and "dag"
# make the DAG processor's safe mode parse it): the import error
# `airfleet import-errors` reports.
BROKEN_DAG_FILE = "airfleet_broken.py"
BROKEN_DAGS = """# An airflow dag file whose import fails on purpose.
import airfleet_no_such_module  # noqa: F401
"""
BROKEN_MESSAGE = "ModuleNotFoundError: No module named 'airfleet_no_such_module'"


class SetupError(RuntimeError):
    """Airflow could not be installed or started; the message says what to do."""


def cache_dir() -> Path:
    """Where installs live: ``$AIRFLEET_REAL_AIRFLOW_CACHE``, or ~/.cache/airfleet/real-airflow."""
    configured = os.environ.get("AIRFLEET_REAL_AIRFLOW_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "airfleet" / "real-airflow"


def _say(message: str) -> None:
    print(f"[real-airflow] {message}", file=sys.stderr, flush=True)


# -- installing ---------------------------------------------------------------------


def venv_dir(release: Release) -> Path:
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache_dir() / f"airflow-{release.key}-{py}"


def ensure_installed(key: str) -> Path:
    """The ``bin`` directory of a complete install of release ``key``, installing it if needed."""
    release = RELEASES[key]
    target = venv_dir(release)
    marker = target / "complete"
    if marker.exists():
        return target / "bin"
    target.parent.mkdir(parents=True, exist_ok=True)
    with _locked(target.parent / f"{target.name}.lock"):
        if marker.exists():  # another process installed it while we waited
            return target / "bin"
        _install(release, target)
    return target / "bin"


def with_airfleet(key: str, target: Path, project: Path) -> Path:
    """A virtual environment over release ``key``'s install, with ``airfleet[airflow]`` in it.

    The cached install is never changed (other tests' servers run from it):
    ``target`` sees its packages through a ``.pth`` file, and pip puts only
    what Airflow lacks (aiohttp, orjson, ...) and airfleet itself, editable,
    into ``target``. Returns ``target``'s python; run Airflow as
    ``python -m airflow`` (the cached ``bin/airflow`` would not see airfleet).
    """
    base = ensure_installed(key).parent
    log = target.parent / f"{target.name}.install.log"
    python = target / "bin" / "python"
    _run_logged([sys.executable, "-m", "venv", str(target)], log=log, what="python -m venv")
    site = _site_packages(python, log)
    (Path(site) / "real_airflow.pth").write_text(
        _site_packages(base / "bin" / "python", log) + "\n", encoding="utf-8"
    )
    _run_logged(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "-q",
            "-e",
            f"{project}[airflow]",
        ],
        log=log,
        what="pip install -e airfleet[airflow]",
        timeout_s=INSTALL_TIMEOUT_S,
    )
    return python


def _site_packages(python: Path, log: Path) -> str:
    return _run_logged(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        log=log,
        what="where site-packages is",
    ).strip()


def airflow_env(home: Path, python: Path) -> dict[str, str]:
    """The environment of an Airflow command run by ``python`` on ``home`` (SQLite, quiet)."""
    env = _base_env(python.parent, home)
    # Airflow 2.11 warns on every command unless told the new timer unit is fine.
    env["AIRFLOW__METRICS__TIMER_UNIT_CONSISTENCY"] = "True"
    return env


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("w") as handle:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SetupError(
                        f"another process held {path} for {LOCK_WAIT_S:.0f} s; "
                        "if no install is running, delete the lock file"
                    ) from None
                time.sleep(1.0)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _install(release: Release, target: Path) -> None:
    if target.exists():
        shutil.rmtree(target)  # a half-finished install from an interrupted run
    started = time.monotonic()
    _say(f"installing {' '.join(release.requirements)} into {target} (about a minute)")
    log = target.parent / f"{target.name}.install.log"
    _run_logged([sys.executable, "-m", "venv", str(target)], log=log, what="python -m venv")
    pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    _run_logged(
        [*pip, *release.requirements],
        log=log,
        what=f"pip install {' '.join(release.requirements)}",
        timeout_s=INSTALL_TIMEOUT_S,
        hint="these tests need the package registry (PyPI) to install Apache Airflow once; "
        "run them where it is reachable, or deselect them with -m 'not real_airflow'",
    )
    version = _run_logged(
        [str(target / "bin" / "python"), "-c", "import airflow; print(airflow.__version__)"],
        log=log,
        what="import airflow",
    ).strip()
    if not version.startswith(release.key + "."):
        raise SetupError(f"installed Airflow {version!r}, wanted {release.key}.*; see {log}")
    (target / "complete").write_text(version + "\n", encoding="utf-8")
    _say(f"installed Airflow {version} in {time.monotonic() - started:.0f} s")


def _run_logged(
    argv: Sequence[str],
    *,
    log: Path,
    what: str,
    env: dict[str, str] | None = None,
    timeout_s: float = COMMAND_TIMEOUT_S,
    hint: str = "",
) -> str:
    """Run a command to completion, appending its output to ``log``; its stdout on success."""
    with log.open("a", encoding="utf-8") as out:
        out.write(f"\n$ {what}\n")
        out.flush()
        try:
            done = subprocess.run(  # noqa: S603 - our own argv, no shell
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=out,
                text=True,
                env=env,
                timeout=timeout_s,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise SetupError(f"{what} took more than {timeout_s:.0f} s; see {log}") from exc
        out.write(done.stdout)
    if done.returncode != 0:
        tail = _tail(log, 15)
        extra = f"\n{hint}" if hint else ""
        raise SetupError(
            f"{what} failed (exit {done.returncode}); last lines of {log}:\n{tail}{extra}"
        )
    return done.stdout


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    # pip repeats a harmless warning per package for the local indexes configured here.
    kept = [line for line in text.splitlines() if "is ignored: it is neither" not in line]
    return "\n".join(kept[-lines:])


# -- running ------------------------------------------------------------------------


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(slots=True)
class Server:
    """A running Airflow API server (and, optionally, its scheduler)."""

    release: str
    version: str
    url: str
    api: str  # "v1" or "v2"
    username: str
    password: str = field(repr=False)
    home: Path
    env: dict[str, str] = field(default_factory=dict, repr=False)  # holds secrets
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)

    _token: str | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/{self.api}"

    def authorization(self) -> str:
        """An Authorization header: basic auth on Airflow 2, a JWT (fetched once) on 3."""
        if self.api == "v1":
            raw = f"{self.username}:{self.password}".encode()
            return "Basic " + base64.b64encode(raw).decode("ascii")
        if self._token is None:
            status, body = _send(
                "POST",
                f"{self.url}/auth/token",
                {"username": self.username, "password": self.password},
                headers={},
            )
            if status != 201 or not isinstance(body, dict):
                raise SetupError(f"{self.url}/auth/token answered {status}")
            self._token = str(body["access_token"])
        return f"Bearer {self._token}"

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """Call the API (``path`` after ``/api/vN``) as the admin user: (status, JSON body)."""
        headers = {"Authorization": self.authorization()}
        status, answer = _send(method, f"{self.api_url}{path}", body, headers=headers)
        if status == 401 and self.api == "v2":  # an expired JWT: fetch another, once
            self._token = None
            headers = {"Authorization": self.authorization()}
            status, answer = _send(method, f"{self.api_url}{path}", body, headers=headers)
        return status, answer

    def log(self, name: str) -> Path:
        return self.home / "logs" / f"{name}.log"

    def stop(self) -> None:
        """Stop every process this server started: SIGTERM to each group, then SIGKILL."""
        for proc in self.processes:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_S
        for proc in self.processes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            _signal_group(proc, signal.SIGKILL)  # workers a parent left behind, too
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
        self.processes.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    # Each process leads its own group (start_new_session), so its gunicorn or
    # uvicorn workers and task subprocesses get the signal too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _base_env(bin_dir: Path, home: Path) -> dict[str, str]:
    keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "USER", "SSL_CERT_FILE", "TZ")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs" / "tasks"),
            # A fast scheduler loop: test runs start within a second or two.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return env


def _prepare_home(home: Path) -> None:
    for folder in ("dags", "logs"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    (home / "dags" / "airfleet_dags.py").write_text(DAGS_FILE, encoding="utf-8")
    (home / "dags" / BROKEN_DAG_FILE).write_text(BROKEN_DAGS, encoding="utf-8")


def _spawn(argv: Sequence[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(  # noqa: S603 - our own argv, no shell
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=env["AIRFLOW_HOME"],
            start_new_session=True,
        )


def _get_json(url: str, timeout_s: float = 5.0) -> tuple[int, Any]:
    return _send("GET", url, None, headers={}, timeout_s=timeout_s)


def _send(
    method: str, url: str, body: Any, *, headers: dict[str, str], timeout_s: float = 30.0
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - loopback
    for name, value in headers.items():
        request.add_header(name, value)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            raw = response.read()
            status = response.status
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        status = exc.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode("utf-8", errors="replace")


def warm_up(server: Server, *, timeout_s: float = START_TIMEOUT_S) -> None:
    """Run each test DAG once, one after the other, and wait for the runs to end.

    This proves the scheduler runs tasks before any test relies on it. It also
    takes the first writes off the fan-out: on a fresh SQLite database, Airflow
    3.3's API server answered 16 of 20 concurrent first triggers with HTTP 500
    "Database error" (sqlite3 "database is locked"), while later bursts of 20
    were fine.
    """
    deadline = time.monotonic() + timeout_s
    for dag_id in DAG_IDS:
        body: dict[str, Any] = {"dag_run_id": "warm-up"}
        if server.api == "v2":
            body["logical_date"] = None
        status, answer = server.request("POST", f"/dags/{dag_id}/dagRuns", body)
        if status not in (200, 409):
            raise SetupError(f"warm-up trigger of {dag_id} answered {status}: {answer!r}")
        state = ""
        while time.monotonic() < deadline:
            _, run = server.request("GET", f"/dags/{dag_id}/dagRuns/warm-up")
            state = run.get("state", "") if isinstance(run, dict) else ""
            if state in ("success", "failed"):
                break
            time.sleep(0.5)
        else:
            raise SetupError(
                f"the warm-up run of {dag_id} on Airflow {server.version} was still {state!r} "
                f"after {timeout_s:.0f} s: is the scheduler running? last lines of "
                f"{server.log('scheduler')}:\n{_tail(server.log('scheduler'), 25)}"
            )


def _wait_until_up(server: Server, proc: subprocess.Popen[bytes], name: str) -> None:
    url = f"{server.api_url}/version"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SetupError(
                f"Airflow {server.release} {name} exited with {proc.returncode} before "
                f"{url} answered; last lines of {server.log(name)}:\n{_tail(server.log(name), 25)}"
            )
        with contextlib.suppress(OSError, ValueError):
            status, body = _get_json(url, timeout_s=2.0)
            if status == 200 and isinstance(body, dict) and "version" in body:
                server.version = str(body["version"])
                return
        time.sleep(0.5)
    raise SetupError(
        f"Airflow {server.release} {name} did not answer {url} within {START_TIMEOUT_S:.0f} s; "
        f"last lines of {server.log(name)}:\n{_tail(server.log(name), 25)}"
    )


def _wait_until_healthy(server: Server) -> None:
    """Until the health endpoint reports a live scheduler, so runs will start."""
    path = "monitor/health" if server.api == "v2" else "health"
    url = f"{server.api_url}/{path}"
    deadline = time.monotonic() + START_TIMEOUT_S
    body: Any = None
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            _, body = _get_json(url, timeout_s=2.0)
            scheduler = body.get("scheduler", {}) if isinstance(body, dict) else {}
            if scheduler.get("status") == "healthy":
                return
        time.sleep(0.5)
    raise SetupError(
        f"Airflow {server.release}'s scheduler was not healthy within {START_TIMEOUT_S:.0f} s "
        f"({url} said {body!r}); last lines of {server.log('scheduler')}:\n"
        f"{_tail(server.log('scheduler'), 25)}"
    )


def _launch(
    server: Server,
    name: str,
    argv: list[str],
    *,
    helpers: Sequence[tuple[str, list[str]]] = (),
    after_up: Callable[[], None] | None = None,
) -> Server:
    """Spawn ``server``'s web process and its helpers (scheduler, ...), and wait
    until it answers and, with helpers, until they report healthy. On any
    failure everything started is stopped."""
    main = _spawn(argv, env=server.env, log=server.log(name))
    server.processes.append(main)
    try:
        for helper, helper_argv in helpers:
            server.processes.append(_spawn(helper_argv, env=server.env, log=server.log(helper)))
        _wait_until_up(server, main, name)
        if after_up is not None:
            after_up()
        if helpers:
            _wait_until_healthy(server)
    except BaseException:
        server.stop()
        raise
    return server


def start_airflow3(
    bin_dir: Path,
    home: Path,
    *,
    password: str,
    scheduler: bool = True,
    jwt_expiration_s: int | None = None,
) -> Server:
    """Airflow 3: ``airflow api-server`` with the simple auth manager (and a scheduler)."""
    _prepare_home(home)
    # The simple auth manager reads passwords from this file (and would write a
    # random one there if it were missing); the server only knows the password
    # the file holds, so the client reads it back from the same file.
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({USERNAME: password}), encoding="utf-8")
    port = free_port()
    env = _base_env(bin_dir, home)
    env.update(
        {
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            # The default starts 32 idle workers of about 130 MB each.
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            # 64+ characters keep Airflow from warning about a weak secret.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        }
    )
    _jwt_lifetime(env, jwt_expiration_s)
    log = home / "logs" / "setup.log"
    airflow = str(bin_dir / "airflow")
    _run_logged([airflow, "db", "migrate"], env=env, log=log, what="airflow db migrate")
    _run_logged([airflow, "dags", "reserialize"], env=env, log=log, what="airflow dags reserialize")
    server = Server("3.3", "", f"http://127.0.0.1:{port}", "v2", USERNAME, password, home, env)

    def read_password() -> None:
        # What the running server holds (it keeps an existing file as it is).
        server.password = json.loads(passwords.read_text(encoding="utf-8"))[USERNAME]

    helpers = [
        ("scheduler", [airflow, "scheduler", "--skip-serve-logs"]),
        ("dag-processor", [airflow, "dag-processor"]),
    ]
    return _launch(
        server,
        "api-server",
        [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        helpers=helpers if scheduler else [],
        after_up=read_password,
    )


def start_second_api_server(base: Server, *, jwt_expiration_s: int | None = None) -> Server:
    """Another Airflow 3 API server on ``base``'s database, with its own port and JWT settings.

    Runs triggered through it are run by ``base``'s scheduler, so a short JWT
    lifetime can be tested across a whole ``--wait``.
    """
    port = free_port()
    env = dict(base.env)
    env.update(
        {
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            # Its own signing secret: its JWTs are no good on the first server.
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            # Tasks still report to the first server's execution API.
        }
    )
    _jwt_lifetime(env, jwt_expiration_s)
    url = f"http://127.0.0.1:{port}"
    server = Server(base.release, "", url, "v2", base.username, base.password, base.home, env)
    return _launch(
        server,
        f"api-server-{port}",
        [str(Path(env["PATH"].split(os.pathsep)[0]) / "airflow"), "api-server",
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
    )  # fmt: skip


def _jwt_lifetime(env: dict[str, str], seconds: int | None) -> None:
    if seconds is None:
        return
    env["AIRFLOW__API_AUTH__JWT_EXPIRATION_TIME"] = str(seconds)
    # Without this a JWT stays valid 10 s past its exp.
    env["AIRFLOW__API_AUTH__JWT_LEEWAY"] = "0"


def start_airflow2(bin_dir: Path, home: Path, *, password: str, scheduler: bool = True) -> Server:
    """Airflow 2: ``airflow webserver`` with FAB basic auth for the API (and a scheduler)."""
    _prepare_home(home)
    port = free_port()
    env = _base_env(bin_dir, home)
    env.update(
        {
            # The old airflow.api.auth.backend.* paths are deprecated in 2.11.
            "AIRFLOW__API__AUTH_BACKENDS": (
                "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth,"
                "airflow.providers.fab.auth_manager.api.auth.backend.session"
            ),
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
            "AIRFLOW__WEBSERVER__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__WEBSERVER__SECRET_KEY": secrets.token_urlsafe(32),
            # Two gunicorn workers: enough for concurrent requests, light on memory.
            "AIRFLOW__WEBSERVER__WORKERS": "2",
            "AIRFLOW__WEBSERVER__WORKER_REFRESH_INTERVAL": "86400",
        }
    )
    log = home / "logs" / "setup.log"
    airflow = str(bin_dir / "airflow")
    _run_logged([airflow, "db", "migrate"], env=env, log=log, what="airflow db migrate")
    # The roles exist only after sync-perm; users create needs the Admin role.
    _run_logged([airflow, "sync-perm"], env=env, log=log, what="airflow sync-perm")
    _run_logged(
        [
            # "--password=" so that a password starting with "-" is not read as
            # an option (token_urlsafe gives one about one time in 64).
            airflow, "users", "create", "--username", USERNAME, f"--password={password}",
            "--role", "Admin", "--email", "admin@example.invalid",
            "--firstname", "Air", "--lastname", "Fleet",
        ],
        env=env,
        log=log,
        what="airflow users create",
    )  # fmt: skip
    _run_logged([airflow, "dags", "reserialize"], env=env, log=log, what="airflow dags reserialize")
    server = Server("2.11", "", f"http://127.0.0.1:{port}", "v1", USERNAME, password, home, env)
    return _launch(
        server,
        "webserver",
        [airflow, "webserver", "--hostname", "127.0.0.1", "--port", str(port), "--workers", "2"],
        helpers=[("scheduler", [airflow, "scheduler", "--skip-serve-logs"])] if scheduler else [],
    )


def start(
    key: str,
    home: Path,
    *,
    password: str,
    scheduler: bool = True,
    jwt_expiration_s: int | None = None,
) -> Server:
    """Install (if needed) and start release ``key`` in ``home``; the caller stops it."""
    bin_dir = ensure_installed(key)
    started = time.monotonic()
    if RELEASES[key].major == 3:
        server = start_airflow3(
            bin_dir, home, password=password, scheduler=scheduler, jwt_expiration_s=jwt_expiration_s
        )
    else:
        server = start_airflow2(bin_dir, home, password=password, scheduler=scheduler)
    _record_pids(server)
    try:
        if scheduler:
            warm_up(server)
    except BaseException:
        server.stop()
        raise
    _say(f"Airflow {server.version} answers at {server.url} ({time.monotonic() - started:.1f} s)")
    return server


@contextlib.contextmanager
def running(
    key: str,
    home: Path,
    *,
    password: str,
    scheduler: bool = True,
    jwt_expiration_s: int | None = None,
) -> Iterator[Server]:
    """Install (if needed) and start release ``key`` in ``home``; stop it when the block ends."""
    server = start(
        key, home, password=password, scheduler=scheduler, jwt_expiration_s=jwt_expiration_s
    )
    # Also on a plain interpreter exit (an uncaught error outside the block).
    atexit.register(server.stop)
    try:
        yield server
    finally:
        server.stop()
        atexit.unregister(server.stop)


def _record_pids(server: Server) -> None:
    pids = [proc.pid for proc in server.processes]
    (server.home / "pids.json").write_text(json.dumps(pids), encoding="utf-8")


def stop_recorded(home: Path) -> int:
    """Stop the process groups a crashed run recorded in ``home``; how many were signalled."""
    path = home / "pids.json"
    if not path.exists():
        return 0
    count = 0
    for pid in json.loads(path.read_text(encoding="utf-8")):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(int(pid), signal.SIGTERM)
            count += 1
    path.unlink()
    return count


# -- command line -------------------------------------------------------------------


def _print_env(servers: Sequence[Server], out: TextIO) -> None:
    for server in servers:
        out.write(
            f"Airflow {server.version}: {server.url} (user {server.username}, "
            f"password in {server.home}/password)\n"
        )
        (server.home / "password").write_text(server.password, encoding="utf-8")
        (server.home / "password").chmod(0o600)
    out.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="real-airflow", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    install = sub.add_parser("install", help="install releases into the cache")
    install.add_argument("releases", nargs="*", default=list(RELEASES), choices=list(RELEASES))
    up = sub.add_parser("up", help="start both servers until Ctrl-C")
    up.add_argument("--no-scheduler", action="store_true", help="API servers only")
    up.add_argument("--dir", type=Path, help="where the servers' homes go (default: a temp dir)")
    stop = sub.add_parser("stop", help="stop what a crashed `up` left running in DIR")
    stop.add_argument("dir", type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "install":
            for key in args.releases:
                print(ensure_installed(key).parent)
            return 0
        if args.command == "stop":
            count = sum(stop_recorded(home) for home in args.dir.iterdir() if home.is_dir())
            print(f"signalled {count} process groups")
            return 0
        root = args.dir or Path(tempfile.mkdtemp(prefix="real-airflow-"))
        password = secrets.token_urlsafe(12)
        # SIGTERM ends the block like Ctrl-C does, so the servers are stopped.
        signal.signal(signal.SIGTERM, signal.default_int_handler)
        with contextlib.ExitStack() as stack:
            servers = [
                stack.enter_context(
                    running(key, root / key, password=password, scheduler=not args.no_scheduler)
                )
                for key in RELEASES
            ]
            _print_env(servers, sys.stdout)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0
    except SetupError as exc:
        _say(f"error: {exc}")
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
