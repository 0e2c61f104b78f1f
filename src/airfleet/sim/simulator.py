"""The simulated fleet: N Airflow deployments in one aiohttp server."""

from __future__ import annotations

import dataclasses
import random
import ssl as ssl_module
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import anyio
import yaml
from aiohttp import web

from airfleet.sim.app import build_app
from airfleet.sim.astro import AstroEntry, AstroOrg
from airfleet.sim.faults import Faults
from airfleet.sim.state import (
    HISTORY_UNTIL,
    Pool,
    SimDag,
    SimDeployment,
    past_runs,
    utcnow,
)
from airfleet.sim.stats import Stats, Window
from airfleet.sim.tls import TlsFront
from airfleet.sim.tokens import SimCredentials, TokenBook

__all__ = ["SimServer", "Simulator", "serve_forever"]

DEFAULT_DAGS = ("example_etl", "refresh_dims", "nightly_load", "always_fails", "hello")
ENVIRONMENTS = ("prod", "staging", "dev")
REGIONS = ("eu", "us")
ENV_VARS = {
    "client_secret": "AIRFLEET_SIM_CLIENT_SECRET",
    "api_token": "AIRFLEET_SIM_TOKEN",
    "password": "AIRFLEET_SIM_PASSWORD",
}


@dataclass(frozen=True, slots=True)
class SimServer:
    """Where a running simulator listens."""

    url: str
    port: int

    def deployment_url(self, name: str) -> str:
        return f"{self.url}/d/{name}"


class Simulator:
    """N simulated deployments, their faults and what the server saw.

    Deployment ``i`` is named ``{name_prefix}-{i:04d}``; its tags are one of
    prod/staging/dev (``i % 3``), one of eu/us (``i % 2``) and its API. With
    ``api="mixed"`` even deployments speak v2 (Airflow 3), odd ones v1.

    ``run_history``: past runs per deployment, spread over its DAGs and the
    3 days before ``history_until``, the same for the same ``seed``; they never
    change by themselves and are not counted in ``runs_total`` or ``runs``,
    which count triggered runs. ``import_errors``: per deployment name, the
    ``(filename, stack_trace)`` of files its DAG processor could not import
    (a filename relative to the DAGs folder; Airflow 2 shows it absolute).
    """

    def __init__(
        self,
        *,
        deployments: int = 25,
        api: Literal["v1", "v2", "mixed"] | str = "mixed",
        faults: Faults | None = None,
        seed: int = 0,
        dags: Sequence[str] = DEFAULT_DAGS,
        extra_dags: int = 0,
        failing_dags: Sequence[str] = ("always_fails",),
        run_queued_s: float = 0.2,
        run_duration_s: float = 1.0,
        pool_slots: int = 128,
        name_prefix: str = "dep",
        v1_auth_failure_status: Literal[401, 403] = 403,
        run_history: int = 0,
        history_until: datetime = HISTORY_UNTIL,
        import_errors: Mapping[str, Sequence[tuple[str, str]]] | None = None,
    ) -> None:
        if api not in ("v1", "v2", "mixed"):
            raise ValueError(f"api must be v1, v2 or mixed, not {api!r}")
        if run_history < 0:
            raise ValueError(f"run_history must be 0 or more, not {run_history}")
        if history_until.tzinfo is None:
            raise ValueError("history_until must have a time zone (e.g. datetime.UTC)")
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.run_queued_s = run_queued_s
        self.run_duration_s = run_duration_s
        self.v1_auth_failure_status = v1_auth_failure_status
        secret_rng = random.Random(f"credentials-{seed}")
        self.credentials = SimCredentials(
            client_id="airfleet-sim-client",
            client_secret="sim-secret-" + _hex(secret_rng, 16),
            audience="astronomer-ee",
            api_token="sim-api-token-" + _hex(secret_rng, 16),
            username="admin",
            password="sim-password-" + _hex(secret_rng, 8),
        )
        self.tokens = TokenBook(self.credentials)
        self.stats_ = Stats()
        self.limit_windows: defaultdict[str, Window] = defaultdict(Window)
        self.run_log: dict[str, dict[str, list[str]]] = {}
        self.started_at = time.monotonic()
        self.astro: AstroOrg | None = None
        self.served_over_tls = False
        all_dags = [*dags, *(f"dag_{i:04d}" for i in range(extra_dags))]
        self.deployments: dict[str, SimDeployment] = {}
        for i in range(deployments):
            name = f"{name_prefix}-{i:04d}"
            dialect: Literal["v1", "v2"] = ("v2" if i % 2 == 0 else "v1") if api == "mixed" else api
            dep = SimDeployment(
                name=name,
                api=dialect,
                tags=(ENVIRONMENTS[i % 3], REGIONS[i % 2], dialect),
                jwt_secret=secret_rng.randbytes(32),
            )
            for dag_id in all_dags:
                dep.dags[dag_id] = SimDag(dag_id, fails=dag_id in failing_dags)
            dep.pools["default_pool"] = Pool(
                "default_pool",
                pool_slots,
                "Default pool",
                occupied=self.rng.randrange(0, 4),
                queued=self.rng.randrange(0, 3),
            )
            # Its own generator: the history does not shift the faults' random
            # sequence, nor depend on how many deployments come before it.
            history = random.Random(f"history-{seed}-{name}")
            for run in past_runs(dep, history, run_history, history_until):
                dep.add_run(run)
            self.deployments[name] = dep
        for name, errors in (import_errors or {}).items():
            if name not in self.deployments:
                raise ValueError(f"import_errors names no simulated deployment: {name!r}")
            for filename, stack_trace in errors:
                self.deployments[name].record_import_error(filename, stack_trace, history_until)

    # -- facts --------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return list(self.deployments)

    def api_of(self, name: str) -> str:
        return self.deployments[name].api

    def health_body(self) -> dict[str, Any]:
        beat = "2026-11-24T00:00:00+00:00"
        return {
            "metadatabase": {"status": "healthy"},
            "scheduler": {"status": "healthy", "latest_scheduler_heartbeat": beat},
            "triggerer": {"status": "healthy", "latest_triggerer_heartbeat": beat},
            "dag_processor": {"status": "healthy", "latest_dag_processor_heartbeat": beat},
        }

    def stats(self, *, detail: bool = True) -> dict[str, Any]:
        """What the server saw (the body of ``GET /_sim/stats``)."""
        data = self.stats_.snapshot()
        if self.astro is not None:
            data["astro"] = self.astro.stats()
        data["runs"] = {
            name: {dag: len(ids) for dag, ids in per_dag.items()}
            for name, per_dag in self.run_log.items()
        }
        if detail:
            data["run_ids"] = {name: dict(per_dag) for name, per_dag in self.run_log.items()}
            data["pools"] = {
                name: {
                    p.name: {
                        "slots": p.slots,
                        "description": p.description,
                        "include_deferred": p.include_deferred,
                    }
                    for p in dep.pools.values()
                }
                for name, dep in self.deployments.items()
            }
            data["paused"] = {
                name: {d.dag_id: d.is_paused for d in dep.dags.values()}
                for name, dep in self.deployments.items()
            }
        return data

    # -- changes for tests ----------------------------------------------------------------

    def reset_stats(self) -> None:
        self.stats_.reset()
        if self.astro is not None:
            self.astro.reset_stats()

    def enable_astro(
        self,
        *,
        organization: str = "clsimorg0000000000000001",
        workspaces: Sequence[str] = ("analytics", "finance", "platform"),
        hibernating_every: int | None = 10,
        page_max: int = 50,
        limit_max: int | None = None,
        per_second: float = 25.0,
        workspace_names: bool = False,
    ) -> AstroOrg:
        """Serve the Astro platform API for these deployments (under ``/astro``).

        Deployment ``i`` is in workspace ``i % len(workspaces)``; every
        ``hibernating_every``-th one (``i % n == n - 1``) is a development
        deployment that hibernates, and answers 503 to any request. Change
        an entry's ``status`` in the returned organization to simulate others.
        """
        ids = {f"clsimws{i:017d}": name for i, name in enumerate(workspaces)}
        workspace_ids = list(ids)
        entries: dict[str, AstroEntry] = {}
        for i, name in enumerate(self.deployments):
            asleep = (
                hibernating_every is not None and i % hibernating_every == hibernating_every - 1
            )
            entries[name] = AstroEntry(
                id=f"clsimdep{i:016d}",
                workspace_id=workspace_ids[i % len(workspace_ids)],
                status="HIBERNATING" if asleep else "HEALTHY",
                development=asleep,
            )
        self.astro = AstroOrg(
            organization,
            ids,
            entries,
            page_max=page_max,
            limit_max=limit_max,
            per_second=per_second,
            workspace_names=workspace_names,
        )
        return self.astro

    def set_pool(
        self,
        deployment: str,
        name: str,
        *,
        slots: int,
        description: str = "",
        include_deferred: bool = False,
        occupied: int = 0,
        queued: int = 0,
    ) -> None:
        pool = Pool(name, slots, description, include_deferred, occupied, queued)
        self.deployments[deployment].pools[name] = pool

    def delete_pool(self, deployment: str, name: str) -> None:
        self.deployments[deployment].pools.pop(name, None)

    def add_import_error(
        self,
        deployment: str,
        filename: str,
        stack_trace: str,
        *,
        timestamp: datetime | None = None,
    ) -> int:
        """Make ``deployment`` report that its DAG processor could not import ``filename``.

        A file that already has an error keeps its ``import_error_id`` and gets
        the new trace, as Airflow updates the file's row on each parse.
        ``timestamp`` (when it was parsed) defaults to now. Returns the id.
        """
        when = utcnow() if timestamp is None else timestamp
        dep = self.deployments[deployment]
        return dep.record_import_error(filename, stack_trace, when).import_error_id

    def clear_import_errors(self, deployment: str, filename: str | None = None) -> None:
        """Forget ``filename``'s import error (the file was fixed), or every one."""
        dep = self.deployments[deployment]
        if filename is None:
            dep.import_errors.clear()
        else:
            dep.forget_import_error(filename)

    def set_paused(self, deployment: str, dag_id: str, paused: bool) -> None:
        self.deployments[deployment].dags[dag_id].is_paused = paused

    def set_faults(self, **changes: Any) -> None:
        self.faults = dataclasses.replace(self.faults, **changes)

    def revoke_all_tokens(self) -> None:
        self.tokens.revoke_all(time.time())

    # -- configuration for clients --------------------------------------------------------

    def env(self) -> dict[str, str]:
        """Environment variables the written fleet.yaml reads its secrets from."""
        return {var: getattr(self.credentials, field) for field, var in ENV_VARS.items()}

    def fleet_yaml(
        self,
        base_url: str,
        *,
        auth: Literal["oauth", "token", "password"] = "oauth",
        api: Literal["auto", "declared"] = "auto",
        extra_defaults: dict[str, Any] | None = None,
    ) -> str:
        """A fleet.yaml (the README's format) for this simulator at ``base_url``."""
        profiles: dict[str, Any] = {
            "oauth": {
                "kind": "client-credentials",
                "token_url": f"{base_url}/oauth/token",
                "client_id": self.credentials.client_id,
                "client_secret": "${" + ENV_VARS["client_secret"] + "}",
                "audience": self.credentials.audience,
            },
            "token": {"kind": "token", "token": "${" + ENV_VARS["api_token"] + "}"},
            "password": {
                "kind": "password",
                "username": self.credentials.username,
                "password": "${" + ENV_VARS["password"] + "}",
            },
        }
        defaults: dict[str, Any] = {"auth": auth, "api": "auto"}
        defaults.update(extra_defaults or {})
        deployments = []
        for dep in self.deployments.values():
            entry: dict[str, Any] = {
                "name": dep.name,
                "url": f"{base_url}/d/{dep.name}",
                "tags": list(dep.tags),
            }
            if api == "declared":
                entry["api"] = dep.api
            deployments.append(entry)
        document = {
            "version": 1,
            "defaults": defaults,
            "auth": {auth: profiles[auth]},
            "deployments": deployments,
        }
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)

    def discovery_yaml(
        self,
        base_url: str,
        *,
        workspaces: Sequence[str] = (),
        extra_defaults: dict[str, Any] | None = None,
        tags: dict[str, str] | None = None,
    ) -> str:
        """A fleet.yaml that discovers this simulator's deployments from its Astro platform.

        Call :meth:`enable_astro` first. ``workspaces``: workspace *names*
        to discover (their ids are written).
        """
        if self.astro is None:
            raise ValueError("enable_astro() first: the simulator serves no platform API")
        ids = {name: ident for ident, name in self.astro.workspaces.items()}
        source: dict[str, Any] = {
            "organization": self.astro.organization,
            "token": "${" + ENV_VARS["api_token"] + "}",
            "api_url": f"{base_url}/astro",
        }
        if workspaces:
            source["workspaces"] = [ids[name] for name in workspaces]
        if tags:
            source["tags"] = tags
        document: dict[str, Any] = {"version": 1}
        if extra_defaults:
            document["defaults"] = extra_defaults
        document["discover"] = [{"astro": source}]
        return yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)

    # -- serving ------------------------------------------------------------------------

    @asynccontextmanager
    async def running(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl: ssl_module.SSLContext | None = None,
    ) -> AsyncIterator[SimServer]:
        """Serve on ``host:port`` (0 = a free port) for the duration of the block.

        ``ssl``: a server context to serve https with (its certificate, and
        ``verify_mode=CERT_REQUIRED`` with a CA loaded to require client
        certificates). TLS is then terminated in front of the app, sending
        the alerts real servers send (see :mod:`airfleet.sim.tls`).
        """
        runner = web.AppRunner(build_app(self), access_log=None, handle_signals=False)
        await runner.setup()
        # Behind TLS the app listens on loopback only, on a port of its own.
        site = web.TCPSite(
            runner,
            host if ssl is None else "127.0.0.1",
            port if ssl is None else 0,
            backlog=4096,
            reuse_address=True,
        )
        await site.start()
        front: TlsFront | None = None
        try:
            bound = int(runner.addresses[0][1]) if runner.addresses else port
            scheme = "http"
            if ssl is not None:
                front = TlsFront(ssl, host=host, port=port, upstream_port=bound)
                front.start()
                bound, scheme = front.port, "https"
            self.started_at = time.monotonic()
            self.served_over_tls = ssl is not None
            yield SimServer(f"{scheme}://{host}:{bound}", bound)
        finally:
            if front is not None:
                await anyio.to_thread.run_sync(front.close)
            await runner.cleanup()


async def serve_forever(
    sim: Simulator,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    on_ready: Callable[[str], None] | None = None,
    ssl: ssl_module.SSLContext | None = None,
) -> None:
    """Serve until cancelled (Ctrl-C in ``airfleet sim``); https with ``ssl``."""
    async with sim.running(host=host, port=port, ssl=ssl) as server:
        if on_ready is not None:
            on_ready(server.url)
        await anyio.sleep_forever()


def _hex(rng: random.Random, n: int) -> str:
    return rng.randbytes(n).hex()
