"""The usage writer against a real store (SQLite and PostgreSQL): a batch holding a row the store
refuses writes every other row and its charges, sets the bad row aside (counted, logged without
content), and goes on; a clean stop loses nothing writable (issue 23, finding 2)."""
from __future__ import annotations

import datetime as dt
import logging

import pytest
from sqlalchemy import func, select

from router_core import tables
from router_core.admin import AdminService
from router_core.credits import Credits
from router_core.db import create_engine, session_factory
from router_core.keys import KeyValidator
from router_core.metering import UsageRecorder
from router_core.metrics import UsageWriteCollector
from tests.stores import build

CANARY = "canary-7f3a-never-logged"


@pytest.fixture
async def db(database_url):
    build(database_url, "core")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    yield sessions, AdminService(sessions, KeyValidator(sessions))
    await engine.dispose()


def event(request_id: str, project_id: str, charged: int = 0, **kw) -> dict:
    return {"request_id": request_id, "time": dt.datetime.now(dt.timezone.utc), "project_id": project_id,
            "key_id": "k", "model": "openai/gpt-4.1", "provider": "openai", "channel": "c",
            "endpoint": "chat/completions", "stream": False, "input_tokens": 1, "output_tokens": 1,
            "cached_input_tokens": 0, "reasoning_tokens": 0, "cache_write_tokens": 0, "estimated": False,
            "cost_micro_usd": charged, "charged_micro_usd": charged, "status": 200, "latency_ms": 1, "ttfb_ms": 1,
            "error_code": "", "requested_model": "", **kw}


async def _count(sessions) -> int:
    async with sessions() as session:
        return int((await session.execute(select(func.count()).select_from(tables.UsageEvent))).scalar())


async def test_a_poisoned_batch_writes_the_good_rows_and_sets_the_bad_ones_aside(db, caplog):
    sessions, admin = db
    project = await admin.create_project("p", 1_000_000, 0)
    credits = Credits(sessions, "r1")
    recorder = UsageRecorder(sessions, credits=credits, interval=60)
    recorder.record(event("req_first", project.id))
    assert await recorder.flush()

    for i in range(10):
        reservation = await credits.reserve(project.id, 1_000)
        recorder.record(event(f"req_good{i}", project.id, credits.settle(reservation, 100)))
        if i == 3:
            recorder.record(event("req_first", project.id, requested_model=CANARY))  # a used id
        if i == 6:
            recorder.record(event("req_null", project.id, model=None, requested_model=CANARY))  # NOT NULL
    with caplog.at_level(logging.INFO):
        assert await recorder.flush(), "the good rows are written"
    assert await _count(sessions) == 11 and recorder.pending == 0
    assert recorder.set_aside == 2
    counted = next(iter(UsageWriteCollector(recorder).collect()))
    assert counted.name == "onekey_core_usage_events_set_aside" and counted.samples[0].value == 2
    assert "set aside" in caplog.text and "req_null" in caplog.text and CANARY not in caplog.text
    async with sessions() as session:
        row = await session.get(tables.Project, project.id)
    assert row.balance_micro_usd == 1_000_000 - 1_000  # every charge written, the bad rows' too

    # Metering goes on: the next batches are written at once.
    recorder.record(event("req_later", project.id))
    assert await recorder.flush() and await _count(sessions) == 12

    # A clean stop writes what is pending, a bad row among it or not.
    recorder.record(event("req_first", project.id))
    recorder.record(event("req_last", project.id))
    caplog.clear()
    with caplog.at_level(logging.ERROR):
        await recorder.stop()
    assert "could not be written at shutdown" not in caplog.text
    assert await _count(sessions) == 13 and recorder.pending == 0 and recorder.set_aside == 3
    await credits.close()


async def test_a_store_that_is_away_keeps_the_batch_for_later(db, tmp_path):
    """Not a bad row: nothing is set aside while the store cannot be reached."""
    sessions, admin = db
    project = await admin.create_project("p", 0, 0)
    engine = create_engine(f"sqlite:///{tmp_path}/missing/dir/x.db?mode=ro")
    recorder = UsageRecorder(session_factory(engine), interval=60)
    recorder.record(event("req_kept", project.id))
    assert not await recorder.flush()
    assert recorder.pending == 1 and recorder.set_aside == 0
    await engine.dispose()
