"""Holds on keys' spend limits on SQLite and PostgreSQL, without the network in between: replicas
never hold more than a limit leaves, settled charges reach the key's row with the usage write,
a stopped replica's holds come back, and a new month starts from zero."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from sqlalchemy import update

from router_core import tables
from router_core.admin import AdminService
from router_core.db import create_engine, session_factory
from router_core.errors import SpendLimitReached
from router_core.key_spend import KeySpend
from router_core.keys import KeyValidator
from router_core.metering import UsageRecorder
from router_core.metrics import SpendHoldCollector
from tests.stores import build


@pytest.fixture
async def db(database_url):
    build(database_url, "core")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    yield sessions, AdminService(sessions, KeyValidator(sessions))
    await engine.dispose()


async def _row(sessions, key_id: str) -> tables.ApiKey:
    async with sessions() as session:
        return await session.get(tables.ApiKey, key_id)


async def test_two_replicas_never_hold_more_than_the_limit(db):
    sessions, admin = db
    project = await admin.create_project("p", 10_000_000, 0)
    key, _ = await admin.create_key(project.id, "k", spend_limit_micro_usd=100_000)
    a, b = (KeySpend(sessions, h, settle_wait=0.05) for h in ("replica-a", "replica-b"))

    async def one(spend: KeySpend) -> bool:
        try:
            await spend.hold(key.id, 30_000)
        except SpendLimitReached:
            return False
        return True  # held until the end of the test: in flight

    results = await asyncio.gather(*(one(a if i % 2 else b) for i in range(40)))
    assert sum(results) == 100_000 // 30_000
    assert (await _row(sessions, key.id)).spend_held_micro_usd == 90_000


async def test_settled_charges_reach_the_keys_row_with_the_usage_write(db):
    sessions, admin = db
    project = await admin.create_project("p", 10_000_000, 0)
    key, _ = await admin.create_key(project.id, "k", spend_limit_micro_usd=50_000)
    spend = KeySpend(sessions, "r1")
    recorder = UsageRecorder(sessions, spend=spend, interval=60)
    for charged in (12_000, 7_000):
        hold = await spend.hold(key.id, 20_000)
        spend.settle(hold, charged)
    assert await recorder.flush()
    row = await _row(sessions, key.id)
    assert (row.month_spend_micro_usd, row.spend_held_micro_usd) == (19_000, 0)
    assert row.spend_month == dt.datetime.now(dt.timezone.utc).strftime("%Y-%m")
    await spend.hold(key.id, 31_000)  # what is left: 31_000
    with pytest.raises(SpendLimitReached) as refused:
        await spend.hold(key.id, 1)
    assert "monthly spend limit of $0.05" in refused.value.message


async def test_a_failed_write_keeps_the_release_for_the_next(db, tmp_path):
    sessions, admin = db
    project = await admin.create_project("p", 0, 0)
    key, _ = await admin.create_key(project.id, "k", spend_limit_micro_usd=50_000)
    spend = KeySpend(sessions, "r1")
    hold = await spend.hold(key.id, 20_000)
    spend.settle(hold, 5_000)
    away = create_engine(f"sqlite:///{tmp_path}/missing/dir/x.db?mode=ro")  # a store that cannot be reached
    recorder = UsageRecorder(session_factory(away), spend=spend, interval=60)
    assert not await recorder.flush()  # the batch, sealed with its charge and release, is kept
    await away.dispose()
    recorder._sessions = sessions  # the store is back
    assert await recorder.flush()
    row = await _row(sessions, key.id)
    assert (row.month_spend_micro_usd, row.spend_held_micro_usd) == (5_000, 0)


async def test_a_stopped_replicas_holds_are_reclaimed(db):
    sessions, admin = db
    project = await admin.create_project("p", 0, 0)
    key, _ = await admin.create_key(project.id, "k", spend_limit_micro_usd=50_000)
    dead = KeySpend(sessions, "dead")
    await dead.hold(key.id, 40_000)  # and never settles: its process was killed
    alive = KeySpend(sessions, "alive", renew_every=0, stale_after=0.2, settle_wait=0)
    with pytest.raises(SpendLimitReached):
        await alive.hold(key.id, 20_000)
    await asyncio.sleep(0.3)
    await alive.maintain()
    assert (await _row(sessions, key.id)).spend_held_micro_usd == 0
    assert (alive.reclaimed_holds, alive.reclaimed_micro_usd) == (1, 40_000)
    counted = {m.name: m.samples[0].value for m in SpendHoldCollector(alive).collect()}
    assert counted == {"onekey_core_spend_holds_reclaimed": 1, "onekey_core_spend_holds_reclaimed_micro_usd": 40_000}
    await alive.hold(key.id, 50_000)


async def test_a_new_month_starts_from_zero(db):
    sessions, admin = db
    project = await admin.create_project("p", 0, 0)
    key, _ = await admin.create_key(project.id, "k", spend_limit_micro_usd=50_000)
    async with sessions() as session, session.begin():
        await session.execute(update(tables.ApiKey).where(tables.ApiKey.id == key.id)
                              .values(month_spend_micro_usd=50_000, spend_month="2000-01"))
    spend = KeySpend(sessions, "r1")
    await spend.hold(key.id, 50_000)


async def test_a_limit_set_later_counts_the_months_spend_so_far(db):
    sessions, admin = db
    project = await admin.create_project("p", 0, 0)
    key, _ = await admin.create_key(project.id, "k")
    async with sessions() as session, session.begin():
        session.add(tables.UsageEvent(
            request_id="req_before", time=dt.datetime.now(dt.timezone.utc), project_id=project.id, key_id=key.id,
            model="m", provider="p", channel="c", endpoint="chat/completions", status=200,
            cost_micro_usd=30_000, charged_micro_usd=30_000))
    await admin.update_key(key.id, project.id, spend_limit_micro_usd=40_000)
    spend = KeySpend(sessions, "r1")
    await spend.hold(key.id, 10_000)
    with pytest.raises(SpendLimitReached):
        await spend.hold(key.id, 1)


async def test_a_store_that_does_not_answer_is_a_503_to_retry_never_a_500(tmp_path):
    from router_core.errors import StoreUnavailable

    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/x.db?mode=ro")
    try:
        spend = KeySpend(session_factory(engine), "r1")
        with pytest.raises(StoreUnavailable) as refused:
            await spend.hold("some-key", 1_000)
        assert refused.value.http_status == 503 and ("retry-after", "1") in refused.value.headers
    finally:
        await engine.dispose()
