"""Counters in Redis, shared by every core replica: one Lua script per hit, so the check and
the count are one atomic step however many replicas ask at once.

The clock is Redis's own (`TIME` inside the script): replicas whose clocks disagree still
share one window. Counter names carry the project id in braces (a Redis Cluster hash tag), so a
key's and its project's counters always live in one slot and one script may touch both.

If Redis cannot be reached (refused, reset, or silent past `timeout`), the request is not
refused for it: this replica counts in its own memory, so the limit still holds per replica (N
replicas then allow up to N times the limit). This is fail-open by design: a rate limit protects
capacity and fairness, and an outage of its store must not become an outage of the whole API.
Only the requests in flight when Redis goes away wait for it, at most `timeout`; after that no
request waits for Redis: one background probe PINGs it every `retry_interval` and puts the
counters back in Redis once it answers, traffic or not. Each change of state is logged once,
naming only Redis's host and port.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from router_core.ratelimit.memory import MemoryWindow
from router_core.ratelimit.window import SPAN, WINDOW_S, Count, Decision, Limit, decide

logger = logging.getLogger(__name__)

# What "Redis cannot be reached" looks like: its own errors (refused, reset, timed out, loading,
# read-only replica...) and the socket's.
UNREACHABLE = (RedisError, OSError, TimeoutError)

# KEYS: one hash per limit (field: bucket second, value: requests); ARGV: each limit's rpm.
# The same rule as window.count(): admit when every counter has fewer than rpm requests in the
# buckets second-60 .. second, then count the request in all of them.
HIT_SCRIPT = f"""
local t = redis.call('TIME')
local second = tonumber(t[1])
local oldest = second - {WINDOW_S}
local states = {{}}
local allowed = 1
for i, key in ipairs(KEYS) do
  local rpm = tonumber(ARGV[i])
  local flat = redis.call('HGETALL', key)
  local buckets, stale, used = {{}}, {{}}, 0
  for j = 1, #flat, 2 do
    local b, c = tonumber(flat[j]), tonumber(flat[j + 1])
    if b < oldest then
      stale[#stale + 1] = flat[j]
    else
      buckets[#buckets + 1] = {{b, c}}
      used = used + c
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  table.sort(buckets, function(x, y) return x[1] < y[1] end)
  local newest = -1
  if #buckets > 0 then newest = buckets[#buckets][1] end
  local release = -1
  if used >= rpm then
    allowed = 0
    local left = used
    for _, bc in ipairs(buckets) do
      left = left - bc[2]
      release = bc[1]
      if left < rpm then break end
    end
  end
  states[i] = {{used, newest, release}}
end
local out = {{t[1], t[2], allowed}}
for i, key in ipairs(KEYS) do
  local s = states[i]
  if allowed == 1 then
    redis.call('HINCRBY', key, t[1], 1)
    redis.call('EXPIRE', key, {SPAN + 1})
    s = {{s[1] + 1, second, -1}}
  end
  out[#out + 1] = s[1]
  out[#out + 1] = s[2]
  out[#out + 1] = s[3]
end
return out
"""

KEY_PREFIX = "onekey:rl:"


def redis_location(url: str) -> str:
    """host:port/db of a Redis URL, for logs: never its user or password."""
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or 6379}{parts.path or '/0'}"


class RedisWindow:
    """Sliding-minute counters in Redis, with this process's memory as the fallback."""

    def __init__(self, url: str, *, timeout: float = 0.5, retry_interval: float = 1.0,
                 fallback: MemoryWindow | None = None) -> None:
        self._client = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._script = self._client.register_script(HIT_SCRIPT)
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._fallback = fallback or MemoryWindow()
        self._down = False
        self._probe: asyncio.Task[None] | None = None
        self.location = redis_location(url)
        self.fallbacks = 0  # hits counted in memory while Redis was unreachable

    @property
    def shared_up(self) -> bool:
        """Whether counting is shared in Redis now (False: this replica counts alone)."""
        return not self._down

    async def hit(self, limits: Sequence[Limit]) -> Decision:
        if self._down:
            self.fallbacks += 1
            return self._fallback.hit_now(limits)
        try:
            async with asyncio.timeout(self._timeout):
                raw = await self._script(keys=[KEY_PREFIX + lim.name for lim in limits],
                                         args=[lim.rpm for lim in limits])
        except UNREACHABLE as exc:
            self._went_down(exc)
            self.fallbacks += 1
            return self._fallback.hit_now(limits)
        return _decision(raw, limits)

    def _went_down(self, exc: BaseException) -> None:
        if self._down:  # another request in flight noticed it first
            return
        self._down = True
        logger.warning("rate limit store at %s unreachable (%s): limiting on this replica only, "
                       "in memory, until it answers", self.location, type(exc).__name__)
        self._probe = asyncio.get_running_loop().create_task(self._until_up(), name="redis-rate-limit-probe")

    async def _until_up(self) -> None:
        """PING Redis every retry_interval until it answers, then share the counters again."""
        while True:
            await asyncio.sleep(self._retry_interval)
            try:
                async with asyncio.timeout(self._timeout):
                    await self._client.ping()
            except UNREACHABLE:
                continue
            self._down = False
            self._probe = None
            logger.warning("rate limit store at %s answers again: limits are shared across replicas",
                           self.location)
            return

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        await self._client.aclose()


def _decision(raw: list, limits: Sequence[Limit]) -> Decision:
    now = int(raw[0]) + int(raw[1]) / 1_000_000
    allowed = int(raw[2]) == 1
    counts = []
    for i in range(len(limits)):
        used, newest, release = (int(v) for v in raw[3 + 3 * i: 6 + 3 * i])
        counts.append(Count(used, newest if newest >= 0 else None, release if release >= 0 else None))
    return decide(now, limits, counts, allowed)
