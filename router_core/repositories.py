"""Data access for the routing store. Repositories take a session and never commit it: the
RPC that calls them owns the unit of work."""
from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable

from sqlalchemy import case, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from router_core import tables
from router_core.errors import NotFound
from router_core.tables import utcnow


class ProjectRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, name: str, free_requests: int, rate_limit_rpm: int | None = None) -> tables.Project:
        project = tables.Project(
            id=str(uuid.uuid4()), name=name, balance_micro_usd=0, free_requests=free_requests,
            rate_limit_rpm=rate_limit_rpm, created_at=utcnow(),
        )
        self.session.add(project)
        await self.session.flush()
        return project

    async def get(self, project_id: str) -> tables.Project:
        project = await self.session.get(tables.Project, project_id, populate_existing=True)
        if project is None:
            raise NotFound(f"project {project_id} not found", param="project_id")
        return project

    async def rename(self, project_id: str, name: str) -> tables.Project:
        project = await self.get(project_id)
        project.name = name
        await self.session.flush()
        return project

    async def set_rate_limit(self, project_id: str, rpm: int | None) -> tables.Project:
        project = await self.get(project_id)
        project.rate_limit_rpm = rpm
        await self.session.flush()
        return project

    async def lock_open(self, project_id: str) -> bool:
        """Take the project's row lock if it is open (a write that changes nothing), so that a
        close and a key creation never interleave: False when it is closed or unknown."""
        p = tables.Project
        result = await self.session.execute(
            update(p).where(p.id == project_id, p.closed_at.is_(None)).values(closed_at=None)
            .execution_options(synchronize_session=False))
        return result.rowcount == 1

    async def close(self, project_id: str) -> tuple[tables.Project, list[str]]:
        """Close a project and revoke its active keys: (the project, the revoked keys' hashes)."""
        p, k = tables.Project, tables.ApiKey
        now = utcnow()
        # The project row first, as key creation takes it: the keys read next are all there are.
        await self.session.execute(update(p).where(p.id == project_id, p.closed_at.is_(None))
                                   .values(closed_at=now).execution_options(synchronize_session=False))
        project = await self.get(project_id)
        hashes = list((await self.session.execute(
            select(k.secret_hash).where(k.project_id == project_id, k.revoked_at.is_(None)))).scalars())
        if hashes:
            await self.session.execute(update(k).where(k.project_id == project_id, k.revoked_at.is_(None))
                                       .values(revoked_at=now).execution_options(synchronize_session=False))
        return project, hashes

    async def add_free_requests(self, project_id: str, count: int) -> None:
        await self.get(project_id)
        total = tables.Project.free_requests + count
        await self.session.execute(
            update(tables.Project)
            .where(tables.Project.id == project_id)
            .values(free_requests=case((total < 0, 0), else_=total))
        )


class KeyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, project_id: str, name: str, prefix: str, secret_hash: str,
                  rate_limit_rpm: int | None = None, spend_limit_micro_usd: int | None = None,
                  expires_at: dt.datetime | None = None) -> tables.ApiKey:
        key = tables.ApiKey(
            id=str(uuid.uuid4()), project_id=project_id, name=name, prefix=prefix,
            secret_hash=secret_hash, rate_limit_rpm=rate_limit_rpm, created_at=utcnow(),
            spend_limit_micro_usd=spend_limit_micro_usd, expires_at=expires_at,
        )
        self.session.add(key)
        await self.session.flush()
        return key

    async def by_hash(self, secret_hash: str) -> tuple[tables.ApiKey, int | None] | None:
        """The key with this hash and its project's rate limit, in one query."""
        result = await self.session.execute(
            select(tables.ApiKey, tables.Project.rate_limit_rpm)
            .join(tables.Project, tables.Project.id == tables.ApiKey.project_id)
            .where(tables.ApiKey.secret_hash == secret_hash)
        )
        row = result.first()
        return (row[0], row[1]) if row is not None else None

    async def set_rate_limit(self, key_id: str, rpm: int | None) -> tables.ApiKey:
        key = await self.get(key_id)
        key.rate_limit_rpm = rpm
        await self.session.flush()
        return key

    async def list(self, project_id: str) -> list[tables.ApiKey]:
        result = await self.session.execute(
            select(tables.ApiKey)
            .where(tables.ApiKey.project_id == project_id)
            .order_by(tables.ApiKey.created_at, tables.ApiKey.id)
        )
        return list(result.scalars())

    async def active_names(self, project_id: str) -> set[str]:
        """Names of the project's keys that are not revoked (names are unique among them)."""
        k = tables.ApiKey
        result = await self.session.execute(select(k.name).where(k.project_id == project_id, k.revoked_at.is_(None)))
        return set(result.scalars())

    async def get(self, key_id: str) -> tables.ApiKey:
        key = await self.session.get(tables.ApiKey, key_id)
        if key is None:
            raise NotFound(f"key {key_id} not found", param="key_id")
        return key

    async def revoke(self, key_id: str) -> tables.ApiKey:
        key = await self.get(key_id)
        if key.revoked_at is None:
            key.revoked_at = utcnow()
            await self.session.flush()
        return key

    async def touch(self, last_used: dict[str, dt.datetime]) -> None:
        """Record when keys were last used (batched, off the hot path)."""
        for key_id, when in last_used.items():
            await self.session.execute(
                update(tables.ApiKey).where(tables.ApiKey.id == key_id).values(last_used_at=when)
            )


class CreditRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def apply(self, project_id: str, amount: int, idempotency_key: str, reason: str) -> bool:
        """Write a ledger entry and move the balance; False if the key was used before.

        The unique idempotency key makes a replay a no-op even across replicas: the insert of
        the second one fails inside a savepoint and nothing else is written.
        """
        try:
            async with self.session.begin_nested():
                await self.session.execute(
                    insert(tables.CreditEntry).values(
                        project_id=project_id, amount_micro_usd=amount,
                        idempotency_key=idempotency_key, reason=reason, created_at=utcnow(),
                    )
                )
        except IntegrityError:
            return False
        await self.session.execute(
            update(tables.Project)
            .where(tables.Project.id == project_id)
            .values(balance_micro_usd=tables.Project.balance_micro_usd + amount)
        )
        return True

    async def recent(self, project_id: str, limit: int) -> list[tables.CreditEntry]:
        """A project's ledger entries, newest first."""
        rows = await self.session.scalars(
            select(tables.CreditEntry).where(tables.CreditEntry.project_id == project_id)
            .order_by(tables.CreditEntry.created_at.desc(), tables.CreditEntry.id.desc()).limit(limit))
        return list(rows)


class UsageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, rows: Iterable[dict]) -> None:
        rows = list(rows)
        if rows:
            # The table, not the mapped class: a Core executemany skips the ORM's per-row
            # bookkeeping (about half the Python cost of writing an event); every event dict
            # carries every column, so the rows written are the same.
            await self.session.execute(insert(tables.UsageEvent.__table__), rows)

    async def written_ids(self, request_ids: Iterable[str]) -> set[str]:
        """Which of these request ids already have their event in the store."""
        e = tables.UsageEvent
        ids = list(request_ids)
        found: set[str] = set()
        for start in range(0, len(ids), 500):  # a bounded IN list per statement
            found.update((await self.session.scalars(select(e.request_id).where(
                e.request_id.in_(ids[start:start + 500])))).all())
        return found

    async def batch_written(self, token: str) -> bool:
        return await self.session.get(tables.UsageBatch, token) is not None

    async def mark_batch(self, token: str) -> None:
        await self.session.execute(insert(tables.UsageBatch.__table__), [{"token": token, "written_at": utcnow()}])

    async def prune_batches(self, older_than: dt.datetime) -> None:
        b = tables.UsageBatch
        await self.session.execute(delete(b).where(b.written_at < older_than))

    async def key_spend(self, key_id: str, since: dt.datetime) -> int:
        """What a key's requests charged since a time (its month's spend)."""
        e = tables.UsageEvent
        total = await self.session.scalar(
            select(func.sum(e.charged_micro_usd)).where(e.key_id == key_id, e.time >= since))
        return int(total or 0)

    def _day(self):
        col = tables.UsageEvent.time
        if self.session.bind.dialect.name == "sqlite":
            return func.strftime("%Y-%m-%d", col)
        return func.to_char(func.timezone("UTC", col), "YYYY-MM-DD")

    async def summary(self, project_id: str, start: dt.datetime, end: dt.datetime, group: str) -> list[tuple]:
        """Totals per day, model or key: (group, requests, in, out, cached, reasoning, cost, charged, errors)."""
        e = tables.UsageEvent
        key = {"day": self._day(), "model": e.model, "key": e.key_id}[group]
        result = await self.session.execute(
            select(
                key, func.count(), func.sum(e.input_tokens), func.sum(e.output_tokens),
                func.sum(e.cached_input_tokens), func.sum(e.reasoning_tokens),
                func.sum(e.cost_micro_usd), func.sum(e.charged_micro_usd),
                func.sum(case((e.status >= 400, 1), else_=0)),
            )
            .where(e.project_id == project_id, e.time >= start, e.time < end)
            .group_by(key)
            .order_by(key)
        )
        return [tuple(int(v or 0) if i else str(v) for i, v in enumerate(row)) for row in result]

    async def page(self, project_id: str, start: dt.datetime, end: dt.datetime, limit: int,
                   before: tuple[dt.datetime, str] | None, status: str = "", model: str = "",
                   key_id: str = "") -> list[tables.UsageEvent]:
        """Newest first; `before` is the (time, request_id) of the last row of the previous page.

        Filters: status "ok" (< 400), "error" (>= 400) or one status code; a model; a key id.
        """
        e = tables.UsageEvent
        query = select(e).where(e.project_id == project_id, e.time >= start, e.time < end)
        if status == "ok":
            query = query.where(e.status < 400)
        elif status == "error":
            query = query.where(e.status >= 400)
        elif status:
            query = query.where(e.status == int(status))
        if model:
            query = query.where(e.model == model)
        if key_id:
            query = query.where(e.key_id == key_id)
        if before is not None:
            query = query.where((e.time < before[0]) | ((e.time == before[0]) & (e.request_id < before[1])))
        result = await self.session.execute(query.order_by(e.time.desc(), e.request_id.desc()).limit(limit))
        return list(result.scalars())

    async def get(self, request_id: str) -> tables.UsageEvent | None:
        return await self.session.get(tables.UsageEvent, request_id)


class LeaseRepository:
    """Balance leases: the only writes that move money between a project and a core replica.

    Every change is a single conditional UPDATE whose affected row count is checked: no
    read-then-write, so concurrent replicas on one PostgreSQL can never lease more than a
    project holds.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def headroom(self, project_id: str) -> tuple[int, int] | None:
        """(balance not yet leased, free requests left), or None for an unknown project."""
        p = tables.Project
        row = (await self.session.execute(
            select(p.balance_micro_usd - p.leased_micro_usd, p.free_requests).where(p.id == project_id)
        )).first()
        return (int(row[0]), int(row[1])) if row else None

    async def lease(self, holder: str, project_id: str, amount: int, keep: int = 0) -> bool:
        """Move `amount` of the balance into this holder's lease, if that much is unleased
        and `keep` more stays unleased afterwards."""
        p = tables.Project
        result = await self.session.execute(
            update(p)
            .where(p.id == project_id, p.balance_micro_usd - p.leased_micro_usd >= amount + keep)
            .values(leased_micro_usd=p.leased_micro_usd + amount)
        )
        if result.rowcount != 1:
            return False
        await self._add_to_lease(holder, project_id, amount)
        return True

    async def take_free_request(self, project_id: str) -> bool:
        """Spend one free request if any is left."""
        p = tables.Project
        result = await self.session.execute(
            update(p).where(p.id == project_id, p.free_requests > 0).values(free_requests=p.free_requests - 1)
        )
        return result.rowcount == 1

    async def settle(self, holder: str, project_id: str, spent: int, from_lease: int) -> None:
        """Charge settled costs: the balance pays `spent`, of which `from_lease` was leased."""
        p = tables.Project
        await self.session.execute(
            update(p).where(p.id == project_id).values(
                balance_micro_usd=p.balance_micro_usd - spent,
                leased_micro_usd=p.leased_micro_usd - from_lease)
        )
        if from_lease:
            await self._add_to_lease(holder, project_id, -from_lease)

    async def charge(self, project_id: str, amount: int) -> None:
        """Charge the balance outside any lease (a replayed charge of a core that died: its lease
        is reclaimed on its own)."""
        p = tables.Project
        await self.session.execute(
            update(p).where(p.id == project_id).values(balance_micro_usd=p.balance_micro_usd - amount))

    async def release(self, holder: str, project_id: str, amount: int) -> None:
        """Give an unused lease back to the project."""
        p = tables.Project
        await self.session.execute(
            update(p).where(p.id == project_id).values(leased_micro_usd=p.leased_micro_usd - amount))
        await self._add_to_lease(holder, project_id, -amount)

    async def renew(self, holder: str) -> None:
        """Mark this holder's leases as alive."""
        await self.session.execute(
            update(tables.CreditLease).where(tables.CreditLease.holder == holder).values(renewed_at=utcnow()))

    async def reclaim_stale(self, older_than: dt.datetime) -> list[tuple[str, str, int]]:
        """Return the leases of holders that stopped renewing them (a crashed replica).

        Returns what was reclaimed, (holder, project, amount), for leases that held credit.
        """
        lease = tables.CreditLease
        stale = (await self.session.execute(
            select(lease.holder, lease.project_id, lease.amount_micro_usd).where(lease.renewed_at < older_than)
        )).all()
        reclaimed = []
        p = tables.Project
        for holder, project_id, amount in stale:
            # The project row first, as every other lease write takes them (no deadlock).
            await self.session.execute(select(p.id).where(p.id == project_id).with_for_update())
            gone = await self.session.execute(
                delete(lease).where(lease.holder == holder, lease.project_id == project_id,
                                    lease.renewed_at < older_than))
            if gone.rowcount == 1 and amount:
                await self.session.execute(
                    update(p).where(p.id == project_id).values(leased_micro_usd=p.leased_micro_usd - amount))
                reclaimed.append((holder, project_id, int(amount)))
        return reclaimed

    async def held(self, holder: str) -> dict[str, int]:
        """What this holder leases, by project, as the store has it."""
        lease = tables.CreditLease
        rows = await self.session.execute(select(lease.project_id, lease.amount_micro_usd).where(lease.holder == holder))
        return {project_id: int(amount) for project_id, amount in rows}

    async def held_by_others(self, holder: str, project_id: str) -> int:
        """What other holders lease of the project (their requests in flight, and any excess)."""
        lease = tables.CreditLease
        total = (await self.session.execute(
            select(func.sum(lease.amount_micro_usd))
            .where(lease.project_id == project_id, lease.holder != holder, lease.amount_micro_usd > 0)
        )).scalar()
        return int(total or 0)

    async def low_headroom(self, holder: str, below: int) -> list[tuple[str, int]]:
        """(project, unleased balance) for this holder's leases whose project has less than `below` unleased."""
        lease, p = tables.CreditLease, tables.Project
        headroom = p.balance_micro_usd - p.leased_micro_usd
        rows = (await self.session.execute(
            select(lease.project_id, headroom).join(p, p.id == lease.project_id)
            .where(lease.holder == holder, lease.amount_micro_usd > 0, headroom < below)
        )).all()
        return [(project_id, int(room)) for project_id, room in rows]

    async def _add_to_lease(self, holder: str, project_id: str, delta: int) -> None:
        lease = tables.CreditLease
        result = await self.session.execute(
            update(lease).where(lease.holder == holder, lease.project_id == project_id)
            .values(amount_micro_usd=lease.amount_micro_usd + delta, renewed_at=utcnow())
        )
        if result.rowcount == 0:
            self.session.add(tables.CreditLease(holder=holder, project_id=project_id,
                                                amount_micro_usd=delta, renewed_at=utcnow()))
            await self.session.flush()


class KeySpendRepository:
    """Holds on keys' monthly spend limits: like LeaseRepository, each change is one conditional
    UPDATE of the key's row with its affected row count checked, so replicas on one PostgreSQL
    never hold together more than a key's limit leaves."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    @staticmethod
    def _spent(month: str):
        k = tables.ApiKey
        return case((k.spend_month == month, k.month_spend_micro_usd), else_=0)

    async def hold(self, holder: str, key_id: str, amount: int, month: str) -> bool:
        """Hold `amount` of the key's limit for a request in flight, if the limit leaves that much
        after this month's spend and every hold (a key whose limit was cleared always may)."""
        k = tables.ApiKey
        room = k.spend_limit_micro_usd - self._spent(month) - k.spend_held_micro_usd
        result = await self.session.execute(
            update(k).where(k.id == key_id, (k.spend_limit_micro_usd.is_(None)) | (room >= amount))
            .values(spend_held_micro_usd=k.spend_held_micro_usd + amount))
        if result.rowcount != 1:
            return False
        await self._add_to_hold(holder, key_id, amount)
        return True

    async def state(self, key_id: str, month: str) -> tuple[int | None, int, int]:
        """(limit, spent this month, held by requests in flight anywhere)."""
        k = tables.ApiKey
        row = (await self.session.execute(
            select(k.spend_limit_micro_usd, self._spent(month), k.spend_held_micro_usd).where(k.id == key_id))).first()
        return (row[0], int(row[1]), int(row[2])) if row else (None, 0, 0)

    async def settle(self, holder: str, key_id: str, spent: int, released: int, month: str) -> None:
        """Count settled charges into the month's spend and let their holds go."""
        k = tables.ApiKey
        await self.session.execute(
            update(k).where(k.id == key_id).values(
                month_spend_micro_usd=self._spent(month) + spent, spend_month=month,
                spend_held_micro_usd=k.spend_held_micro_usd - released))
        if released:
            await self._add_to_hold(holder, key_id, -released)

    async def recount(self, key_id: str, month: str, since: dt.datetime) -> None:
        """Set a key's month spend from its usage events (when it gets a limit it had not)."""
        k = tables.ApiKey
        spent = await UsageRepository(self.session).key_spend(key_id, since)
        await self.session.execute(update(k).where(k.id == key_id).values(month_spend_micro_usd=spent,
                                                                          spend_month=month))

    async def renew(self, holder: str) -> None:
        h = tables.KeySpendHold
        await self.session.execute(update(h).where(h.holder == holder).values(renewed_at=utcnow()))

    async def reclaim_stale(self, older_than: dt.datetime) -> list[tuple[str, str, int]]:
        """Let go of the holds of holders that stopped renewing them: (holder, key, amount)."""
        h, k = tables.KeySpendHold, tables.ApiKey
        stale = (await self.session.execute(
            select(h.holder, h.key_id, h.amount_micro_usd).where(h.renewed_at < older_than))).all()
        reclaimed = []
        for holder, key_id, amount in stale:
            await self.session.execute(select(k.id).where(k.id == key_id).with_for_update())
            gone = await self.session.execute(
                delete(h).where(h.holder == holder, h.key_id == key_id, h.renewed_at < older_than))
            if gone.rowcount == 1 and amount:
                await self.session.execute(
                    update(k).where(k.id == key_id).values(spend_held_micro_usd=k.spend_held_micro_usd - amount))
                reclaimed.append((holder, key_id, int(amount)))
        return reclaimed

    async def held(self, holder: str) -> dict[str, int]:
        """What this holder holds of each key's limit, as the store has it."""
        h = tables.KeySpendHold
        rows = await self.session.execute(select(h.key_id, h.amount_micro_usd).where(h.holder == holder))
        return {key_id: int(amount) for key_id, amount in rows}

    async def correct_hold(self, holder: str, key_id: str, delta: int) -> None:
        """Move this holder's hold on a key, and the key's total held, by `delta`."""
        k = tables.ApiKey
        await self.session.execute(
            update(k).where(k.id == key_id).values(spend_held_micro_usd=k.spend_held_micro_usd + delta))
        await self._add_to_hold(holder, key_id, delta)

    async def _add_to_hold(self, holder: str, key_id: str, delta: int) -> None:
        h = tables.KeySpendHold
        result = await self.session.execute(
            update(h).where(h.holder == holder, h.key_id == key_id)
            .values(amount_micro_usd=h.amount_micro_usd + delta, renewed_at=utcnow()))
        if result.rowcount == 0:
            self.session.add(tables.KeySpendHold(holder=holder, key_id=key_id, amount_micro_usd=delta,
                                                 renewed_at=utcnow()))
            await self.session.flush()


class ResponseOwnerRepository:
    """Who owns a stored provider response. Rows are written once and never change."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_many(self, rows: list[dict]) -> None:
        """Insert owners; an id already recorded keeps its first owner (never re-assigned)."""
        if not rows:
            return
        table = tables.ResponseOwner.__table__
        if self.session.bind.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        await self.session.execute(dialect_insert(table).on_conflict_do_nothing(index_elements=["response_id"]), rows)

    async def get(self, response_id: str) -> tables.ResponseOwner | None:
        return await self.session.get(tables.ResponseOwner, response_id)
