"""Prepaid credits on the hot path: reserve an estimate before forwarding, settle after.

Why leases. A database round trip per request (reserve, then settle) costs more than the whole
latency budget of the gateway, yet several core replicas may serve one project from one
PostgreSQL. So each replica *leases* part of a project's balance with one conditional UPDATE
(`leased += x WHERE balance - leased >= x`, affected rows checked), then reserves and settles
requests against its lease in memory — a few integer operations, no I/O. Leases are refilled
ahead of need in the background, settled costs are written with the usage events in the same
batched transaction (so credits − settled costs = balance at every commit), idle leases go
back to the project, and a lease whose replica died is reclaimed once it stops being renewed.

Never refusing what the balance covers. A lease must not strand credit another replica needs:
- A replica takes a *full* lease (enough for LEASE_REQUESTS requests like the current one) only
  while at least as much again stays unleased for the others. Otherwise the wallet is *tight*:
  it leases exactly what the request lacks, and hands back whatever it holds beyond its
  requests in flight with the very next usage write, which a tight settle triggers at once. A
  tight project costs one UPDATE per request; a project with ample credit costs none.
- Every replica checks, each maintain round (a fraction of a second), whether the unleased
  headroom of a project it holds a full lease on fell below a full lease; if so it turns the
  wallet tight and gives back everything beyond its requests in flight.
- A replica short of credit whose project's remaining leases are held by other replicas does
  not refuse at once: it tries again for up to SHORTFALL_WAIT_S, while those replicas give back
  their excess (previous point). It refuses when the balance, less what is really reserved in
  flight (or settled in the last moments and not yet written) anywhere, cannot cover the
  request — or, the one residual case, when another replica could not reach the database
  within that wait. A project out of credit everywhere is refused at once.

Bounds. The database never lets the sum of leases exceed the balance. A replica admits a
request only if its lease covers the request's estimate on top of everything in flight, so a
balance goes below zero only by what requests cost beyond their estimates (at most one
request's overshoot per request in flight). Free requests are taken one at a time with a
conditional UPDATE: they are few (20 for a new account), and that keeps "exactly N" exact
across replicas.

A killed replica. Its settled but unwritten costs are in its usage journal (journal.py): the
next core to start on that folder writes them, each once. Its requests in flight are lost with
it; their credit stays leased until the lease stops being renewed (lease_stale_after) and
another replica reclaims it. The reclaiming replica logs the amount and counts it
(onekey_core_leases_reclaimed_*): credit the project got back, the estimates of requests cut
off in flight and the charges its journal still holds (charged to the balance on replay).

The store down. A wallet whose lease covers a request admits it from memory, as always; what
needs the store (a first request of a project, a lease to grow, a free request) is refused at
once with StoreUnavailable (store_guard.py), never made to wait beyond the guard's bound. A
lease write whose answer was lost may have committed: after an outage each wallet's lease is
read again from the store once every charge in the backlog is written (`refresh`).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from router_core.errors import InsufficientQuota
from router_core.repositories import LeaseRepository
from router_core.store_guard import StoreGuard

logger = logging.getLogger(__name__)

LEASE_FLOOR = 100_000         # lease at least $0.10 at a time…
LEASE_REQUESTS = 50           # …or enough for this many requests like the current one
IDLE_RELEASE_S = 30.0         # give a lease back after this long without requests
RENEW_EVERY_S = 10.0          # prove this replica alive to the others
STALE_AFTER_S = 120.0         # a lease not renewed for this long belongs to a dead replica
TIGHT_CHECK_S = 0.25          # how often full leases are checked against the others' needs
TIGHT_RETRY_S = 5.0           # a tight wallet tries a full lease again after this long
SHORTFALL_WAIT_S = 2.0        # how long a short request waits for other replicas' excess

QUOTA_MESSAGE = ("You exceeded your current quota: the project has no credit or free requests left "
                 "for this request. Add credit in the OneKey dashboard.")


@dataclass(slots=True)
class Reservation:
    """What one admitted request holds until it settles."""

    project_id: str
    kind: str = "none"   # none (free model) | free (a free request) | credit
    amount: int = 0      # the estimate held against the lease (credit only)


@dataclass
class _Wallet:
    lease: int = 0           # leased from the project and not yet settled
    reserved: int = 0        # estimates of requests in flight
    spent: int = 0           # settled costs not yet written
    free_left: int = 0       # free requests the project had when last read
    last_lease: int = 0
    used_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    refilling: bool = False
    want: int = 0            # the size of a full lease for this project's requests
    tight_at: float | None = None  # when the wallet turned tight (leases per request), if it is
    returning: int = 0       # lease handed back in a usage write not yet committed

    @property
    def available(self) -> int:
        """Leased beyond what requests in flight and unwritten costs hold."""
        return self.lease - self.reserved - self.spent


class Credits:
    """This replica's leases and in-flight reservations, one wallet per active project."""

    def __init__(self, sessions: async_sessionmaker, holder: str | None = None, *,
                 renew_every: float = RENEW_EVERY_S, stale_after: float = STALE_AFTER_S,
                 shortfall_wait: float = SHORTFALL_WAIT_S, guard: StoreGuard | None = None) -> None:
        self._sessions = sessions
        self._guard = guard or StoreGuard()
        self.holder = holder or f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wallets: dict[str, _Wallet] = {}
        self._renewed_at = 0.0
        self._checked_at = 0.0
        self._renew_every = renew_every
        self._stale_after = stale_after
        self._shortfall_wait = shortfall_wait
        self._tasks: set[asyncio.Task] = set()
        # Called when tight wallets hold excess to hand back: the usage writer flushes soon.
        self.flush_soon: Callable[[], None] = lambda: None
        # Leases of stopped replicas reclaimed by this one: how many, and the credit they held.
        self.reclaimed_leases = 0
        self.reclaimed_micro_usd = 0

    async def reserve(self, project_id: str, estimate: int) -> Reservation:
        """Admit a request costing about `estimate` micro-USD, or raise InsufficientQuota."""
        if estimate <= 0:
            return Reservation(project_id)
        wallet = self._wallets.get(project_id)
        if wallet is None:
            wallet = await self._open_wallet(project_id)
        wallet.used_at = time.monotonic()
        if wallet.free_left > 0 and await self._take_free(project_id, wallet):
            return Reservation(project_id, "free")
        if wallet.available < estimate and not await self._cover(project_id, wallet, estimate):
            # Free requests may have been granted since this wallet last looked.
            if await self._recheck_free(project_id, wallet) and await self._take_free(project_id, wallet):
                return Reservation(project_id, "free")
            raise InsufficientQuota(QUOTA_MESSAGE, code="insufficient_quota")
        wallet = self._wallets.setdefault(project_id, wallet)
        wallet.reserved += estimate
        if wallet.tight_at is None and wallet.available < wallet.last_lease // 4 and not wallet.refilling:
            self._spawn(self._refill_ahead(project_id, wallet, estimate))
        return Reservation(project_id, "credit", estimate)

    def settle(self, reservation: Reservation, cost: int) -> int:
        """Release the reservation and charge the real cost; returns what the balance pays."""
        if reservation.kind != "credit":
            return 0
        wallet = self._wallets.get(reservation.project_id)
        if wallet is None:  # cannot happen while reserved; be safe rather than lose a charge
            wallet = self._wallets[reservation.project_id] = _Wallet()
        wallet.reserved -= reservation.amount
        wallet.spent += cost
        if wallet.tight_at is not None:
            self.flush_soon()  # hand the unused part of the estimate back to the others now
        return cost

    def take_debits(self) -> dict[str, tuple[int, int]]:
        """Hand over settled costs for the next batch: {project: (spent, lease given up)}.

        The lease given up is the leased part of what was spent, plus, for a tight wallet,
        everything it holds beyond its requests in flight.
        """
        debits: dict[str, tuple[int, int]] = {}
        for project_id, wallet in self._wallets.items():
            give_back = max(0, wallet.available) if wallet.tight_at is not None else 0
            if wallet.spent or give_back:
                from_lease = max(0, min(wallet.spent, wallet.lease)) + give_back
                debits[project_id] = (wallet.spent, from_lease)
                wallet.lease -= from_lease
                wallet.returning += max(0, from_lease - wallet.spent)
                wallet.spent = 0
        return debits

    def debits_written(self, debits: dict[str, tuple[int, int]]) -> None:
        """The batch from take_debits is committed: what it handed back is in the store now."""
        for project_id, (spent, from_lease) in debits.items():
            wallet = self._wallets.get(project_id)
            if wallet is not None:
                wallet.returning -= max(0, from_lease - spent)

    async def write_debits(self, session: AsyncSession, debits: dict[str, tuple[int, int]]) -> None:
        repo = LeaseRepository(session)
        for project_id, (spent, from_lease) in debits.items():
            await repo.settle(self.holder, project_id, spent, from_lease)

    async def maintain(self) -> None:
        """Give idle leases back, renew live ones, reclaim those of dead replicas."""
        now = time.monotonic()
        idle = [pid for pid, w in self._wallets.items()
                if now - w.used_at > IDLE_RELEASE_S and not w.reserved and not w.spent and not w.lock.locked()]
        for project_id in idle:
            await self._release(project_id)
        if now - self._checked_at > TIGHT_CHECK_S:
            self._checked_at = now
            await self._tighten()
        if now - self._renewed_at > self._renew_every:
            self._renewed_at = now
            cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=self._stale_after)
            async with self._sessions() as session, session.begin():
                repo = LeaseRepository(session)
                await repo.renew(self.holder)
                reclaimed = await repo.reclaim_stale(cutoff)
            if reclaimed:
                amount = sum(a for _, _, a in reclaimed)
                self.reclaimed_leases += len(reclaimed)
                self.reclaimed_micro_usd += amount
                # Credit that was leased by a replica that stopped without settling it: its
                # requests in flight and its last unwritten charges (see the module docstring).
                logger.warning("reclaimed leases of stopped replicas: count=%d unsettled_micro_usd=%d holders=%s",
                               len(reclaimed), amount, ",".join(sorted({h for h, _, _ in reclaimed})))

    async def refresh(self) -> None:
        """Each wallet's lease as the store has it, after an outage: a lease taken by a write
        whose answer was lost (the request was refused meanwhile) is known again. Called by the
        usage writer when no charge is outstanding, so the store's rows are exact."""
        async with self._sessions() as session:
            held = await LeaseRepository(session).held(self.holder)
        for project_id, wallet in self._wallets.items():
            if not wallet.lock.locked() and wallet.lease != held.get(project_id, 0):
                logger.warning("lease of project=%s read again after an outage: %d -> %d micro-USD",
                               project_id, wallet.lease, held.get(project_id, 0))
                wallet.lease = held.get(project_id, 0)

    async def close(self) -> None:
        """Give every lease back (after the last usage batch has been written)."""
        for task in list(self._tasks):
            task.cancel()
        for project_id in list(self._wallets):
            await self._release(project_id)

    def forget(self, project_id: str) -> None:
        """Re-read the project on its next request (after an admin change on this replica)."""
        wallet = self._wallets.get(project_id)
        if wallet is not None:
            wallet.free_left = max(wallet.free_left, 1)  # makes the next request look again
            if wallet.tight_at is not None:
                wallet.tight_at = float("-inf")  # and try a full lease again (credit may have come)

    async def _headroom(self, project_id: str) -> tuple[int, int] | None:
        async def read():
            async with self._sessions() as session:
                return await LeaseRepository(session).headroom(project_id)

        return await self._guard.call(read)

    async def _open_wallet(self, project_id: str) -> _Wallet:
        headroom = await self._headroom(project_id)
        wallet = self._wallets.setdefault(project_id, _Wallet())
        if headroom is not None:
            wallet.free_left = headroom[1]
        return wallet

    async def _take_free(self, project_id: str, wallet: _Wallet) -> bool:
        async def take():
            async with self._sessions() as session, session.begin():
                return await LeaseRepository(session).take_free_request(project_id)

        taken = await self._guard.call(take)
        wallet.free_left = wallet.free_left - 1 if taken else 0
        return taken

    async def _recheck_free(self, project_id: str, wallet: _Wallet) -> bool:
        headroom = await self._headroom(project_id)
        wallet.free_left = headroom[1] if headroom else 0
        return wallet.free_left > 0

    async def _cover(self, project_id: str, wallet: _Wallet, estimate: int) -> bool:
        """Grow the lease until it covers `estimate`; False when the balance cannot.

        One lease transaction per project at a time on this replica (the wallet's lock): a
        burst on a tight project queues here rather than on the connection pool, which the
        usage writer and lease renewal need too.
        """
        deadline = time.monotonic() + self._shortfall_wait
        pause = 0.02
        while True:
            async with wallet.lock:
                # Checked with no await before the caller reserves (leaving the lock does not
                # yield): another request may have taken what this one leased meanwhile.
                if wallet.available >= estimate:
                    return True
                if wallet.tight_at is None or time.monotonic() - wallet.tight_at > TIGHT_RETRY_S:
                    await self._refill(project_id, wallet, estimate)
                    if wallet.available >= estimate:
                        return True
                need = estimate - wallet.available

                async def lease():
                    async with self._sessions() as session, session.begin():
                        repo = LeaseRepository(session)
                        if await repo.lease(self.holder, project_id, need):
                            return True, 0, None
                        return False, await repo.held_by_others(self.holder, project_id), await repo.headroom(project_id)

                got, held, headroom = await self._guard.call(lease)
                if got:  # counted once committed
                    wallet.lease += need
                    continue
            # Waiting helps only if other replicas hold leases that could cover the shortfall, or
            # this one's usage writer is handing excess back (gone from the wallet, not yet from
            # the store: without it a short request in that moment was refused at once).
            if (held + (headroom[0] if headroom else 0) + wallet.returning < need
                    or time.monotonic() + pause > deadline):
                return wallet.available >= estimate
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.25)

    async def _refill(self, project_id: str, wallet: _Wallet, estimate: int) -> None:
        """Lease enough for many requests like this one while as much stays for the others;
        else turn the wallet tight (the caller then leases for this request alone)."""
        need = estimate - wallet.available
        wallet.want = max(need, LEASE_FLOOR, estimate * LEASE_REQUESTS)

        async def lease():
            async with self._sessions() as session, session.begin():
                return await LeaseRepository(session).lease(self.holder, project_id, wallet.want, keep=wallet.want)

        got = await self._guard.call(lease)
        if got:
            wallet.lease += wallet.want
            wallet.last_lease = wallet.want
            wallet.tight_at = None
        else:
            wallet.tight_at = time.monotonic()

    async def _tighten(self) -> None:
        """Turn full leases tight where the project's unleased headroom fell below a full lease."""
        full = {pid: w.want for pid, w in self._wallets.items() if w.tight_at is None and w.lease > 0}
        if not full:
            return
        async with self._sessions() as session:
            low = await LeaseRepository(session).low_headroom(self.holder, max(full.values()))
        turned = 0
        for project_id, headroom in low:
            wallet = self._wallets.get(project_id)
            if wallet is not None and wallet.tight_at is None and headroom < wallet.want:
                wallet.tight_at = time.monotonic()
                turned += 1
        if turned:
            self.flush_soon()  # their excess goes back with the next write

    async def _refill_ahead(self, project_id: str, wallet: _Wallet, estimate: int) -> None:
        wallet.refilling = True
        try:
            async with wallet.lock:
                if wallet.available < wallet.last_lease // 4:
                    await self._refill(project_id, wallet, estimate)
        except Exception as exc:  # a failed refill only means the next request refills in line
            logger.warning("lease refill failed: project=%s error=%s", project_id, type(exc).__name__)
        finally:
            wallet.refilling = False

    async def _release(self, project_id: str) -> None:
        # Detach the wallet before the first await: a request arriving meanwhile opens a new
        # one instead of reserving against a lease that is being given back.
        wallet = self._wallets.get(project_id)
        if wallet is None or wallet.reserved or wallet.spent:
            return
        del self._wallets[project_id]
        if wallet.lease <= 0:
            return
        try:
            async with self._sessions() as session, session.begin():
                await LeaseRepository(session).release(self.holder, project_id, wallet.lease)
        except Exception as exc:  # keep the lease: it is released later or reclaimed
            logger.warning("lease release failed: project=%s error=%s", project_id, type(exc).__name__)
            self._wallets.setdefault(project_id, _Wallet()).lease += wallet.lease

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
