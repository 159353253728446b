"""The edge's bound on requests in flight: beyond it, a 503 at once instead of a queue."""
from __future__ import annotations

import logging
import time

from aiohttp import web

from edge import anthropic
from edge.errors import error_response

logger = logging.getLogger(__name__)

# Paths outside the bound: an overloaded edge must still say how it is.
EXEMPT = frozenset({"/healthz", "/readyz"})
RETRY_AFTER_S = "1"
LOG_EVERY_S = 5.0  # refusals are counted and logged in one line per period, not one per request


class InFlight:
    """How many API requests the edge is serving, against its bound."""

    __slots__ = ("limit", "count", "refused", "logged_at")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0
        self.refused = 0
        self.logged_at = 0.0

    def note_refusal(self) -> None:
        """Count a refusal; log the count at most once per LOG_EVERY_S (a flood must not flood the log)."""
        self.refused += 1
        now = time.monotonic()
        if now - self.logged_at >= LOG_EVERY_S:
            logger.warning("overloaded: refused=%d in_flight=%d bound=%d", self.refused, self.count, self.limit)
            self.refused, self.logged_at = 0, now


def in_flight_bound(bound: InFlight):
    """Middleware refusing API requests beyond the bound with an OpenAI-shaped 503 + retry-after.

    The refusal happens before the body is read or the core is called, so it costs next to
    nothing and bills nothing; the OpenAI SDKs retry a 503 on their own after retry-after."""

    @web.middleware
    async def bound_in_flight(request: web.Request, handler):
        if request.path in EXEMPT:
            return await handler(request)
        if bound.count >= bound.limit:
            bound.note_refusal()
            if anthropic.is_anthropic_path(request.path):  # Anthropic's SDKs retry its 529 the same way
                return anthropic.error_response(529, "overloaded_error", "OneKey is serving as many requests "
                                                "as it can; retry shortly.", {"retry-after": RETRY_AFTER_S})
            return error_response(503, "OneKey is serving as many requests as it can; retry shortly.",
                                  "api_error", "server_overloaded", headers={"retry-after": RETRY_AFTER_S})
        bound.count += 1
        try:
            return await handler(request)
        finally:
            bound.count -= 1

    return bound_in_flight
