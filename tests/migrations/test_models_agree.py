"""The migrations and the SQLAlchemy models describe the same schema, on SQLite and PostgreSQL."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from tests.stores import METADATA, build, sync_engine


@pytest.mark.parametrize("store", ["core", "account"])
def test_a_store_upgraded_to_head_matches_its_models(database_url, store):
    url = database_url.replace("router.db", f"{store}.db")
    build(url, store)
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
            diff = compare_metadata(context, METADATA[store])
    finally:
        engine.dispose()
    assert diff == [], f"the {store} models differ from its migrations: write a new revision\n{diff}"
