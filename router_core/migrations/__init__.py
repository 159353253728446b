"""The routing store's schema history (Alembic; the account store keeps its own).

On start the core brings a SQLite store up to date itself; a PostgreSQL store is upgraded once
per deployment with `onekey db upgrade`, and a core finding it behind refuses to start. A store
made by `create_all` before migrations existed is adopted as revision one when its tables match.

A schema change is a new revision next to the changed `router_core/tables.py`:

    python scripts/new_revision.py core "add projects.kind"

then an upgrade test in tests/migrations/ (see tests/migrations/stores.py).
"""
from __future__ import annotations

import pathlib
from dataclasses import dataclass

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

HERE = pathlib.Path(__file__).parent
BASELINE = "0001"  # the schema `create_all` made before migrations existed
STORE = "routing store"
UPGRADE_COMMAND = "onekey db upgrade"
LOCK_ID = 0x6f6b_636f7265  # PostgreSQL advisory lock held while upgrading


class SchemaNotReady(RuntimeError):
    """The store's schema is not the one this release needs; the message says what to run."""


@dataclass(frozen=True)
class Status:
    revision: str | None  # None: no schema history (empty, or made before migrations)
    head: str
    has_tables: bool

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


def config(connection: sa.Connection | None = None) -> Config:
    """An Alembic config on this package's scripts; env.py runs on the given connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    return ScriptDirectory.from_config(config()).get_current_head()


def status(connection: sa.Connection) -> Status:
    tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    return Status(MigrationContext.configure(connection).get_current_revision(), head(), bool(tables))


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Bring the store to revision, adopting a pre-migration store as BASELINE first."""
    if connection.dialect.name == "postgresql":  # two operators at once: the second waits, then finds it done
        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({LOCK_ID})")
    state = status(connection)
    if state.revision is None and state.has_tables:
        _adopt(connection)
    _check_known(state)
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # batch migrations copy tables: foreign keys must not fire meanwhile
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
    try:
        command.upgrade(config(connection), revision)
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")


def prepare(connection: sa.Connection) -> None:
    """At start-up: upgrade SQLite; refuse a PostgreSQL store that is not at head."""
    state = status(connection)
    if state.up_to_date:
        return
    _check_known(state)
    if connection.dialect.name == "sqlite":
        upgrade(connection)
        return
    if state.revision is None and not state.has_tables:
        raise SchemaNotReady(f"the {STORE} is empty: run `{UPGRADE_COMMAND}` once to create its tables")
    if state.revision is None:
        raise SchemaNotReady(f"the {STORE} predates schema migrations: run `{UPGRADE_COMMAND}` once, "
                             "then start every replica")
    raise SchemaNotReady(f"the {STORE} is at revision {state.revision} and this release needs {state.head}: "
                         f"run `{UPGRADE_COMMAND}` once, then start every replica")


async def prepare_engine(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.run_sync(prepare)
        await conn.commit()


async def run(database_url: str, *, apply: bool) -> Status:
    """`onekey db upgrade` (apply) or `onekey db current` on the store at database_url."""
    from router_core.db import create_engine

    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            if apply:
                await conn.run_sync(upgrade)
                await conn.commit()
            return await conn.run_sync(status)
    finally:
        await engine.dispose()


def _check_known(state: Status) -> None:
    if state.revision is None:
        return
    try:
        ScriptDirectory.from_config(config()).get_revision(state.revision)
    except CommandError:
        raise SchemaNotReady(f"the {STORE} is at revision {state.revision}, which this release does not know "
                             "(a newer release upgraded it): run that release or a newer one") from None


def _shape(connection: sa.Connection) -> dict[str, set[str]]:
    inspector = sa.inspect(connection)
    return {t: {c["name"] for c in inspector.get_columns(t)}
            for t in inspector.get_table_names() if t != "alembic_version"}


def _adopt(connection: sa.Connection) -> None:
    """Stamp a store made by `create_all` as BASELINE, if its tables and columns are BASELINE's."""
    scratch = sa.create_engine("sqlite://")
    with scratch.begin() as conn:
        command.upgrade(config(conn), BASELINE)
        expected = _shape(conn)
    scratch.dispose()
    found = _shape(connection)
    if found != expected:
        differ = sorted(t for t in expected.keys() | found.keys() if expected.get(t) != found.get(t))
        raise SchemaNotReady(f"the {STORE} has tables but no schema history, and they are not those of "
                             f"revision {BASELINE} (differing: {', '.join(differ)}): it cannot be upgraded safely")
    command.stamp(config(connection), BASELINE)
