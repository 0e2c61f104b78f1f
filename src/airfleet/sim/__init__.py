"""A simulated fleet of Airflow 2 and 3 deployments, for tests, benchmarks and demos.

One aiohttp server plays N deployments at ``/d/<name>``, each speaking
``/api/v1`` or ``/api/v2`` with real Airflow's paths, fields and status codes,
with token endpoints, faults on demand, and ``GET /_sim/stats``: what the
server saw, so tests assert on the server's view rather than the client's.
"""

from __future__ import annotations

from airfleet.sim.faults import Faults
from airfleet.sim.simulator import SimServer, Simulator, serve_forever
from airfleet.sim.tokens import SimCredentials

__all__ = ["Faults", "SimCredentials", "SimServer", "Simulator", "serve_forever"]
