"""Engine and session factory for the routing store (SQLite by default, PostgreSQL by URL)."""
from __future__ import annotations

import logging
import os
import pathlib

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

logger = logging.getLogger(__name__)

COMMAND_TIMEOUT_S = 30.0  # a usage report over a busy month takes seconds, not this

_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}


def async_url(database_url: str) -> str:
    """The SQLAlchemy URL with an async driver (sqlite:/// -> sqlite+aiosqlite:///)."""
    url = make_url(database_url)
    driver = _ASYNC_DRIVERS.get(url.drivername)
    if driver is None and url.drivername.startswith("postgresql+"):
        driver = "postgresql+asyncpg"
    return url.set(drivername=driver).render_as_string(hide_password=False) if driver else database_url


def create_engine(database_url: str, timeout: float = 2.0) -> AsyncEngine:
    """An async engine; SQLite files get their folder created, WAL and a busy timeout.

    PostgreSQL: a connection attempt and a wait for a pooled connection end after `timeout`
    (a store that is down refuses at once or not at all), a statement after COMMAND_TIMEOUT_S
    (the backstop for a partition that holds a connection with no bytes moving); dead
    connections are found by a ping when taken from the pool, so the pool reconnects by itself.
    """
    url = make_url(async_url(database_url))
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            _private_sqlite_file(str(url.database))
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True, pool_timeout=timeout,
                               connect_args={"timeout": timeout, "command_timeout": COMMAND_TIMEOUT_S})


def session_factory(engine: AsyncEngine) -> async_sessionmaker:
    return async_sessionmaker(engine, expire_on_commit=False)


def _private_sqlite_file(path: str) -> None:
    """Create the database file (and a missing folder) for this user only, or tighten an older one.

    The store holds key hashes, balances and usage. SQLite gives its -wal, -shm and -journal
    files the mode of the database file, so they follow.
    """
    file = pathlib.Path(path)
    try:
        file.parent.mkdir(parents=True, mode=0o700)
        file.parent.chmod(0o700)  # mkdir's mode passes through the umask
    except FileExistsError:
        pass  # an existing folder is the operator's choice: leave its mode alone
    os.close(os.open(file, os.O_RDWR | os.O_CREAT, 0o600))
    for existing in (file, *(file.with_name(file.name + s) for s in ("-wal", "-shm", "-journal"))):
        try:
            if existing.stat().st_mode & 0o077:
                existing.chmod(0o600)
        except FileNotFoundError:
            pass
        except PermissionError:
            logger.warning("cannot make %s private (owned by another user)", existing)
