"""Revision 0004 (usage_events.cache_write_tokens): a store at 0003 with rows in it upgrades with
every row kept (old events wrote no cache: 0), and then meters Anthropic's cache writes."""
from __future__ import annotations

import json
import pathlib

import anthropic
import sqlalchemy as sa

from onekey.v1 import metering_pb2
from router_core import migrations as core_migrations
from router_core.settings import ChannelSettings, CoreSettings, Secret
from tests.fakes.providers import FakeAnthropic
from tests.migrations.release_0_1 import core_tables
from tests.stack import Stack, usage_events
from tests.stores import build, fill, revision, snapshot, sync_engine, upgrade

FIXTURE = json.loads((pathlib.Path(__file__).parent / "release_0_1.json").read_text())
TABLES = core_tables.Base.metadata.sorted_tables  # the 0.1.0 tables (0002-0003 added only columns with defaults)


def test_usage_events_gain_cache_write_tokens_with_every_row_kept(database_url, loop_thread):
    build(database_url, "core", "0003")
    fill(database_url, TABLES, FIXTURE["core"])
    before = snapshot(database_url, TABLES)
    upgrade(database_url, "core", "0004")
    assert revision(database_url, "core") == "0004"
    upgrade(database_url, "core")
    assert revision(database_url, "core") == core_migrations.head()
    assert snapshot(database_url, TABLES) == before
    engine = sync_engine(database_url)
    with engine.connect() as conn:
        written = conn.execute(sa.text("SELECT cache_write_tokens FROM usage_events")).scalars().all()
    engine.dispose()
    assert written == [0] * len(FIXTURE["core"]["usage_events"])

    fake = FakeAnthropic()
    loop_thread.run(fake.start())
    channel = ChannelSettings(name="anthropic-a", provider="anthropic", base_url=fake.url, api_key=Secret(fake.api_key))
    stack = Stack(CoreSettings(database_url=database_url, channels=(channel,), usage_flush_interval=0.05),
                  loop=loop_thread)
    try:
        project = FIXTURE["secrets"]["project_id"]
        client = anthropic.Anthropic(base_url=stack.base_url.removesuffix("/v1"), api_key=FIXTURE["secrets"]["api_key"],
                                     max_retries=0)
        system = [{"type": "text", "text": "A manual worth caching. " * 80, "cache_control": {"type": "ephemeral"}}]
        reply = client.messages.with_raw_response.create(model="claude-haiku-4-5", max_tokens=16, system=system,
                                                         messages=[{"role": "user", "content": "hi"}])
        old = sum(1 for e in FIXTURE["core"]["usage_events"] if e["project_id"] == project)
        events = usage_events(stack, project, old + 1)  # waits for the batch to be written
        assert len(events) == old + 1 and sum(1 for e in events if e.usage.cache_write_tokens) == 1
        usage = stack.metering.GetRequestUsage(metering_pb2.GetRequestUsageRequest(
            request_id=reply.headers["x-onekey-request-id"]), metadata=stack.metadata).usage
        assert usage.cache_write_tokens == reply.parse().usage.cache_creation_input_tokens > 0
    finally:
        stack.stop()
        loop_thread.run(fake.stop())
