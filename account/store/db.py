"""Engines and sessions of the account store: SQLite by default, PostgreSQL by URL."""
from __future__ import annotations

import logging
import os
import pathlib

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)


def make_engine(url: str) -> Engine:
    """A sync engine; PostgreSQL URLs use psycopg (the account app is a WSGI app)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        return create_engine(parsed, pool_pre_ping=True)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_file(str(parsed.database))
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def _private_sqlite_file(path: str) -> None:
    """Create the database file (and a missing folder) for this user only, or tighten an older one.

    The store holds e-mails, sessions and key audits. SQLite gives its -wal, -shm and -journal
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
