"""Whether the routing store answers, and the bound on waiting for it on the hot path.

A managed PostgreSQL restarts or fails over for 10–60 s; a partition holds connections open
with no bytes moving. Neither may turn a request into a 500 or hold it for long. So every
store call a request waits on goes through one StoreGuard:
- it is bounded by `timeout` (the driver's own timeouts fire first; this is the backstop);
- a store error or a timeout marks the store down and becomes StoreUnavailable: a 503 with
  `retry-after` at the edge, which the OpenAI and Anthropic SDKs retry;
- while the store is down, calls fail at once, but for one probe at a time after a backoff
  (doubling from PROBE_FIRST_S to PROBE_MAX_S), so a dead store costs a request nothing and
  the pool reconnects by itself once the store is back. The usage writer's rounds are probes too.

Whatever memory can decide is decided without the store: a cached key, leased credit, known
limits (see keys.py, credits.py). Charges of served requests wait in the usage backlog and the
local journal (metering.py, journal.py) until the store is back.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import exc as sa_exc

from router_core.errors import StoreUnavailable

logger = logging.getLogger(__name__)

T = TypeVar("T")

PROBE_FIRST_S = 0.25
PROBE_MAX_S = 5.0

DOWN_MESSAGE = "OneKey's routing store is not answering just now, and this request needs it; retry shortly."


def unreachable(exc: BaseException) -> bool:
    """Whether an error is the store's trouble (unreachable, cut, timed out), not a bug or a row's."""
    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sa_exc.StatementError) and isinstance(exc.orig, (OSError, TimeoutError, ConnectionError)):
        return True
    return isinstance(exc, (OSError, TimeoutError, ConnectionError))


class StoreGuard:
    """The store's state as this core sees it, and the one way the hot path waits on it."""

    def __init__(self, timeout: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.timeout = timeout
        self._clock = clock
        self.down_since: float | None = None
        self._next_probe = 0.0
        self._backoff = PROBE_FIRST_S
        self._probing = False
        self.outages = 0        # times the store went down, since start
        self.refused = 0        # calls refused at once while it was down

    @property
    def up(self) -> bool:
        return self.down_since is None

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else self._clock() - self.down_since

    async def call(self, fn: Callable[[], Awaitable[T]], message: str = DOWN_MESSAGE) -> T:
        """`await fn()` within the bound; StoreUnavailable(message) if the store cannot answer.

        At the bound the caller is answered at once and the call is left to end by the driver's
        own timeouts: cancelling it there would wait on a rollback over the very connection that
        does not answer (SQLAlchemy shields a session's close from cancellation).
        """
        probe = False
        if self.down_since is not None:
            if self._probing or self._clock() < self._next_probe:
                self.refused += 1
                raise StoreUnavailable(message)
            probe = self._probing = True
        task = asyncio.ensure_future(fn())
        try:
            done, _ = await asyncio.wait((task,), timeout=self.timeout)
        except BaseException:  # the caller was cancelled: so is its store call
            task.cancel()
            raise
        finally:
            if probe:
                self._probing = False
        if not done:
            task.add_done_callback(_forget)
            self.failed(None)
            raise StoreUnavailable(message)
        exc = task.exception()
        if exc is None:
            self.ok()
            return task.result()
        if unreachable(exc):
            self.failed(exc)
            raise StoreUnavailable(message) from None
        raise exc

    def ok(self) -> None:
        """The store answered."""
        if self.down_since is not None:
            logger.warning("routing store is back after %.1fs", self.down_for())
            self.down_since = None
        self._backoff = PROBE_FIRST_S

    def failed(self, exc: BaseException | None = None) -> None:
        """The store did not answer: down now, probed again after a backoff."""
        now = self._clock()
        if self.down_since is None:
            self.down_since = now
            self.outages += 1
            logger.error("routing store unreachable (%s): serving from memory what memory can decide",
                         type(exc).__name__ if exc is not None else "timeout")
        else:
            self._backoff = min(self._backoff * 2, PROBE_MAX_S)
        self._next_probe = now + self._backoff


def _forget(task: asyncio.Future) -> None:
    """An abandoned call's end: its error was already answered for."""
    if not task.cancelled():
        task.exception()
