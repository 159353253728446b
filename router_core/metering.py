"""Usage events, written in batches off the hot path; a clean shutdown flushes every one."""
from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import async_sessionmaker

from router_core.credits import Credits
from router_core.keys import KeyValidator
from router_core.repositories import KeyRepository, UsageRepository

logger = logging.getLogger(__name__)


class UsageRecorder:
    """Collects usage events in memory and writes them every `interval` seconds.

    A request only appends a dict to a list (no I/O on the hot path). The settled costs of
    the same requests are written in the same transaction, so the ledger always adds up. A
    failed write keeps the batch for the next round; stop() writes whatever is left.
    """

    def __init__(self, sessions: async_sessionmaker, keys: KeyValidator | None = None,
                 credits: Credits | None = None, interval: float = 0.5, max_batch: int = 2000) -> None:
        self._sessions = sessions
        self._keys = keys
        self._credits = credits
        self._interval = interval
        self._max_batch = max_batch
        self._pending: list[dict] = []
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, event: dict) -> None:
        """Queue one usage event (metadata only)."""
        self._pending.append(event)
        if len(self._pending) >= self._max_batch:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="usage-recorder")

    async def stop(self) -> None:
        """Stop the loop and write every pending event.

        The loop is asked to finish, not cancelled: a cancel landing inside a write would drop
        the batch it had taken (seen under load on PostgreSQL).
        """
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        for _ in range(10):
            if await self.flush():
                return
            await asyncio.sleep(0.5)
        logger.error("usage events could not be written at shutdown: count=%d", len(self._pending))

    async def flush(self) -> bool:
        """Write what is pending now; False if the write failed (the events are kept)."""
        async with self._lock:
            # Taken together, with no await in between: each event and its charge travel as one.
            batch, self._pending = self._pending, []
            debits = self._credits.take_debits() if self._credits else {}
            used = self._keys.take_last_used() if self._keys else {}
            if not batch and not used and not debits:
                return True
            try:
                async with self._sessions() as session, session.begin():
                    await UsageRepository(session).add_many(batch)
                    if debits:
                        await self._credits.write_debits(session, debits)
                    await KeyRepository(session).touch(used)
            except Exception as exc:  # the store may be down: keep the batch, say so, go on
                logger.error("writing usage events failed: %s count=%d (kept for retry)",
                             type(exc).__name__, len(batch))
                self._pending[:0] = batch
                if debits:
                    self._credits.restore_debits(debits)
                return False
            if self._keys is not None:
                self._keys.spend_written(batch)
            return True

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()
            if self._credits is not None:
                try:
                    await self._credits.maintain()
                except Exception as exc:  # leases are looked after again next round
                    logger.warning("lease upkeep failed: %s", type(exc).__name__)
