"""Usage events, written in batches off the hot path; a clean shutdown flushes every one."""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections import deque
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router_core.credits import Credits
from router_core.errors import StoreUnavailable
from router_core.key_spend import KeySpend
from router_core.keys import KeyValidator
from router_core.journal import Journal, orphans, read_events
from router_core.repositories import KeyRepository, KeySpendRepository, LeaseRepository, UsageRepository
from router_core.store_guard import StoreGuard, unreachable
from router_core.tables import utcnow

logger = logging.getLogger(__name__)

BATCH_TOKENS_KEPT_S = 86_400   # a batch's token outlives any retry of it by far
BATCH_TOKENS_PRUNE_S = 3_600   # how often the writer deletes older tokens
ADOPT_EVERY_S = 30.0           # how often a live core looks for journals of stopped cores


@dataclass
class _Batch:
    """Events sealed together with the charges they settled: written in one transaction."""

    token: str
    events: list[dict]
    debits: dict
    key_debits: dict
    used: dict
    upto: int                 # the sequence number of its last event
    segment: int | None       # the journal segment holding its events
    tried: bool = False       # a write failed: it may have committed (its token says)


class UsageRecorder:
    """Collects usage events in memory and writes them every `interval` seconds.

    A request only appends a dict to a list and a line to the journal (no store I/O on the hot
    path). Every round seals what was recorded since the last one into a batch, with the
    settled costs of the same requests, and writes the batches in order, each in one
    transaction, so the ledger always adds up. A batch carries a token written with it: one
    retried after a commit whose answer was lost is found written, never written twice.

    The store down: batches wait in order (the backlog, in /metrics and /readyz) and in the
    journal, and each round tries the oldest again; nothing is dropped. Past `max_backlog`
    events, admission refuses paid requests (`backlog_full`) until the store takes them.

    One event can never block the others: when a batch is refused for what a row holds (a
    constraint, a value the column cannot take), it is written again with its rows isolated in
    savepoints; every row the store takes is written with all the charges, and a row it refuses
    is set aside — counted (`set_aside`, in /metrics) and logged by its ids, never its values.

    `written(seq)` lets a request wait until its own event is committed (durable charges):
    it wakes the writer at once, and every event recorded meanwhile joins the same
    transaction (group commit), so the wait is about one write however busy the core is.
    """

    def __init__(self, sessions: async_sessionmaker, keys: KeyValidator | None = None,
                 credits: Credits | None = None, interval: float = 0.5, max_batch: int = 2000,
                 spend: KeySpend | None = None, *, journal: Journal | None = None,
                 guard: StoreGuard | None = None, max_backlog: int = 200_000) -> None:
        self._sessions = sessions
        self._keys = keys
        self._credits = credits
        self._spend = spend
        self._journal = journal
        self._guard = guard
        self._interval = interval
        self._max_batch = max_batch
        self.max_backlog = max_backlog
        self._pending: list[dict] = []
        self._sealed: deque[_Batch] = deque()
        self._sealed_events = 0
        self._task: asyncio.Task | None = None
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._stopping = False
        self._recorded = 0   # events recorded so far (each one's sequence number)
        self._written = 0    # every event up to this sequence number is committed
        self._committed = asyncio.Event()
        self._pruned_at = 0.0
        self._outages_seen = 0
        self.set_aside = 0   # events the store refused for what they held, since start

    @property
    def pending(self) -> int:
        """Events not yet in the store: the backlog."""
        return len(self._pending) + self._sealed_events

    @property
    def store_up(self) -> bool:
        """Whether the store answered last time it was asked (True when nobody watches it)."""
        return self._guard is None or self._guard.up

    @property
    def journal_bytes(self) -> int:
        return self._journal.bytes if self._journal is not None else 0

    @property
    def backlog_full(self) -> bool:
        return self.pending >= self.max_backlog

    def record(self, event: dict) -> int:
        """Queue one usage event (metadata only), journaled; returns its sequence number."""
        if self._journal is not None:
            self._journal.append(event)
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
        """Stop the loop and write every pending event; what the store will not take stays in
        the journal for the next start.

        The loop is asked to finish, not cancelled: a cancel landing inside a write would drop
        the batch it had taken (seen under load on PostgreSQL).
        """
        if self._task is not None:
            self._stopping = True
            self._wake.set()
            await self._task
            self._task = None
        # With a journal the events are safe on disk: a store that is down does not hold the stop.
        for _ in range(2 if self._journal is not None else 10):
            if await self.flush():
                break
            await asyncio.sleep(0.5)
        else:
            logger.error("usage events could not be written at shutdown: count=%d (%s)", self.pending,
                         "kept in the journal for the next start" if self._journal else "lost")
        if self._journal is not None:
            self._journal.close(keep=self.pending > 0)

    async def flush(self) -> bool:
        """Seal what is pending and write every sealed batch, oldest first; False if a write
        failed (the batches are kept, in order)."""
        async with self._lock:
            self._seal()
            if self._journal is not None:
                await self._journal.sync()
            while self._sealed:
                batch = self._sealed[0]
                try:
                    await self._bounded(self._write_batch(batch))
                except Exception as exc:  # the store may be down: keep the batch, say so, go on
                    batch.tried = True
                    if self._guard is not None and _unreachable(exc):
                        self._guard.failed(exc)
                    logger.error("writing usage events failed: %s count=%d backlog=%d (kept for retry)",
                                 type(exc).__name__, len(batch.events), self.pending)
                    return False
                if self._guard is not None:
                    self._guard.ok()
                self._sealed.popleft()
                self._sealed_events -= len(batch.events)
                self._written = batch.upto
                if self._journal is not None and batch.segment is not None:
                    self._journal.drop(batch.segment)
                self._committed.set()
                self._committed = asyncio.Event()  # the next waiters wait for the next write
            if self._guard is not None and self._guard.outages != self._outages_seen:
                # Every charge of the outage is written: the store's leases and holds can be
                # set against what this replica knows it holds.
                try:
                    if self._credits is not None:
                        await self._credits.refresh()
                    if self._spend is not None:
                        await self._spend.refresh()
                    self._outages_seen = self._guard.outages
                except Exception as exc:
                    logger.warning("reading leases and holds again after an outage failed: %s", type(exc).__name__)
            return True

    async def _bounded(self, write) -> None:
        """Await the write to its end (a write given up on might still commit: never two at
        once), telling the guard the store is down once it takes longer than the guard's bound,
        so /readyz says so during a partition that holds the connection."""
        task = asyncio.ensure_future(write)
        if self._guard is not None:
            done, _ = await asyncio.wait((task,), timeout=self._guard.timeout)
            if not done:
                self._guard.failed(None)
        await task

    def _seal(self) -> None:
        """What was recorded since the last seal, with its charges, as one batch (no await:
        each event and its charge travel together)."""
        debits = self._credits.take_debits() if self._credits else {}
        key_debits = self._spend.take_debits() if self._spend else {}
        used = self._keys.take_last_used() if self._keys else {}
        if not self._pending and not debits and not key_debits and not used:
            return
        events, self._pending = self._pending, []
        segment = self._journal.seal() if self._journal is not None and events else None
        self._sealed.append(_Batch(uuid.uuid4().hex, events, debits, key_debits, used, self._recorded, segment))
        self._sealed_events += len(events)

    async def _write_batch(self, batch: _Batch) -> None:
        if batch.tried:
            async with self._sessions() as session:
                if await UsageRepository(session).batch_written(batch.token):
                    self._done(batch)  # its commit went through; only its answer was lost
                    return
        try:
            await self._write(batch, isolate=False)
        except Exception as exc:
            if _unreachable(exc):
                raise
            # Refused for what some row holds: write the rows one by one (savepoints).
            logger.warning("usage batch refused (%s): writing its rows one by one, count=%d",
                           type(exc).__name__, len(batch.events))
            self._set_aside(await self._write(batch, isolate=True))
        self._done(batch)

    def _done(self, batch: _Batch) -> None:
        if batch.debits:
            self._credits.debits_written(batch.debits)
        if batch.key_debits:
            self._spend.debits_written(batch.key_debits)

    async def _write(self, batch: _Batch, isolate: bool) -> list[tuple[dict, str]]:
        """One transaction: the events, the charges, the keys' last use, the batch's token. With
        `isolate`, rows the store refuses are left out: they come back as (event, error type)."""
        refused: list[tuple[dict, str]] = []
        async with self._sessions() as session, session.begin():
            usage = UsageRepository(session)
            if isolate:
                refused = await _insert_isolated(session, batch.events)
            else:
                await usage.add_many(batch.events)
            if batch.debits:
                await self._credits.write_debits(session, batch.debits)
            # The key rows in one pass, in one order, on every replica: two batches that both
            # settle holds and record last use of the same keys never wait on each other in a cycle.
            keys = KeyRepository(session)
            for key_id in sorted(batch.key_debits.keys() | batch.used.keys()):
                if key_id in batch.key_debits:
                    await self._spend.write_debit(session, key_id, batch.key_debits[key_id])
                if key_id in batch.used:
                    await keys.touch({key_id: batch.used[key_id]})
            await usage.mark_batch(batch.token)
            now = time.monotonic()
            if now - self._pruned_at > BATCH_TOKENS_PRUNE_S:
                self._pruned_at = now
                await usage.prune_batches(utcnow() - dt.timedelta(seconds=BATCH_TOKENS_KEPT_S))
        return refused

    def _set_aside(self, refused: list[tuple[dict, str]]) -> None:
        for event, error in refused:
            self.set_aside += 1
            # Ids and amounts only (never a value the row held): enough to find and reconcile it.
            logger.error("usage event set aside, the store refused it: request_id=%.64s project=%.36s key=%.36s "
                         "charged_micro_usd=%s error=%s", event.get("request_id"), event.get("project_id"),
                         event.get("key_id"), event.get("charged_micro_usd"), error)

    async def _run(self) -> None:
        adopted_at = time.monotonic()
        while not self._stopping:
            try:
                await asyncio.wait_for(self._wake.wait(), self._interval)
            except TimeoutError:
                pass
            self._wake.clear()
            if not await self.flush():
                continue  # the store is down: leases and holds wait for it too
            if self._guard is not None and not self._guard.up:
                # Nothing to write, the store last seen down: a probe (at the guard's pace) tells.
                try:
                    await self._guard.call(self._ping)
                except StoreUnavailable:
                    continue
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
            if self._journal is not None and time.monotonic() - adopted_at > ADOPT_EVERY_S:
                adopted_at = time.monotonic()
                await replay_orphans(self._sessions, self._journal.folder)


    async def _ping(self) -> None:
        async with self._sessions() as session:
            await session.execute(text("SELECT 1"))


async def replay_orphans(sessions: async_sessionmaker, folder) -> int:
    """Write what the journals of dead cores hold and the store lacks; the events written.

    Each event is looked up by its request id, so one its core wrote before dying is skipped;
    one that is missing is inserted and charged to its project's balance (the dead core's lease
    is reclaimed on its own, see credits.py) and to its key's month, in one transaction per
    journal segment.
    """
    written = 0
    for orphan in orphans(folder):
        try:
            for segment in orphan.segments:
                events = read_events(segment)
                async with sessions() as session, session.begin():
                    written += await _replay(session, events)
        except Exception as exc:
            logger.error("replaying the journal of a stopped core failed: %s (kept for the next try)",
                         type(exc).__name__)
            orphan.leave()
            continue
        orphan.replayed()
    if written:
        logger.warning("replayed usage events of a stopped core from its journal: count=%d", written)
    return written


async def _replay(session: AsyncSession, events: list[dict]) -> int:
    usage = UsageRepository(session)
    done = await usage.written_ids(e["request_id"] for e in events)
    missing = [e for e in events if e["request_id"] not in done]
    if not missing:
        return 0
    await usage.add_many(missing)
    leases, spends = LeaseRepository(session), KeySpendRepository(session)
    month = utcnow().strftime("%Y-%m")
    for event in missing:
        charged = event.get("charged_micro_usd") or 0
        if charged:
            await leases.charge(event["project_id"], charged)
            if event["time"].strftime("%Y-%m") == month:  # a past month's spend no longer counts
                await spends.settle("", event["key_id"], charged, 0, month)
    return len(missing)


_unreachable = unreachable


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
