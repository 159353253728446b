"""Engines and sessions of the account store: SQLite by default, PostgreSQL by URL."""
from __future__ import annotations

import logging
import math
import os
import pathlib

import psycopg
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

logger = logging.getLogger(__name__)


def make_engine(url: str, timeout: float | None = None) -> Engine:
    """A sync engine; PostgreSQL URLs use psycopg (the account app is a WSGI app).

    With a timeout (the app's), no page waits on PostgreSQL for longer than about twice it:
    connecting, each answer and a free pooled connection are each bounded by it. Without one (a
    migration, which may run long), only the operating system bounds a connection.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
        if timeout is None:
            return create_engine(parsed, pool_pre_ping=True)
        # libpq counts connect_timeout in whole seconds, and at least 2.
        engine = create_engine(parsed, pool_pre_ping=True, pool_timeout=timeout,
                               connect_args={"connect_timeout": max(2, math.ceil(timeout))})
        event.listen(engine, "do_connect", _bounded_connect(timeout))
        return engine
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_sqlite_file(str(parsed.database))
        engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed)


class _BoundedConnection(psycopg.Connection):
    """A psycopg connection that waits at most `answer_timeout` s for any one answer.

    A partition where the server's host still holds the connection moves no bytes and resets
    nothing, so neither TCP nor PostgreSQL's own statement_timeout (which runs on the server)
    ends the wait. The connection is then in an unknown state: it is closed, and SQLAlchemy,
    seeing it closed, drops it from the pool.
    """

    answer_timeout: float | None = None

    def wait(self, gen, interval=0.1, timeout=None):  # type: ignore[override]
        try:
            return super().wait(gen, interval, timeout if timeout is not None else self.answer_timeout)
        except psycopg.errors._WaitTimeout:
            self.pgconn.finish()
            raise psycopg.OperationalError(
                f"the account store did not answer within {self.answer_timeout:g} s") from None


def _bounded_connect(timeout: float):
    def connect(_dialect, _record, cargs, cparams) -> psycopg.Connection:
        conn = _BoundedConnection.connect(*cargs, **cparams)
        conn.answer_timeout = timeout
        return conn

    return connect


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
