"""Each store's head is known without Alembic, and a start on a store at head never imports it."""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

from tests.stores import MIGRATIONS, build, revision

ROOT = pathlib.Path(__file__).resolve().parents[2]

# What each component runs at start-up, in a fresh interpreter (this one has Alembic loaded).
START = {
    "core": """
import asyncio, sys
from router_core.db import create_engine
from router_core.migrations import prepare_engine

async def main():
    engine = create_engine(sys.argv[1])
    try:
        await prepare_engine(engine)
    finally:
        await engine.dispose()

asyncio.run(main())
print("alembic" in sys.modules)
""",
    "account": """
import sys
from account.migrations import prepare_engine
from account.store.db import make_engine

engine = make_engine(sys.argv[1])
prepare_engine(engine)
engine.dispose()
print("alembic" in sys.modules)
""",
}


def start(store: str, url: str) -> bool:
    """Run the store's start-up check on url in a new process: whether it imported Alembic."""
    done = subprocess.run([sys.executable, "-c", START[store], url], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1] == "True"


@pytest.mark.parametrize("store", ["core", "account"])
def test_head_from_the_file_names_is_alembics_head(store):
    from alembic.script import ScriptDirectory

    migrations = MIGRATIONS[store]
    assert migrations.head() == ScriptDirectory.from_config(migrations.config()).get_current_head()


@pytest.mark.parametrize("store", ["core", "account"])
def test_a_store_at_head_starts_without_alembic(store, database_url):
    build(database_url, store)
    assert start(store, database_url) is False
    assert revision(database_url, store) == MIGRATIONS[store].head()


@pytest.mark.parametrize("store", ["core", "account"])
def test_a_new_sqlite_store_is_still_made_on_start(store, tmp_path):
    url = f"sqlite:///{tmp_path}/{store}.db"
    assert start(store, url) is True  # not at head: Alembic is loaded, and does the work
    assert revision(url, store) == MIGRATIONS[store].head()
