"""Revision 0007 (usage batch tokens) upgrades a routing store with rows in it: every row is
kept, and a usage batch written afterwards leaves its token beside the old events."""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from router_core.db import create_engine, session_factory
from router_core.metering import UsageRecorder
from tests.stores import build, fill, revision, snapshot, sync_engine, upgrade

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
PROJECT = "11111111-2222-3333-4444-555555555555"


def _event(request_id: str) -> dict:
    return {"request_id": request_id, "time": NOW, "project_id": PROJECT, "key_id": "k", "model": "m",
            "provider": "openai", "channel": "c", "endpoint": "chat/completions", "stream": False,
            "input_tokens": 1, "output_tokens": 2, "cached_input_tokens": 0, "reasoning_tokens": 0,
            "cache_write_tokens": 0, "estimated": False, "cost_micro_usd": 3, "charged_micro_usd": 3,
            "status": 200, "latency_ms": 1, "ttfb_ms": 1, "error_code": "", "requested_model": "m"}


async def test_0007_keeps_every_row_and_new_batches_leave_their_token(database_url):
    build(database_url, "core", "0006")
    engine = sync_engine(database_url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    engine.dispose()
    assert "usage_batches" not in metadata.tables
    tables = [metadata.tables["usage_events"]]
    fill(database_url, tables, {"usage_events": [_event("req_old")]})
    before = snapshot(database_url, tables)
    upgrade(database_url, "core", "0007")
    assert revision(database_url, "core") == "0007"
    assert snapshot(database_url, tables) == before, "every old event is kept"
    upgrade(database_url, "core")

    engine = create_engine(database_url)
    try:
        recorder = UsageRecorder(session_factory(engine), interval=60)
        recorder.record(_event("req_new"))
        assert await recorder.flush()
        async with engine.connect() as conn:
            events = (await conn.execute(sa.text("SELECT count(*) FROM usage_events"))).scalar()
            batches = (await conn.execute(sa.text("SELECT count(*) FROM usage_batches"))).scalar()
        assert (events, batches) == (2, 1)
    finally:
        await engine.dispose()
