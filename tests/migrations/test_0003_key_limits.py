"""Revision 0003 (key spend limits and expiry; refused requests in usage events) upgrades a
routing store with rows in it: every row is kept, old keys have no limit and no expiry, old
events an empty error code, and the keys and events work through the real core afterwards."""
from __future__ import annotations

import datetime as dt

import openai
import sqlalchemy as sa

from onekey.v1 import metering_pb2
from router_core.keys import mint_key
from router_core.settings import CoreSettings
from tests.stack import Stack, usage_events
from tests.stores import build, fill, revision, snapshot, sync_engine, upgrade

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
PROJECT = "11111111-2222-3333-4444-555555555555"
KEY = "66666666-7777-8888-9999-000000000000"


def _tables_at_0002(url: str) -> list[sa.Table]:
    engine = sync_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    engine.dispose()
    return [metadata.tables[name] for name in ("projects", "api_keys", "usage_events")]


def test_0003_keeps_every_row_and_old_keys_and_events_keep_working(database_url, loop_thread):
    build(database_url, "core", "0002")
    tables = _tables_at_0002(database_url)
    assert "spend_limit_micro_usd" not in tables[1].c and "error_code" not in tables[2].c
    secret, prefix, digest = mint_key()
    fill(database_url, tables, {
        "projects": [{"id": PROJECT, "name": "old", "balance_micro_usd": 5_000_000, "free_requests": 0,
                      "leased_micro_usd": 0, "created_at": NOW}],
        "api_keys": [{"id": KEY, "project_id": PROJECT, "name": "old key", "prefix": prefix, "secret_hash": digest,
                      "created_at": NOW, "last_used_at": None, "revoked_at": None}],
        "usage_events": [{"request_id": f"req_old{i}", "time": NOW - dt.timedelta(minutes=i),
                          "project_id": PROJECT, "key_id": KEY, "model": "sandbox/echo", "provider": "sandbox",
                          "channel": "sandbox", "endpoint": "chat/completions", "stream": False, "input_tokens": 3,
                          "output_tokens": 2, "cached_input_tokens": 0, "reasoning_tokens": 0, "estimated": False,
                          "cost_micro_usd": 0, "charged_micro_usd": 0, "status": status, "latency_ms": 5,
                          "ttfb_ms": 4} for i, status in enumerate((200, 502))],
    })
    before = snapshot(database_url, tables)

    upgrade(database_url, "core", "0003")  # what `onekey db upgrade` does, up to this revision
    assert revision(database_url, "core") == "0003"
    assert snapshot(database_url, tables) == before, "every old column of every row is kept"
    engine = sync_engine(database_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT spend_limit_micro_usd, expires_at FROM api_keys")).one() == (None, None)
        assert conn.execute(sa.text("SELECT error_code, requested_model FROM usage_events")).all() == [("", "")] * 2
    engine.dispose()

    upgrade(database_url, "core")  # the later revisions, which today's code needs
    stack = Stack(CoreSettings(database_url=database_url, usage_flush_interval=0.05), loop=loop_thread)
    try:
        client = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
        assert client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
        events = usage_events(stack, PROJECT, 3)
        assert {e.request_id for e in events} >= {"req_old0", "req_old1"} and len(events) == 3
        failed = stack.metering.ListUsageEvents(metering_pb2.ListUsageEventsRequest(
            project_id=PROJECT, status="error"), metadata=stack.metadata).events
        assert [e.request_id for e in failed] == ["req_old1"]
    finally:
        stack.stop()
