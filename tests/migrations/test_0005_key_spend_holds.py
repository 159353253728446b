"""Revision 0005 (a key's spend limit held like credit) upgrades a routing store with rows in it:
every row is kept, a limited key starts from this month's charges (so a limit reached before the
upgrade stays reached), and the keys work through the real core afterwards."""
from __future__ import annotations

import datetime as dt

import openai
import pytest
import sqlalchemy as sa

from router_core.keys import mint_key
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.stack import Stack
from tests.stores import build, fill, revision, snapshot, sync_engine, upgrade

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
PROJECT = "11111111-2222-3333-4444-555555555555"
LIMITED, SPENT_OUT, FREE = (f"66666666-7777-8888-9999-00000000000{i}" for i in range(3))
MSGS = [{"role": "user", "content": "hi"}]


def _tables_at_0004(url: str) -> list[sa.Table]:
    engine = sync_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    engine.dispose()
    return [metadata.tables[name] for name in ("projects", "api_keys", "usage_events")]


def _event(i: int, key: str, when: dt.datetime, charged: int) -> dict:
    return {"request_id": f"req_old{i}", "time": when, "project_id": PROJECT, "key_id": key,
            "model": "openai/gpt-4.1", "provider": "openai", "channel": "openai-a", "endpoint": "chat/completions",
            "stream": False, "input_tokens": 3, "output_tokens": 2, "cached_input_tokens": 0,
            "reasoning_tokens": 0, "cache_write_tokens": 0, "estimated": False, "cost_micro_usd": charged,
            "charged_micro_usd": charged, "status": 200, "latency_ms": 5, "ttfb_ms": 4, "error_code": "",
            "requested_model": ""}


def test_0005_keeps_every_row_and_counts_this_months_spend_of_limited_keys(database_url, loop_thread, fake_openai):
    build(database_url, "core", "0004")
    tables = _tables_at_0004(database_url)
    assert "spend_held_micro_usd" not in tables[1].c
    secrets = {}
    keys = []
    for key_id, limit in ((LIMITED, 1_000_000), (SPENT_OUT, 5_000), (FREE, None)):
        secret, prefix, digest = mint_key()
        secrets[key_id] = secret
        keys.append({"id": key_id, "project_id": PROJECT, "name": key_id[-1], "prefix": prefix, "secret_hash": digest,
                     "created_at": NOW, "last_used_at": None, "revoked_at": None, "rate_limit_rpm": None,
                     "spend_limit_micro_usd": limit, "expires_at": None})
    month = NOW.replace(day=1, hour=0, minute=0, second=0)
    fill(database_url, tables, {
        "projects": [{"id": PROJECT, "name": "old", "balance_micro_usd": 5_000_000, "free_requests": 0,
                      "leased_micro_usd": 0, "rate_limit_rpm": None, "created_at": NOW}],
        "api_keys": keys,
        "usage_events": [_event(0, LIMITED, NOW, 700), _event(1, LIMITED, NOW, 300),
                         _event(2, LIMITED, month - dt.timedelta(days=2), 50_000),  # last month
                         _event(3, SPENT_OUT, NOW, 5_000), _event(4, FREE, NOW, 9_000)],
    })
    before = snapshot(database_url, tables)

    upgrade(database_url, "core", "0005")
    assert revision(database_url, "core") == "0005"
    assert snapshot(database_url, tables) == before, "every old column of every row is kept"
    engine = sync_engine(database_url)
    with engine.connect() as conn:
        counters = dict((r[0], tuple(r[1:])) for r in conn.execute(sa.text(
            "SELECT id, month_spend_micro_usd, spend_month, spend_held_micro_usd FROM api_keys")))
        assert conn.execute(sa.text("SELECT COUNT(*) FROM key_spend_holds")).scalar() == 0
    engine.dispose()
    this_month = NOW.strftime("%Y-%m")
    assert counters == {LIMITED: (1_000, this_month, 0), SPENT_OUT: (5_000, this_month, 0), FREE: (0, "", 0)}

    upgrade(database_url, "core")
    stack = Stack(CoreSettings(database_url=database_url, usage_flush_interval=0.05,
                               channels=(openai_channel(fake_openai),)), loop=loop_thread)
    try:
        for key_id in (LIMITED, FREE):
            client = openai.OpenAI(base_url=stack.base_url, api_key=secrets[key_id], max_retries=0)
            assert client.chat.completions.create(model="openai/gpt-4.1", messages=MSGS, max_tokens=10).choices
        spent_out = openai.OpenAI(base_url=stack.base_url, api_key=secrets[SPENT_OUT], max_retries=0)
        with pytest.raises(openai.APIStatusError) as refused:
            spent_out.chat.completions.create(model="openai/gpt-4.1", messages=MSGS, max_tokens=10)
        assert refused.value.status_code == 402 and refused.value.body["code"] == "key_spend_limit_reached"
        assert spent_out.chat.completions.create(model="sandbox/echo", messages=MSGS).choices
    finally:
        stack.stop()
