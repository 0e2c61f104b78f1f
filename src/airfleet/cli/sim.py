"""``airfleet sim``: run the simulated fleet standalone, to rehearse a job against it."""

from __future__ import annotations

import ssl
from pathlib import Path

import anyio
import click

from airfleet.sim import Faults, Simulator, serve_forever

EPILOG = """\b
Examples:
  airfleet sim --deployments 50 --write-config sim-fleet.yaml
  airfleet sim --api v2 --latency-ms 50 --error-rate 0.05 --rate-limit 20
  airfleet sim --deployments 250 --astro --write-config astro-fleet.yaml
  airfleet sim --run-history 300 --write-config sim-fleet.yaml   # then: airfleet runs
Then, in another shell, export the printed variables and run e.g.
  airfleet -c sim-fleet.yaml trigger refresh_dims -s tag:prod
"""


@click.command(epilog=EPILOG)
@click.option("--deployments", "count", type=click.IntRange(min=1), default=25, show_default=True)
@click.option("--port", type=click.IntRange(min=0, max=65535), default=8080, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--api", type=click.Choice(["v1", "v2", "mixed"]), default="mixed", show_default=True)
@click.option(
    "--auth",
    type=click.Choice(["oauth", "token", "password"]),
    default="oauth",
    show_default=True,
    help="Auth profile kind the written fleet.yaml uses.",
)
@click.option("--write-config", type=click.Path(dir_okay=False), help="Write a fleet.yaml here.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for every fault.")
@click.option("--extra-dags", type=click.IntRange(min=0), default=0, help="Extra DAGs each.")
@click.option(
    "--run-history",
    type=click.IntRange(min=0),
    default=0,
    help="Past DAG runs each (mixed states, the 3 days before 2026-11-24), for airfleet runs.",
)
@click.option("--latency-ms", type=click.FloatRange(min=0), default=0.0, help="Added latency.")
@click.option("--latency-spread-ms", type=click.FloatRange(min=0), default=0.0)
@click.option("--error-rate", type=click.FloatRange(0, 1), default=0.0, help="500/502/503s.")
@click.option(
    "--rate-limit",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Per-deployment req/s before 429.",
)
@click.option("--reset-rate", type=click.FloatRange(0, 1), default=0.0, help="Connection resets.")
@click.option("--slow-rate", type=click.FloatRange(0, 1), default=0.0, help="Slow answers.")
@click.option("--slow-s", type=click.FloatRange(min=0), default=60.0, show_default=True)
@click.option("--commit-then-fail-rate", type=click.FloatRange(0, 1), default=0.0)
@click.option("--token-ttl", type=click.FloatRange(min=1), default=3600.0, show_default=True)
@click.option("--token-outage-start", type=click.FloatRange(min=0), default=0.0)
@click.option("--token-outage", type=click.FloatRange(min=0), default=0.0, help="Seconds down.")
@click.option("--gateway", is_flag=True, help="An auth gateway refuses anonymous requests.")
@click.option("--echo-credentials", is_flag=True, help="Refusals quote what they were sent.")
@click.option("--compress", is_flag=True, help="Gzip every answer.")
@click.option(
    "--astro",
    is_flag=True,
    help="Serve the Astro platform API too (3 workspaces, a tenth hibernating); "
    "--write-config then writes a fleet.yaml that discovers them.",
)
@click.option(
    "--tls-cert",
    type=click.Path(exists=True, dir_okay=False),
    help="Serve https with this PEM certificate (and its key, unless --tls-key).",
)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="Its PEM key.")
@click.option(
    "--tls-client-ca",
    type=click.Path(exists=True, dir_okay=False),
    help="Require client certificates signed by this CA (PEM).",
)
def sim(
    count: int,
    port: int,
    host: str,
    api: str,
    auth: str,
    write_config: str | None,
    seed: int,
    extra_dags: int,
    run_history: int,
    latency_ms: float,
    latency_spread_ms: float,
    error_rate: float,
    rate_limit: float,
    reset_rate: float,
    slow_rate: float,
    slow_s: float,
    commit_then_fail_rate: float,
    token_ttl: float,
    token_outage_start: float,
    token_outage: float,
    gateway: bool,
    echo_credentials: bool,
    compress: bool,
    astro: bool,
    tls_cert: str | None,
    tls_key: str | None,
    tls_client_ca: str | None,
) -> None:
    """Serve a simulated fleet of Airflow 2 and 3 deployments until interrupted."""
    faults = Faults(
        latency_ms=latency_ms,
        latency_spread_ms=latency_spread_ms,
        error_rate=error_rate,
        rate_limit_per_s=rate_limit or None,
        reset_rate=reset_rate,
        slow_rate=slow_rate,
        slow_s=slow_s,
        commit_then_fail_rate=commit_then_fail_rate,
        token_ttl_s=token_ttl,
        token_outage_start_s=token_outage_start,
        token_outage_s=token_outage,
        gateway=gateway,
        echo_credentials=echo_credentials,
        compress=compress,
    )
    simulator = Simulator(
        deployments=count,
        api=api,
        faults=faults,
        seed=seed,
        extra_dags=extra_dags,
        run_history=run_history,
    )
    context = _server_context(tls_cert, tls_key, tls_client_ca)
    if astro:
        simulator.enable_astro()

    def ready(url: str) -> None:
        click.echo(f"simulated fleet of {count} deployments at {url}/d/<name>", err=True)
        click.echo(f"stats: {url}/_sim/stats", err=True)
        if simulator.astro is not None:
            organization = simulator.astro.organization
            click.echo(f"Astro platform API: {url}/astro, organization {organization}", err=True)
        if write_config:
            text = (
                simulator.discovery_yaml(url) if astro else simulator.fleet_yaml(url, auth=auth)  # type: ignore[arg-type]
            )
            Path(write_config).write_text(text, encoding="utf-8")
            click.echo(f"wrote {write_config}; its secrets come from:", err=True)
        else:
            click.echo("fleet.yaml secrets, if you write one (--write-config):", err=True)
        for name, value in simulator.env().items():
            click.echo(f"export {name}={value}")

    try:
        anyio.run(
            lambda: serve_forever(simulator, host=host, port=port, on_ready=ready, ssl=context)
        )
    except KeyboardInterrupt:
        click.echo("simulator stopped", err=True)


def _server_context(
    cert: str | None, key: str | None, client_ca: str | None
) -> ssl.SSLContext | None:
    """The simulator's https settings, or None for plain http."""
    if cert is None:
        if key is not None or client_ca is not None:
            raise click.UsageError("--tls-key and --tls-client-ca need --tls-cert")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert, key)
        if client_ca is not None:
            context.load_verify_locations(cafile=client_ca)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise click.UsageError(f"cannot use the TLS files: {exc}") from None
    return context
