"""What the simulated servers saw: counters and 1-second sliding-window maxima.

Every update is O(1) amortised: a window is a deque of arrival times from
which times older than one second are dropped as new ones arrive.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats", "Window"]


@dataclass(slots=True)
class Window:
    """Most arrivals within any interval (t - 1 s, t]."""

    times: deque[float] = field(default_factory=deque)
    peak: int = 0

    def arrive(self, now: float) -> int:
        times = self.times
        times.append(now)
        edge = now - 1.0
        while times[0] <= edge:
            times.popleft()
        if len(times) > self.peak:
            self.peak = len(times)
        return len(times)

    def count(self, now: float) -> int:
        """Arrivals in (now - 1 s, now], without recording one."""
        edge = now - 1.0
        while self.times and self.times[0] <= edge:
            self.times.popleft()
        return len(self.times)


class Stats:
    """Counters the tests read through ``GET /_sim/stats``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        self.by_deployment: Counter[str] = Counter()
        self.by_endpoint: Counter[str] = Counter()
        self.oauth_fetches = 0
        self.oauth_requests = 0  # to the token service, answered or not
        self.jwt_fetches: Counter[str] = Counter()
        self.token_fetch_failures = 0
        self.auth_failures = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.in_flight_by: Counter[str] = Counter()
        self.max_in_flight_by: dict[str, int] = {}
        self.fleet_window = Window()
        self.windows: defaultdict[str, Window] = defaultdict(Window)
        self.credential_windows: defaultdict[str, Window] = defaultdict(Window)
        self.runs_total = 0
        self.duplicates_refused = 0
        self.duplicates_by: Counter[str] = Counter()
        self.faults: Counter[str] = Counter(
            {"error": 0, "rate_limited": 0, "reset": 0, "slow": 0, "commit_then_fail": 0}
        )

    def arrive(self, deployment: str, now: float) -> None:
        self.requests_total += 1
        self.by_deployment[deployment] += 1
        self.fleet_window.arrive(now)
        self.windows[deployment].arrive(now)
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        current = self.in_flight_by[deployment] + 1
        self.in_flight_by[deployment] = current
        if current > self.max_in_flight_by.get(deployment, 0):
            self.max_in_flight_by[deployment] = current

    def leave(self, deployment: str) -> None:
        self.in_flight -= 1
        self.in_flight_by[deployment] -= 1

    def credential(self, label: str, now: float) -> None:
        self.credential_windows[label].arrive(now)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            # Every request a client sent: the deployments' and the token service's.
            "requests_seen": self.requests_total + self.oauth_requests,
            "requests_by_deployment": dict(self.by_deployment),
            "requests_by_endpoint": dict(self.by_endpoint),
            "token_fetches": {
                "oauth": self.oauth_fetches,
                "jwt": dict(self.jwt_fetches),
                "total": self.oauth_fetches + sum(self.jwt_fetches.values()),
            },
            "token_fetch_failures": self.token_fetch_failures,
            "auth_failures": self.auth_failures,
            "max_in_flight": self.max_in_flight,
            "max_in_flight_by_deployment": dict(self.max_in_flight_by),
            "max_per_second": self.fleet_window.peak,
            "max_per_second_by_deployment": {k: w.peak for k, w in self.windows.items()},
            "max_per_second_by_credential": {k: w.peak for k, w in self.credential_windows.items()},
            "runs_total": self.runs_total,
            "duplicates_refused": self.duplicates_refused,
            "duplicates_by_deployment": dict(self.duplicates_by),
            "faults_injected": dict(self.faults),
        }
