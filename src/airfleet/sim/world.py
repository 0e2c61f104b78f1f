"""What the simulator's HTTP surface may see of the simulator: its world, as a Protocol.

``app.py`` and ``endpoints.py`` are handed a :class:`SimWorld` and import
nothing from ``simulator.py``, which builds the app; so the server code cannot
reach past this list, and the two never import each other. ``Simulator``
satisfies it structurally.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Any, Literal, Protocol

from airfleet.sim.astro import AstroOrg
from airfleet.sim.faults import Faults
from airfleet.sim.state import SimDeployment
from airfleet.sim.stats import Stats, Window
from airfleet.sim.tokens import SimCredentials, TokenBook

__all__ = ["SimWorld"]


class SimWorld(Protocol):
    """The state and controls one simulated server answers from; all read-only here.

    The handlers read every attribute through the object on each request:
    ``faults`` is replaced whole by ``set_faults`` while the server runs, and
    ``started_at`` is reset when it starts listening.
    """

    @property
    def deployments(self) -> dict[str, SimDeployment]:
        """Every simulated deployment by name."""
        ...

    @property
    def astro(self) -> AstroOrg | None:
        """The Astro platform over these deployments, when enabled."""
        ...

    @property
    def served_over_tls(self) -> bool:
        """Clients reach the server by https (the app itself sees plain http)."""
        ...

    @property
    def faults(self) -> Faults:
        """The faults in force now."""
        ...

    @property
    def rng(self) -> random.Random:
        """The seeded source of every random fault and latency."""
        ...

    @property
    def credentials(self) -> SimCredentials:
        """The credentials the token endpoints accept."""
        ...

    @property
    def tokens(self) -> TokenBook:
        """Tokens issued, and the check of a request's Authorization header."""
        ...

    @property
    def stats_(self) -> Stats:
        """What the server saw; the handlers count into it."""
        ...

    @property
    def limit_windows(self) -> defaultdict[str, Window]:
        """Per deployment, the requests inside the rate-limit fault's window."""
        ...

    @property
    def run_log(self) -> dict[str, dict[str, list[str]]]:
        """Run ids triggered, per deployment and DAG."""
        ...

    @property
    def run_queued_s(self) -> float:
        """How long a new DAG run stays queued."""
        ...

    @property
    def run_duration_s(self) -> float:
        """How long a DAG run runs once started."""
        ...

    @property
    def started_at(self) -> float:
        """``time.monotonic()`` when the server started listening (the token outage's zero)."""
        ...

    @property
    def v1_auth_failure_status(self) -> Literal[401, 403]:
        """What an Airflow 2 deployment answers a bad credential with."""
        ...

    def health_body(self) -> dict[str, Any]:
        """The body of a health endpoint."""
        ...

    def stats(self, *, detail: bool = True) -> dict[str, Any]:
        """The body of ``GET /_sim/stats``."""
        ...

    def reset_stats(self) -> None:
        """Forget what the server saw."""
        ...

    def revoke_all_tokens(self) -> None:
        """Make every token issued so far invalid."""
        ...

    def set_faults(self, **changes: Any) -> None:
        """Replace the faults in force with a copy that has ``changes``."""
        ...
