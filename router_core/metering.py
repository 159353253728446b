"""Usage events, written in batches off the hot path; a clean shutdown flushes every one."""
from __future__ import annotations

import asyncio
import logging

from sqlalchemy.exc import InterfaceError, OperationalError, StatementError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router_core.credits import Credits
from router_core.key_spend import KeySpend
from router_core.keys import KeyValidator
from router_core.repositories import KeyRepository, UsageRepository

logger = logging.getLogger(__name__)


class UsageRecorder:
    """Collects usage events in memory and writes them every `interval` seconds.

    A request only appends a dict to a list (no I/O on the hot path). The settled costs of
    the same requests are written in the same transaction, so the ledger always adds up. A
    failed write keeps the batch for the next round; stop() writes whatever is left.

    One event can never block the others: when a batch is refused for what a row holds (a
    constraint, a value the column cannot take), it is written again with its rows isolated in
    savepoints; every row the store takes is written with all the charges, and a row it refuses
    is set aside — counted (`set_aside`, in /metrics) and logged by its ids, never its values.
    Only a store that cannot be reached keeps the batch for the next round.

    `written(seq)` lets a request wait until its own event is committed (durable charges):
    it wakes the writer at once, and every event recorded meanwhile joins the same
    transaction (group commit), so the wait is about one write however busy the core is.
    """

    def __init__(self, sessions: async_sessionmaker, keys: KeyValidator | None = None,
                 credits: Credits | None = None, interval: float = 0.5, max_batch: int = 2000,
                 spend: KeySpend | None = None) -> None:
        self._sessions = sessions
        self._keys = keys
        self._credits = credits
        self._spend = spend
        self._interval = interval
        self._max_batch = max_batch
        self._pending: list[dict] = []
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False
        self._recorded = 0   # events recorded so far (each one's sequence number)
        self._written = 0    # every event up to this sequence number is committed
        self._committed = asyncio.Event()
        self.set_aside = 0   # events the store refused for what they held, since start

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, event: dict) -> int:
        """Queue one usage event (metadata only); returns its sequence number."""
        self._pending.append(event)
        self._recorded += 1
        if len(self._pending) >= self._max_batch:
            self._wake.set()
        return self._recorded

    async def written(self, seq: int, timeout: float) -> bool:
        """Wait until event `seq` is committed (writing it now); False if `timeout` passed first."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._written < seq:
            self._wake.set()
            committed = self._committed
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(committed.wait(), remaining)
            except TimeoutError:
                return self._written >= seq
        return True

    def flush_soon(self) -> None:
        """Write what is pending now rather than at the next interval."""
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
            upto = self._recorded  # every event up to here is in this batch
            debits = self._credits.take_debits() if self._credits else {}
            key_debits = self._spend.take_debits() if self._spend else {}
            used = self._keys.take_last_used() if self._keys else {}
            if not batch and not used and not debits and not key_debits:
                return True
            try:
                try:
                    await self._write(batch, debits, key_debits, used, isolate=False)
                except Exception as exc:
                    if _unreachable(exc):
                        raise
                    # Refused for what some row holds: write the rows one by one (savepoints).
                    logger.warning("usage batch refused (%s): writing its rows one by one, count=%d",
                                   type(exc).__name__, len(batch))
                    self._set_aside(await self._write(batch, debits, key_debits, used, isolate=True))
            except Exception as exc:  # the store may be down: keep the batch, say so, go on
                logger.error("writing usage events failed: %s count=%d (kept for retry)",
                             type(exc).__name__, len(batch))
                self._pending[:0] = batch
                if debits:
                    self._credits.restore_debits(debits)
                if key_debits:
                    self._spend.restore_debits(key_debits)
                return False
            if debits:
                self._credits.debits_written(debits)
            if key_debits:
                self._spend.debits_written(key_debits)
            self._written = upto
            self._committed.set()
            self._committed = asyncio.Event()  # the next waiters wait for the next write
            return True

    async def _write(self, batch: list[dict], debits: dict, key_debits: dict, used: dict,
                     isolate: bool) -> list[tuple[dict, str]]:
        """One transaction: the events, the charges, the keys' last use. With `isolate`, rows
        the store refuses are left out: they come back as (event, error type)."""
        refused: list[tuple[dict, str]] = []
        async with self._sessions() as session, session.begin():
            if isolate:
                refused = await _insert_isolated(session, batch)
            else:
                await UsageRepository(session).add_many(batch)
            if debits:
                await self._credits.write_debits(session, debits)
            # The key rows in one pass, in one order, on every replica: two batches that both
            # settle holds and record last use of the same keys never wait on each other in a cycle.
            keys = KeyRepository(session)
            for key_id in sorted(key_debits.keys() | used.keys()):
                if key_id in key_debits:
                    await self._spend.write_debit(session, key_id, key_debits[key_id])
                if key_id in used:
                    await keys.touch({key_id: used[key_id]})
        return refused

    def _set_aside(self, refused: list[tuple[dict, str]]) -> None:
        for event, error in refused:
            self.set_aside += 1
            # Ids and amounts only (never a value the row held): enough to find and reconcile it.
            logger.error("usage event set aside, the store refused it: request_id=%.64s project=%.36s key=%.36s "
                         "charged_micro_usd=%s error=%s", event.get("request_id"), event.get("project_id"),
                         event.get("key_id"), event.get("charged_micro_usd"), error)

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
            if self._spend is not None:
                try:
                    await self._spend.maintain()
                except Exception as exc:  # holds are looked after again next round
                    logger.warning("spend-limit hold upkeep failed: %s", type(exc).__name__)


def _unreachable(exc: BaseException) -> bool:
    """Whether a failed write is the store's trouble (retry the batch), not a row's."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        return True
    if isinstance(exc, StatementError):
        return bool(getattr(exc, "connection_invalidated", False))
    return isinstance(exc, (OSError, TimeoutError, ConnectionError))


async def _insert_isolated(session: AsyncSession, rows: list[dict]) -> list[tuple[dict, str]]:
    """Insert rows in savepoints, halving a refused part until the refused rows are alone:
    a few statements per bad row, not one per row. Returns the refused rows with their error."""
    if not rows:
        return []
    try:
        async with session.begin_nested():
            await UsageRepository(session).add_many(rows)
        return []
    except Exception as exc:
        if _unreachable(exc):
            raise
        if len(rows) == 1:
            return [(rows[0], type(exc).__name__)]
    middle = len(rows) // 2
    return await _insert_isolated(session, rows[:middle]) + await _insert_isolated(session, rows[middle:])
