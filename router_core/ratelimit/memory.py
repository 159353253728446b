"""Counters in this process's memory: the single-machine default, no Redis needed."""
from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence

from router_core.ratelimit.window import WINDOW_S, Count, Decision, Limit, count, decide


class MemoryWindow:
    """Sliding-minute counters in a dict; atomic because a hit never awaits.

    Counters idle for a minute are dropped as new hits arrive, so memory follows the keys
    active in the last minute, at most 61 buckets each.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._counters: OrderedDict[str, dict[int, int]] = OrderedDict()

    @property
    def shared_up(self) -> None:
        """None: nothing is shared, so there is no shared store to be up or down."""
        return None

    async def hit(self, limits: Sequence[Limit]) -> Decision:
        return self.hit_now(limits)

    def hit_now(self, limits: Sequence[Limit]) -> Decision:
        """The synchronous hit (also the fallback of a shared store that cannot be reached)."""
        now = self._clock()
        second = int(now)
        self._sweep(second)
        states = []
        for limit in limits:
            buckets = self._counters.setdefault(limit.name, {})
            self._counters.move_to_end(limit.name)
            for bucket in [b for b in buckets if b < second - WINDOW_S]:
                del buckets[bucket]
            states.append((buckets, *count(buckets, second, limit.rpm)))
        allowed = all(fits for _, fits, _ in states)
        counts = []
        for buckets, _, c in states:
            if allowed:
                buckets[second] = buckets.get(second, 0) + 1
                c = Count(c.used + 1, second, None)
            counts.append(c)
        return decide(now, limits, counts, allowed)

    def _sweep(self, second: int) -> None:
        while self._counters:
            name, buckets = next(iter(self._counters.items()))
            if buckets and max(buckets) >= second - WINDOW_S:
                return
            del self._counters[name]

    def __len__(self) -> int:
        return len(self._counters)

    async def close(self) -> None:
        self._counters.clear()
