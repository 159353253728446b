"""The routing store's schema history (Alembic; the account store keeps its own).

On start the core brings a SQLite store up to date itself; a PostgreSQL store is upgraded once
per deployment with `onekey db upgrade`, and a core finding it behind refuses to start. A store
made by `create_all` before migrations existed is adopted as revision one when its tables match.
A store already at head is recognised by plain SQL, so the usual start never imports Alembic.

A schema change is a new revision next to the changed `router_core/tables.py`:

    python scripts/new_revision.py core "add projects.kind"

then an upgrade test in tests/migrations/ (see tests/migrations/stores.py).
"""
from __future__ import annotations

import pathlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from alembic.config import Config

HERE = pathlib.Path(__file__).parent
VERSIONS = HERE / "versions"
_REVISION_FILE = re.compile(r"^(\d{4})_\w+\.py$")
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
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    cfg.attributes["connection"] = connection
    return cfg


def head() -> str:
    """The newest revision, read from the versions' file names (0001_initial.py, ...).

    Revisions are numbered one after the other (scripts/new_revision.py), so the highest number is
    Alembic's head; tests/migrations checks that they agree. Alembic itself (about 11 MiB) is
    imported only when a store must be upgraded or inspected, not by every start-up.
    """
    return max(m.group(1) for m in map(_REVISION_FILE.match, (f.name for f in VERSIONS.iterdir())) if m)


def status(connection: sa.Connection) -> Status:
    from alembic.runtime.migration import MigrationContext

    tables = set(sa.inspect(connection).get_table_names()) - {"alembic_version"}
    return Status(MigrationContext.configure(connection).get_current_revision(), head(), bool(tables))


def stamped(connection: sa.Connection) -> str | None:
    """The revision alembic_version holds, by plain SQL (None: no such table, or not one row)."""
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def upgrade(connection: sa.Connection, revision: str = "head") -> None:
    """Bring the store to revision, adopting a pre-migration store as BASELINE first."""
    from alembic import command

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
    if stamped(connection) == head():
        return  # the usual start: nothing to do, and no Alembic loaded to find that out
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
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

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
    from alembic import command

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
