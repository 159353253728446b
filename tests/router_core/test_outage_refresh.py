"""After an outage, what a replica holds in the store is set against what it knows it holds:
a lease or a spend-limit hold whose write committed after the request gave up on it (the store
guard's bound passed) is neither lost credit nor a limit held for good. Against a real store."""
from __future__ import annotations

from sqlalchemy import select

from router_core import tables
from router_core.credits import Credits
from router_core.key_spend import KeySpend, _month
from router_core.metering import UsageRecorder
from router_core.repositories import KeySpendRepository, LeaseRepository
from router_core.store_guard import StoreGuard
from tests.router_core.test_metering import db, event  # noqa: F401 (db: the store fixture)


async def _late_write(sessions, write) -> None:
    """A write that committed after its caller had been answered StoreUnavailable."""
    async with sessions() as session, session.begin():
        await write(session)


async def test_a_lease_and_a_hold_committed_too_late_are_set_right_after_the_outage(db):
    sessions, admin = db
    project = await admin.create_project("p", 10_000_000, 0)
    key, _ = await admin.create_key(project.id, "limited", spend_limit_micro_usd=5_000_000)
    guard = StoreGuard()
    credits = Credits(sessions, "replica-1", guard=guard)
    spend = KeySpend(sessions, "replica-1", guard=guard)
    recorder = UsageRecorder(sessions, credits=credits, spend=spend, guard=guard, interval=60)

    hold = await spend.hold(key.id, 1_000)  # a request in flight
    reservation = await credits.reserve(project.id, 1_000)
    leased = credits._wallets[project.id].lease
    # During an outage: a lease and a hold whose requests were refused, committed all the same.
    await _late_write(sessions, lambda s: LeaseRepository(s).lease("replica-1", project.id, 300_000))
    await _late_write(sessions, lambda s: KeySpendRepository(s).hold("replica-1", key.id, 2_000, _month()))
    guard.failed(None)
    guard.ok()

    recorder.record(event("req_1", project.id, credits.settle(reservation, 700), key_id=key.id))
    spend.settle(hold, 700)
    assert await recorder.flush()
    # The stranded lease is this replica's to use (and to give back); the stranded hold is gone.
    assert credits._wallets[project.id].lease == leased + 300_000 - 700
    async with sessions() as session:
        row = await session.get(tables.ApiKey, key.id)
        holds = (await session.execute(select(tables.KeySpendHold.amount_micro_usd)
                                       .where(tables.KeySpendHold.key_id == key.id))).scalars().all()
        project_row = await session.get(tables.Project, project.id)
    assert row.spend_held_micro_usd == 0 and sum(holds) == 0
    assert row.month_spend_micro_usd == 700
    assert project_row.leased_micro_usd == credits._wallets[project.id].lease
    await credits.close()
    async with sessions() as session:
        assert (await session.get(tables.Project, project.id)).leased_micro_usd == 0
