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
    alive = Credits(sessions, "alive")
    await alive.maintain()
    assert (await project_row(sessions, project.id)).leased_micro_usd == 0
