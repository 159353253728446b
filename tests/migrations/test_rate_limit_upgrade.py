"""Revision 0002 (rate_limit_rpm on projects and api_keys) upgrades a store holding rows:
every row stays, the new columns start empty (no limit), and limits then work on old keys."""
from __future__ import annotations

import json
import pathlib

import openai
import pytest
import sqlalchemy as sa

from onekey.v1 import admin_pb2
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.migrations.release_0_1 import core_tables
from tests.stack import Stack
from tests.stores import build, fill, revision, snapshot, sync_engine, upgrade

FIXTURE = json.loads((pathlib.Path(__file__).parent / "release_0_1.json").read_text())
SECRETS = FIXTURE["secrets"]
BEFORE_0002 = core_tables.Base.metadata.sorted_tables  # revision 0001 is the 0.1.0 schema


def test_0002_keeps_every_row_and_old_keys_take_a_rate_limit(database_url, loop_thread, fake_openai):
    build(database_url, "core", "0001")
    fill(database_url, BEFORE_0002, FIXTURE["core"])
    before = snapshot(database_url, BEFORE_0002)
    assert revision(database_url, "core") == "0001"

    upgrade(database_url, "core", "0002")  # what `onekey db upgrade` does, up to this revision

    assert revision(database_url, "core") == "0002"
    assert snapshot(database_url, BEFORE_0002) == before
    engine = sync_engine(database_url)
    with engine.connect() as conn:
        for table in ("projects", "api_keys"):
            limits = conn.execute(sa.text(f"SELECT rate_limit_rpm FROM {table}")).scalars().all()
            assert limits and all(v is None for v in limits), table  # no limit until one is set
    engine.dispose()

    upgrade(database_url, "core")  # the later revisions, which today's code needs
    stack = Stack(CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                               usage_flush_interval=0.05), loop=loop_thread)
    try:
        client = openai.OpenAI(base_url=stack.base_url, api_key=SECRETS["api_key"], max_retries=0)
        ask = lambda: client.chat.completions.with_raw_response.create(  # noqa: E731
            model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "still here?"}])
        assert "x-ratelimit-limit-requests" not in ask().headers  # an old key: unlimited as before

        [old_key] = [k for k in FIXTURE["core"]["api_keys"] if k["revoked_at"] is None]
        stack.admin.SetRateLimit(admin_pb2.SetRateLimitRequest(key_id=old_key["id"], rate_limit_rpm=1),
                                 metadata=stack.metadata)
        assert ask().headers["x-ratelimit-remaining-requests"] == "0"
        with pytest.raises(openai.RateLimitError):
            ask()
        project = stack.admin.SetRateLimit(admin_pb2.SetRateLimitRequest(
            project_id=SECRETS["project_id"], rate_limit_rpm=100), metadata=stack.metadata).project
        assert project.rate_limit_rpm == 100 and project.balance_micro_usd > 0
    finally:
        stack.stop()
