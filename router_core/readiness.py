"""What a core can serve right now, for /readyz and /metrics: the store's state and the backlog.

/healthz stays a liveness check (the process answers); readiness says whether what needs the
store can be served. A core whose store is down still serves what memory decides (cached keys,
leased credit), so a load balancer should not drain every replica on it; it is for operators
and alerts first.
"""
from __future__ import annotations

from dataclasses import dataclass

from router_core.metering import UsageRecorder
from router_core.ratelimit import RateLimiter
from router_core.store_guard import StoreGuard


@dataclass(frozen=True, slots=True)
class State:
    ready: bool
    store: str               # "up" | "down"
    store_down_seconds: float
    usage_backlog: int       # events not yet in the store
    journal_bytes: int       # journal segments not yet dropped
    rate_limit_store: str    # "shared" | "local" (Redis down: counting here) | "memory" (no Redis)
    store_outages: int       # times the store went down, since start
    store_refused_calls: int  # store calls refused at once while it was known down


class Readiness:
    def __init__(self, guard: StoreGuard, recorder: UsageRecorder, limiter: RateLimiter | None = None) -> None:
        self._guard = guard
        self._recorder = recorder
        self._limiter = limiter

    def state(self) -> State:
        up = self._guard.up
        shared = self._limiter.shared_store_up if self._limiter is not None else None
        return State(
            ready=up, store="up" if up else "down", store_down_seconds=round(self._guard.down_for(), 3),
            usage_backlog=self._recorder.pending, journal_bytes=self._recorder.journal_bytes,
            rate_limit_store="memory" if shared is None else ("shared" if shared else "local"),
            store_outages=self._guard.outages, store_refused_calls=self._guard.refused)
