"""Per-channel health: a circuit breaker over a sliding window, plus latency for operators.

States: `closed` (traffic flows), `open` (skipped until its cool-down ends), `half_open` (one
probe request may go; its outcome closes or re-opens the circuit). The circuit opens on a
failure *rate* over a time window, never on one error: a single timeout on a healthy channel
must not take it out of rotation. Outcomes are cheap to record (an append to a bounded deque),
so the hot path pays no more than a few attribute reads per attempt.
"""
from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True)
class BreakerSettings:
    """When to open a circuit and how long to keep it open (seconds)."""

    window: float = 60.0          # outcomes older than this are forgotten
    min_requests: int = 5         # no verdict on fewer outcomes than this in the window
    failure_rate: float = 0.5     # open at or above this share of failures in the window
    cooldown: float = 15.0        # first open period; doubles after each failed probe
    max_cooldown: float = 300.0


class Breaker:
    """The health of one channel. Not thread-safe: used from the core's one event loop."""

    __slots__ = ("settings", "_clock", "_outcomes", "_latencies", "state", "_open_until",
                 "_cooldown", "_probe_out", "_failed", "requests", "failures", "opened")

    def __init__(self, settings: BreakerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        # Unbounded on purpose: trimmed by age in _window, and a maxlen would drop entries
        # without adjusting the failure count. Each entry is a small tuple.
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._latencies: deque[float] = deque(maxlen=200)
        self.state = CLOSED
        self._open_until = 0.0
        self._cooldown = settings.cooldown
        self._probe_out = False
        self._failed = 0
        self.requests = 0   # lifetime counters, for metrics
        self.failures = 0
        self.opened = 0

    def allow(self) -> bool:
        """May a request go to this channel now? In half-open, only one probe at a time."""
        if self.state == CLOSED:
            return True
        now = self._clock()
        if self.state == OPEN and now >= self._open_until:
            self.state = HALF_OPEN
            self._probe_out = False
        if self.state == HALF_OPEN and not self._probe_out:
            self._probe_out = True
            return True
        return False

    def status(self) -> str:
        """The state as an operator should read it: an open circuit due for a probe is half-open."""
        if self.state == OPEN and self._clock() >= self._open_until:
            return HALF_OPEN
        return self.state

    def retry_in(self) -> float:
        """Seconds until this channel may be tried again (0 when it may be now)."""
        if self.state == CLOSED:
            return 0.0
        if self.state == HALF_OPEN:
            return 0.0 if not self._probe_out else 1.0
        return max(0.0, self._open_until - self._clock())

    def success(self, latency: float | None = None) -> None:
        """The channel answered (any answer that is not the provider's own trouble)."""
        self.requests += 1
        if latency is not None:
            self._latencies.append(latency)
        if self.state == HALF_OPEN:
            self._close()
        elif self.state == CLOSED:
            now = self._clock()
            self._outcomes.append((now, True))
            self._window(now)  # amortised O(1): keeps the deque to the window
        # OPEN: a late answer of a request sent before the circuit opened changes nothing.

    def failure(self) -> None:
        """Connect error, timeout, 429, 5xx, a broken or unreadable answer."""
        self.requests += 1
        self.failures += 1
        now = self._clock()
        if self.state == HALF_OPEN:
            # The probe failed: open again, for longer each time (bounded).
            self._cooldown = min(self._cooldown * 2, self.settings.max_cooldown)
            self._open(now)
            return
        if self.state == OPEN:
            return
        self._outcomes.append((now, False))
        self._failed += 1
        total, failed = self._window(now)
        if total >= self.settings.min_requests and failed / total >= self.settings.failure_rate:
            self._cooldown = self.settings.cooldown
            self._open(now)

    def release(self) -> None:
        """A probe ended without a verdict (the client left): let another probe go."""
        self._probe_out = False

    def cool_down(self, seconds: float) -> None:
        """The provider asked for a pause (retry-after): skip the channel until then."""
        if seconds <= 0:
            return
        now = self._clock()
        if self.state == CLOSED or self._open_until < now + seconds:
            self.state = OPEN
            self._open_until = now + seconds
            self._probe_out = False

    def error_rate(self) -> float:
        """The share of failures among the outcomes in the window (0.0 with none)."""
        total, failed = self._window(self._clock())
        return failed / total if total else 0.0

    def latency_p50(self) -> float:
        """Median time to the provider's response head over recent successes, in seconds."""
        return statistics.median(self._latencies) if self._latencies else 0.0

    def _window(self, now: float) -> tuple[int, int]:
        horizon = now - self.settings.window
        while self._outcomes and self._outcomes[0][0] < horizon:
            if not self._outcomes.popleft()[1]:
                self._failed -= 1
        return len(self._outcomes), self._failed

    def _open(self, now: float) -> None:
        # The window's outcomes stay: they are the error rate an operator should see while
        # the circuit is open. They are cleared when it closes.
        self.state = OPEN
        self.opened += 1
        self._open_until = now + self._cooldown
        self._probe_out = False

    def _close(self) -> None:
        self.state = CLOSED
        self._cooldown = self.settings.cooldown
        self._probe_out = False
        self._outcomes.clear()
        self._failed = 0
