"""Revision 0006 (a project's tombstone, `closed_at`) upgrades a routing store with rows in it:
every row is kept, every project is open, and its keys can be made and closed afterwards."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from router_core.admin import AdminService
from router_core.db import create_engine, session_factory
from router_core.errors import ProjectClosed
from router_core.keys import KeyValidator, mint_key
from tests.stores import build, fill, revision, snapshot, sync_engine, upgrade

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
PROJECT = "11111111-2222-3333-4444-555555555555"
KEY = "66666666-7777-8888-9999-000000000000"


def _tables(url: str) -> list[sa.Table]:
    engine = sync_engine(url)
    metadata = sa.MetaData()
    metadata.reflect(engine)
    engine.dispose()
    return [metadata.tables[name] for name in ("projects", "api_keys")]


async def test_0006_keeps_every_row_and_old_projects_are_open(database_url):
    build(database_url, "core", "0005")
    tables = _tables(database_url)
    assert "closed_at" not in tables[0].c
    _, prefix, digest = mint_key()
    fill(database_url, tables, {
        "projects": [{"id": PROJECT, "name": "old", "balance_micro_usd": 5_000_000, "free_requests": 3,
                      "leased_micro_usd": 0, "rate_limit_rpm": None, "created_at": NOW}],
        "api_keys": [{"id": KEY, "project_id": PROJECT, "name": "old key", "prefix": prefix, "secret_hash": digest,
                      "created_at": NOW, "last_used_at": None, "revoked_at": None, "rate_limit_rpm": None,
                      "spend_limit_micro_usd": None, "expires_at": None, "month_spend_micro_usd": 0,
                      "spend_month": "", "spend_held_micro_usd": 0}],
    })
    before = snapshot(database_url, tables)
    upgrade(database_url, "core", "0006")
    assert revision(database_url, "core") == "0006"
    assert snapshot(database_url, tables) == before, "every old column of every row is kept"
    upgrade(database_url, "core")

    engine = create_engine(database_url)
    sessions = session_factory(engine)
    admin = AdminService(sessions, KeyValidator(sessions))
    try:
        assert (await admin.get_project(PROJECT)).closed_at is None
        await admin.create_key(PROJECT, "new")
        _, revoked = await admin.close_project(PROJECT)
        assert revoked == 2
        with pytest.raises(ProjectClosed):
            await admin.create_key(PROJECT, "after")
    finally:
        await engine.dispose()
