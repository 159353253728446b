"""Both stores built through their migrations, at head or at any revision, for tests.

An upgrade test for a new revision: `build(url, "core", "0001")`, write rows as the code of
that revision did, `upgrade(url, "core")`, then check the rows (see tests/migrations/).
"""
from __future__ import annotations

import functools
import pathlib
import shutil
import tempfile
from types import ModuleType

import sqlalchemy as sa

from account import migrations as account_migrations
from account.store.models import Base as AccountBase
from router_core import migrations as core_migrations
from router_core.tables import Base as CoreBase

MIGRATIONS: dict[str, ModuleType] = {"core": core_migrations, "account": account_migrations}
METADATA: dict[str, sa.MetaData] = {"core": CoreBase.metadata, "account": AccountBase.metadata}


def sync_engine(url: str) -> sa.Engine:
    """A plain sync engine on a test store URL (PostgreSQL through psycopg)."""
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def build(url: str, store: str, revision: str = "head") -> None:
    """Migrate the (empty) store at url to revision; at head, SQLite files are copied from a template."""
    if revision == "head" and url.startswith("sqlite:///"):
        target = pathlib.Path(url.removeprefix("sqlite:///"))
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(_template(store), target)
        return
    upgrade(url, store, revision)


def upgrade(url: str, store: str, revision: str = "head") -> None:
    """What `onekey db upgrade` does to one store."""
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            MIGRATIONS[store].upgrade(conn, revision)
            conn.commit()
    finally:
        engine.dispose()


def revision(url: str, store: str) -> str | None:
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return MIGRATIONS[store].status(conn).revision
    finally:
        engine.dispose()


@functools.cache
def _template(store: str) -> pathlib.Path:
    """One SQLite file per store and test process, migrated to head once."""
    path = pathlib.Path(tempfile.mkdtemp(prefix=f"onekey-{store}-")) / "template.db"
    upgrade(f"sqlite:///{path}", store)
    return path
