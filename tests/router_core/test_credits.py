"""Leases and reservations on SQLite and PostgreSQL, without the network in between."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select, update

from router_core import tables
from router_core.admin import AdminService
from router_core.credits import Credits
from router_core.db import create_engine, session_factory
from router_core.errors import InsufficientQuota
from router_core.keys import KeyValidator
from router_core.metering import UsageRecorder
from tests.stores import build


@pytest.fixture
async def db(database_url):
    build(database_url, "core")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    yield sessions, AdminService(sessions, KeyValidator(sessions))
    await engine.dispose()


async def project_row(sessions, project_id) -> tables.Project:
    async with sessions() as session:
        return await session.get(tables.Project, project_id)


async def test_two_replicas_never_lease_more_than_the_balance(db):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)  # $1
    a, b = Credits(sessions, "replica-a"), Credits(sessions, "replica-b")

    async def one(credits: Credits) -> bool:
        try:
            reservation = await credits.reserve(project.id, 30_000)
        except InsufficientQuota:
            return False
        await asyncio.sleep(0.01)
        credits.settle(reservation, 30_000)
        return True

    results = await asyncio.gather(*(one(a if i % 2 else b) for i in range(100)))
    assert sum(results) == 1_000_000 // 30_000  # 33: exactly what $1 buys, across both replicas
    row = await project_row(sessions, project.id)
    assert row.leased_micro_usd <= row.balance_micro_usd


async def test_settled_costs_reach_the_ledger_with_the_events(db):
    sessions, admin = db
    project = await admin.create_project("p", 500_000, 0)
    credits = Credits(sessions, "r1")
    recorder = UsageRecorder(sessions, credits=credits)
    for cost in (1_234, 5_678, 90):
        reservation = await credits.reserve(project.id, 10_000)
        charged = credits.settle(reservation, cost)
        recorder.record({"request_id": f"r{cost}", "time": dt.datetime.now(dt.timezone.utc),
                         "project_id": project.id, "key_id": "k", "model": "m", "provider": "p",
                         "channel": "c", "endpoint": "chat/completions", "stream": False,
                         "cost_micro_usd": cost, "charged_micro_usd": charged, "status": 200})
    await recorder.flush()
    row = await project_row(sessions, project.id)
    assert row.balance_micro_usd == 500_000 - 7_002
    async with sessions() as session:
        charged = (await session.execute(select(func.sum(tables.UsageEvent.charged_micro_usd)))).scalar()
        credited = (await session.execute(select(func.sum(tables.CreditEntry.amount_micro_usd)))).scalar()
    assert credited - charged == row.balance_micro_usd
    await credits.close()
    row = await project_row(sessions, project.id)
    assert row.leased_micro_usd == 0 and row.balance_micro_usd == 500_000 - 7_002


async def test_overshoot_is_bounded_by_one_request_and_then_refused(db):
    sessions, admin = db
    project = await admin.create_project("p", 100_000, 0)
    credits = Credits(sessions, "r1")
    recorder = UsageRecorder(sessions, credits=credits)
    reservation = await credits.reserve(project.id, 100_000)
    credits.settle(reservation, 130_000)  # the provider reported more than estimated
    await recorder.flush()
    assert (await project_row(sessions, project.id)).balance_micro_usd == -30_000
    with pytest.raises(InsufficientQuota):
        await credits.reserve(project.id, 1)


async def test_free_requests_are_exact_and_spent_first(db):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 3)
    credits = Credits(sessions, "r1")
    kinds = [(await credits.reserve(project.id, 1_000)).kind for _ in range(5)]
    assert kinds == ["free", "free", "free", "credit", "credit"]
    assert (await project_row(sessions, project.id)).free_requests == 0
    none = await admin.create_project("q", 0, 0)
    assert (await credits.reserve(none.id, 0)).kind == "none"  # free models need nothing
    with pytest.raises(InsufficientQuota):
        await credits.reserve(none.id, 1)
    await admin.add_free_requests(none.id, 1)  # granted later: noticed at once
    assert (await credits.reserve(none.id, 1)).kind == "free"


async def test_a_dead_replicas_lease_is_reclaimed(db):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)
    dead = Credits(sessions, "dead")
    await dead.reserve(project.id, 10_000)
    assert (await project_row(sessions, project.id)).leased_micro_usd > 0
    async with sessions() as session, session.begin():
        await session.execute(update(tables.CreditLease).values(
            renewed_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1)))
    held = (await project_row(sessions, project.id)).leased_micro_usd
    alive = Credits(sessions, "alive")
    await alive.maintain()
    assert (await project_row(sessions, project.id)).leased_micro_usd == 0
    # Counted for the core's /metrics: the credit that came back without being settled.
    assert alive.reclaimed_leases == 1 and alive.reclaimed_micro_usd == held


def _event(request_id: str, project_id: str, charged: int) -> dict:
    return {"request_id": request_id, "time": dt.datetime.now(dt.timezone.utc), "project_id": project_id,
            "key_id": "k", "model": "m", "provider": "p", "channel": "c", "endpoint": "chat/completions",
            "stream": False, "cost_micro_usd": charged, "charged_micro_usd": charged, "status": 200}


class _Replica:
    """A core replica's credits and usage writer, its loop running as in the server."""

    def __init__(self, sessions, name: str) -> None:
        # A generous wait for the other replica's excess: this machine is shared and slow at times.
        self.credits = Credits(sessions, name, shortfall_wait=10)
        self.recorder = UsageRecorder(sessions, credits=self.credits, interval=0.05)
        self.credits.flush_soon = self.recorder.flush_soon
        self.recorder.start()
        self.served = 0

    async def request(self, project_id: str, estimate: int, cost: int) -> bool:
        try:
            reservation = await self.credits.reserve(project_id, estimate)
        except InsufficientQuota:
            return False
        charged = self.credits.settle(reservation, cost)
        self.served += 1
        self.recorder.record(_event(f"{self.credits.holder}-{self.served}", project_id, charged))
        return True

    async def stop(self) -> None:
        await self.recorder.stop()
        await self.credits.close()


async def _ledger_adds_up(sessions, project_id: str) -> tables.Project:
    row = await project_row(sessions, project_id)
    async with sessions() as session:
        charged = (await session.execute(select(func.sum(tables.UsageEvent.charged_micro_usd))
                                         .where(tables.UsageEvent.project_id == project_id))).scalar() or 0
        credited = (await session.execute(select(func.sum(tables.CreditEntry.amount_micro_usd))
                                          .where(tables.CreditEntry.project_id == project_id))).scalar() or 0
    assert credited - charged == row.balance_micro_usd
    return row


async def test_a_small_balance_serves_every_request_it_covers_whichever_replica_asks(db):
    sessions, admin = db
    estimate, cost = 30_000, 20_000
    project = await admin.create_project("p", 3 * estimate, 0)  # covers exactly three estimates
    a, b = _Replica(sessions, "replica-a"), _Replica(sessions, "replica-b")
    try:
        served = [await (a if i % 2 == 0 else b).request(project.id, estimate, cost) for i in range(3)]
        assert served == [True, True, True]
        # Spent 60_000 of 90_000: 30_000 is left, exactly one more estimate, on either replica.
        assert await b.request(project.id, estimate, cost)
        assert not await a.request(project.id, estimate, cost)
    finally:
        await a.stop()
        await b.stop()
    row = await _ledger_adds_up(sessions, project.id)
    assert row.balance_micro_usd == 3 * estimate - 4 * cost and row.leased_micro_usd == 0


async def test_an_idle_full_lease_goes_back_when_another_replica_needs_the_credit(db):
    sessions, admin = db
    estimate = 1_000
    want = 50 * estimate * 2  # a full lease is 50 requests; it is taken only if as much stays unleased
    project = await admin.create_project("p", 2 * want, 0)
    a, b = _Replica(sessions, "replica-a"), _Replica(sessions, "replica-b")
    try:
        assert await a.request(project.id, estimate * 2, estimate * 2)  # replica A takes a full lease…
        assert (await project_row(sessions, project.id)).leased_micro_usd >= want
        # …and goes idle. Replica B can still spend the whole balance, A's lease included.
        results = [await b.request(project.id, estimate * 2, estimate * 2) for _ in range(99)]
        assert all(results)
        assert not await b.request(project.id, estimate * 2, estimate * 2)
    finally:
        await a.stop()
        await b.stop()
    row = await _ledger_adds_up(sessions, project.id)
    assert row.balance_micro_usd == 0 and row.leased_micro_usd == 0


async def test_a_project_out_of_credit_everywhere_is_refused_at_once(db):
    sessions, admin = db
    project = await admin.create_project("p", 10_000, 0)
    a, b = _Replica(sessions, "replica-a"), _Replica(sessions, "replica-b")
    try:
        assert await a.request(project.id, 10_000, 10_000)
        await asyncio.sleep(0.2)  # A's charge is written
        started = asyncio.get_running_loop().time()
        assert not await b.request(project.id, 10_000, 10_000)
        assert asyncio.get_running_loop().time() - started < 1.5  # no wait for leases nobody holds
    finally:
        await a.stop()
        await b.stop()


async def test_a_request_can_wait_until_its_own_event_is_committed(db):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)
    credits = Credits(sessions, "r1")
    recorder = UsageRecorder(sessions, credits=credits, interval=60)  # no timed flush in this test
    recorder.start()
    try:
        reservation = await credits.reserve(project.id, 10_000)
        seq = recorder.record(_event("durable-1", project.id, credits.settle(reservation, 1_234)))
        assert await recorder.written(seq, timeout=10)  # written now, not in a minute
        async with sessions() as session:
            assert await session.get(tables.UsageEvent, "durable-1") is not None
        assert (await project_row(sessions, project.id)).balance_micro_usd == 1_000_000 - 1_234
    finally:
        await recorder.stop()
        await credits.close()
