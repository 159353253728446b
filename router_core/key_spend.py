"""A key's monthly spend limit on the hot path: hold an estimate before forwarding, settle after.

Like project credit (router_core/credits.py), and for the same reason: a check of settled
charges alone lets every request of a burst through, since none has settled yet. Each priced
request of a key with a limit holds its estimate on the key's row with one conditional UPDATE
(`held += e WHERE limit - month_spend - held >= e`), so replicas on one store never hold more
than the limit leaves. Its real cost is settled in memory and written with the usage events in
the same batched transaction: the month's spend grows by what it cost, the hold shrinks by its
estimate. So a key's spend passes its limit only by what requests cost beyond their estimates
(zero when the provider reports no more than the estimate), the bound documented for credit.

Limited keys are few and their limits small, so a hold is taken per request (one UPDATE, as a
tight credit wallet does) rather than leased ahead; keys without a limit cost nothing here.
A settled hold is given back with the very next usage write (flush_soon). A request that does
not fit waits briefly (SETTLE_WAIT_S) while holds that could free enough are given back, then is
refused; one the month's spend alone leaves no room for is refused at once.

A killed replica's holds are reclaimed like its leases: each replica renews its hold rows and
lets go of those another holder stopped renewing (lease_stale_after).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router_core.errors import SpendLimitReached
from router_core.store_guard import StoreGuard
from router_core.repositories import KeySpendRepository
from router_core.tables import utcnow

logger = logging.getLogger(__name__)

SETTLE_WAIT_S = 0.5   # how long a request that does not fit waits for settled holds to be written
UNREACHABLE_MESSAGE = "OneKey could not check this key's spend limit just now; retry shortly."


@dataclass(slots=True)
class SpendHold:
    """What one admitted request holds of its key's limit until it settles."""

    key_id: str = ""
    amount: int = 0


def _month(now: dt.datetime | None = None) -> str:
    return (now or utcnow()).strftime("%Y-%m")


def month_start(now: dt.datetime) -> dt.datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _usd(micro: int) -> str:
    whole, frac = divmod(micro, 1_000_000)
    return f"${whole}.{frac:06d}".rstrip("0").rstrip(".") if frac else f"${whole}.00"


class KeySpend:
    """This replica's holds on keys' spend limits, and the settled charges not yet written."""

    def __init__(self, sessions: async_sessionmaker, holder: str, *, renew_every: float = 10.0,
                 stale_after: float = 120.0, settle_wait: float = SETTLE_WAIT_S,
                 guard: StoreGuard | None = None) -> None:
        self._sessions = sessions
        self._guard = guard or StoreGuard()
        self.holder = holder
        self._renew_every = renew_every
        self._stale_after = stale_after
        self._settle_wait = settle_wait
        self._renewed_at = 0.0
        self._locks: dict[str, asyncio.Lock] = {}
        self._pending: dict[str, tuple[int, int]] = {}  # key -> (charged, hold released), unwritten
        self._in_flight: dict[str, int] = {}  # key -> what requests in flight hold of it
        self.flush_soon: Callable[[], None] = lambda: None
        # Holds of stopped replicas this one let go of: how many, and what they held.
        self.reclaimed_holds = 0
        self.reclaimed_micro_usd = 0

    async def hold(self, key_id: str, estimate: int) -> SpendHold:
        """Hold `estimate` of the key's limit, or raise SpendLimitReached."""
        if estimate <= 0:
            return SpendHold()
        month = _month()
        deadline = time.monotonic() + self._settle_wait
        pause = 0.02
        lock = self._locks.setdefault(key_id, asyncio.Lock())
        while True:
            # One hold transaction per key at a time on this replica: a burst queues here, not
            # on the connection pool the usage writer needs too.
            async def take() -> tuple[int | None, int, int] | None:
                async with self._sessions() as session, session.begin():
                    repo = KeySpendRepository(session)
                    if await repo.hold(self.holder, key_id, estimate, month):
                        return None
                    return await repo.state(key_id, month)

            # Only the store can say what other replicas hold: refused at once (503), never a 500.
            async with lock:
                refused = await self._guard.call(take, UNREACHABLE_MESSAGE)
            if refused is None:
                self._in_flight[key_id] = self._in_flight.get(key_id, 0) + estimate
                return SpendHold(key_id, estimate)
            limit, spent, held = refused
            if limit is None:  # cannot happen (a key without a limit always holds): be safe
                return SpendHold()
            # Waiting helps only if holds could free enough: requests settled here or on another
            # replica give theirs back with their next write, at once (or finish meanwhile).
            if limit - spent < estimate or time.monotonic() + pause > deadline:
                raise SpendLimitReached(
                    f"This API key has reached its monthly spend limit of {_usd(limit)} ({_usd(spent)} spent "
                    f"since the 1st, UTC, {_usd(held)} held by requests in flight). Raise the limit in the "
                    "OneKey dashboard, or use another key.", code="key_spend_limit_reached")
            self.flush_soon()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.1)

    def settle(self, hold: SpendHold, charged: int) -> None:
        """The request ended: count its charge, give its hold back (both with the next write)."""
        if not hold.key_id:
            return
        spent, released = self._pending.get(hold.key_id, (0, 0))
        self._pending[hold.key_id] = (spent + charged, released + hold.amount)
        left = self._in_flight.get(hold.key_id, 0) - hold.amount
        if left > 0:
            self._in_flight[hold.key_id] = left
        else:
            self._in_flight.pop(hold.key_id, None)
        self.flush_soon()

    def take_debits(self) -> dict[str, tuple[int, int]]:
        """Hand over settled charges and released holds for the next batch: {key: (charged, released)}."""
        debits, self._pending = self._pending, {}
        return debits

    async def write_debit(self, session: AsyncSession, key_id: str, debit: tuple[int, int]) -> None:
        """Write one key's entry of take_debits (the usage writer goes through keys in order)."""
        charged, released = debit
        await KeySpendRepository(session).settle(self.holder, key_id, charged, released, _month())

    def debits_written(self, debits: dict[str, tuple[int, int]]) -> None:
        """The batch from take_debits is committed: forget the idle keys' locks."""
        for key_id in debits:
            lock = self._locks.get(key_id)
            if lock is not None and not lock.locked() and key_id not in self._pending:
                del self._locks[key_id]

    async def refresh(self) -> None:
        """After an outage: this replica's hold rows made to match its requests in flight (and
        the releases not yet written). A hold whose answer was lost (its request was refused
        meanwhile) may have committed; left alone it would hold part of the limit for good.
        Called by the usage writer when no batch is outstanding."""
        async with self._sessions() as session, session.begin():
            repo = KeySpendRepository(session)
            rows = await repo.held(self.holder)
            for key_id in rows.keys() | self._in_flight.keys():
                lock = self._locks.get(key_id)
                if lock is not None and lock.locked():
                    continue  # a hold in progress: looked at after the next outage, if any
                expected = self._in_flight.get(key_id, 0) + self._pending.get(key_id, (0, 0))[1]
                delta = expected - rows.get(key_id, 0)
                if delta:
                    logger.warning("spend-limit hold of key=%s read again after an outage: %+d micro-USD",
                                   key_id, delta)
                    await repo.correct_hold(self.holder, key_id, delta)

    async def maintain(self) -> None:
        """Renew this replica's hold rows; let go of those of replicas that stopped."""
        now = time.monotonic()
        if now - self._renewed_at <= self._renew_every:
            return
        self._renewed_at = now
        cutoff = utcnow() - dt.timedelta(seconds=self._stale_after)
        async with self._sessions() as session, session.begin():
            repo = KeySpendRepository(session)
            await repo.renew(self.holder)
            reclaimed = await repo.reclaim_stale(cutoff)
        if reclaimed:
            self.reclaimed_holds += len(reclaimed)
            self.reclaimed_micro_usd += sum(a for _, _, a in reclaimed)
            logger.warning("reclaimed spend-limit holds of stopped replicas: count=%d micro_usd=%d holders=%s",
                           len(reclaimed), sum(a for _, _, a in reclaimed),
                           ",".join(sorted({h for h, _, _ in reclaimed})))
