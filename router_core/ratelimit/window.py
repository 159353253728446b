"""The counting rule every limiter store follows: a sliding minute in one-second buckets.

A request at second `s` is admitted when fewer than `rpm` requests were admitted in the
buckets `s - 60 … s` (61 buckets, so the span counted always covers the whole minute before
the request). Hence no 60-second span ever holds more than `rpm` admitted requests; the price
is that a slot comes back up to one second late. A refused request is not counted, so a client
that keeps knocking is not locked out for longer. State per counter is at most 61 small
integers, whatever the limit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

WINDOW_S = 60
# Buckets counted, the request's own included: the span [s - 60, s + 1) holds the whole minute.
SPAN = WINDOW_S + 1


@dataclass(frozen=True, slots=True)
class Limit:
    """One counter a request must fit in: `kind` is "key" or "project", `name` its store key."""

    kind: str
    name: str
    rpm: int


@dataclass(frozen=True, slots=True)
class Count:
    """A counter's state after one hit: requests in the window (this one included if admitted),
    its newest bucket (None if empty), and the bucket whose exit frees a slot (when full)."""

    used: int
    newest: int | None
    release: int | None


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: Limit          # the binding limit: the one that refused, or the nearest to full
    used: int             # requests counted against it in the window
    remaining: int
    reset_s: float        # until the counter is empty again (OpenAI's x-ratelimit-reset-*)
    retry_after_s: float  # until a request would be admitted; 0 when admitted


class WindowStore(Protocol):
    """Where counters live: one process's memory, or a store all replicas share."""

    @property
    def shared_up(self) -> bool | None:
        """Whether the counters are shared by all replicas now; None for a store never shared."""
        ...

    async def hit(self, limits: Sequence[Limit]) -> Decision:
        """Admit one request if it fits every limit (counting it in all), atomically."""
        ...

    async def close(self) -> None: ...


def count(buckets: dict[int, int], second: int, rpm: int) -> tuple[bool, Count]:
    """(fits, state) of one counter's live buckets at `second`, before counting the request.

    `buckets` must hold only live buckets (>= second - 60); the caller drops the rest.
    """
    used = sum(buckets.values())
    newest = max(buckets) if buckets else None
    if used < rpm:
        return True, Count(used, newest, None)
    release, left = None, used
    for bucket in sorted(buckets):
        left -= buckets[bucket]
        release = bucket
        if left < rpm:
            break
    return False, Count(used, newest, release)


def decide(now: float, limits: Sequence[Limit], counts: Sequence[Count], allowed: bool) -> Decision:
    """The decision and header values from each counter's state (shared by every store)."""
    def reset(c: Count) -> float:
        return max(0.0, c.newest + SPAN - now) if c.newest is not None else 0.0

    if allowed:
        limit, c = min(zip(limits, counts), key=lambda lc: lc[0].rpm - lc[1].used)
        return Decision(True, limit, c.used, max(0, limit.rpm - c.used), reset(c), 0.0)
    refused = [(lim, c) for lim, c in zip(limits, counts) if c.release is not None]
    limit, c = max(refused, key=lambda lc: lc[1].release)
    return Decision(False, limit, c.used, 0, reset(c), max(0.0, c.release + SPAN - now))


def go_duration(seconds: float) -> str:
    """A duration as OpenAI writes it in x-ratelimit-reset-*: `12ms`, `1s`, `20.5s`, `6m0s`."""
    ms = max(0, round(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    minutes, ms = divmod(ms, 60_000)
    secs = f"{ms // 1000}.{ms % 1000:03d}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
