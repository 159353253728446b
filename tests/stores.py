"""Both stores built through their migrations, at head or at any revision, for tests.

An upgrade test for a new revision N (see tests/migrations/test_release_upgrade.py):

    build(url, "core", "000<N-1>")                  # the store as the previous release left it
    fill(url, previous_tables, rows)                # rows as that release wrote them
    before = snapshot(url, previous_tables)
    upgrade(url, "core")                            # what `onekey db upgrade` does
    assert snapshot(url, previous_tables) == before # then use them through the real code
"""
from __future__ import annotations

import datetime as dt
import functools
import pathlib
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from types import ModuleType
from typing import Any

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


def fill(url: str, tables: Iterable[sa.Table], rows: Mapping[str, list[dict[str, Any]]]) -> None:
    """Insert rows (JSON-like: datetimes as ISO text, naive = UTC) into the tables, keeping sequences right."""
    engine = sync_engine(url)
    try:
        with engine.begin() as conn:
            for table in tables:
                batch = [{k: _typed(table.c[k], v) for k, v in row.items()} for row in rows.get(table.name, [])]
                if not batch:
                    continue
                conn.execute(table.insert(), batch)
                pk = list(table.primary_key.columns)
                if conn.dialect.name == "postgresql" and len(pk) == 1 and isinstance(pk[0].type, sa.Integer):
                    # explicit ids do not advance a SERIAL's sequence, as the release's own inserts did
                    conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table.name}', '{pk[0].name}'), "
                                         f"(SELECT max({pk[0].name}) FROM {table.name}))"))
    finally:
        engine.dispose()


def snapshot(url: str, tables: Iterable[sa.Table]) -> dict[str, list[tuple]]:
    """Every row of the tables (their columns only, in primary-key order), datetimes as UTC."""
    engine = sync_engine(url)
    try:
        with engine.connect() as conn:
            return {t.name: [tuple(_utc(v) for v in row)
                             for row in conn.execute(sa.select(*t.columns).order_by(*t.primary_key.columns))]
                    for t in tables}
    finally:
        engine.dispose()


def _typed(column: sa.Column, value: Any) -> Any:
    if isinstance(value, str) and sa.DateTime in (type(column.type), type(getattr(column.type, "impl", None))):
        return _utc(dt.datetime.fromisoformat(value))
    return value


def _utc(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    return value
