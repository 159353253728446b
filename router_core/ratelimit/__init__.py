"""Request rate limits per key and per project, checked before a request is forwarded.

A key's limit is its own `rate_limit_rpm`, or the configured default when it has none (0: no
limit). A project's limit, when set, counts all its keys together. A request must fit both;
a refused one is counted in neither, reaches no provider and reserves no credit.
"""
from __future__ import annotations

import logging
import math

from router_core.errors import RateLimited
from router_core.keys import KeyIdentity
from router_core.ratelimit.memory import MemoryWindow
from router_core.ratelimit.window import Decision, Limit, WindowStore, go_duration

logger = logging.getLogger(__name__)

# The OpenAI SDKs honour a retry-after of up to 60 s; beyond it they would retry too early.
SDK_MAX_RETRY_AFTER_S = 60

__all__ = ["RateLimiter", "create_store", "headers_of"]


def create_store(redis_url: str = "", redis_timeout: float = 0.5) -> WindowStore:
    """Redis when a URL is configured (limits shared by every replica), memory otherwise."""
    if not redis_url:
        return MemoryWindow()
    from router_core.ratelimit.redis_store import RedisWindow

    store = RedisWindow(redis_url, timeout=redis_timeout)
    logger.info("rate-limit counters shared by all replicas in Redis at %s", store.location)
    return store


def headers_of(decision: Decision) -> list[tuple[str, str]]:
    """OpenAI's x-ratelimit-*-requests headers, plus retry-after when refused."""
    headers = [
        ("x-ratelimit-limit-requests", str(decision.limit.rpm)),
        ("x-ratelimit-remaining-requests", str(decision.remaining)),
        ("x-ratelimit-reset-requests", go_duration(decision.reset_s)),
    ]
    if not decision.allowed:
        wait = decision.retry_after_s
        headers += [
            ("retry-after", str(max(1, math.ceil(wait)))),
            ("retry-after-ms", str(max(1, math.ceil(wait * 1000)))),
            # Within what the SDKs wait out, their automatic retry will be admitted; a longer
            # wait would only be refused again, so tell them not to.
            ("x-should-retry", "true" if wait <= SDK_MAX_RETRY_AFTER_S else "false"),
        ]
    return headers


class RateLimiter:
    """Admits a request for an identity, or raises RateLimited with OpenAI's headers."""

    def __init__(self, store: WindowStore, default_rpm: int = 0) -> None:
        self._store = store
        self._default_rpm = default_rpm
        self.refused = {"key": 0, "project": 0}  # refusals by the limit that refused, for /metrics

    @property
    def fallbacks(self) -> int:
        """Requests counted in memory because the shared store could not be reached."""
        return getattr(self._store, "fallbacks", 0)

    @property
    def shared_store_up(self) -> bool | None:
        """True while counting is shared in Redis, False while this replica counts alone because
        Redis cannot be reached, None when no shared store is configured (for /metrics, /readyz)."""
        return self._store.shared_up

    def limits_for(self, identity: KeyIdentity) -> list[Limit]:
        """The counters a request of this identity must fit; empty when it has no limit."""
        limits = []
        # The project id in braces keeps a key's and its project's counters in one Redis slot.
        key_rpm = identity.key_rpm if identity.key_rpm is not None else self._default_rpm
        if key_rpm > 0:
            limits.append(Limit("key", f"{{{identity.project_id}}}:key:{identity.key_id}", key_rpm))
        if identity.project_rpm:
            limits.append(Limit("project", f"{{{identity.project_id}}}:project", identity.project_rpm))
        return limits

    async def admit(self, identity: KeyIdentity, request_id: str = "") -> list[tuple[str, str]]:
        """The rate-limit headers for the answer; raises RateLimited when over a limit."""
        limits = self.limits_for(identity)
        if not limits:
            return []
        decision = await self._store.hit(limits)
        headers = headers_of(decision)
        if decision.allowed:
            return headers
        limit = decision.limit
        self.refused[limit.kind] += 1
        logger.debug("rate limited: request_id=%s scope=%s limit=%d retry_after=%.1fs", request_id,
                     limit.kind, limit.rpm, decision.retry_after_s)
        where = "this API key" if limit.kind == "key" else "this project"
        raise RateLimited(
            f"Rate limit reached for requests per minute (RPM) on {where}: Limit {limit.rpm}, "
            f"Used {decision.used}, Requested 1. Please try again in {go_duration(decision.retry_after_s)}.",
            headers=headers)

    async def close(self) -> None:
        await self._store.close()
