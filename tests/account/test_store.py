"""The account store's repositories, on SQLite and on PostgreSQL."""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from account.store.db import make_engine, session_factory
from account.store.models import utcnow
from account.store.repositories import (
    IdentityRepository, KeyAuditRepository, LoginTokenRepository, ProjectRepository, RateEventRepository,
    UserRepository, WebSessionRepository,
)
from tests.stores import build


@pytest.fixture
def sessions(database_url):
    url = database_url.replace("router.db", "account.db")
    build(url, "account")
    engine = make_engine(url)
    yield session_factory(engine)
    engine.dispose()


def test_users_identities_and_owned_projects(sessions):
    with sessions() as db, db.begin():
        ada = UserRepository(db).create("ada@example.com")
        bob = UserRepository(db).create("bob@example.com")
        IdentityRepository(db).link(ada, "google", "g-1", "ada@example.com")
        ProjectRepository(db).add("p-ada", ada.id, "Ada's")
        ProjectRepository(db).add("p-bob", bob.id, "Bob's")
    with sessions() as db:
        assert UserRepository(db).by_email("ada@example.com").id == ada.id
        assert IdentityRepository(db).find("google", "g-1").user.email == "ada@example.com"
        assert IdentityRepository(db).find("github", "g-1") is None
        projects = ProjectRepository(db)
        assert [p.id for p in projects.owned_by(ada.id)] == ["p-ada"]
        assert projects.get_owned("p-ada", ada.id).name == "Ada's"
        assert projects.get_owned("p-bob", ada.id) is None, "another user's project is not found"
        assert projects.get_owned("nope", ada.id) is None


def test_email_and_identity_are_unique(sessions):
    with sessions() as db, db.begin():
        user = UserRepository(db).create("one@example.com")
        IdentityRepository(db).link(user, "github", "7", "one@example.com")
    with pytest.raises(IntegrityError), sessions() as db, db.begin():
        UserRepository(db).create("one@example.com")
    with pytest.raises(IntegrityError), sessions() as db, db.begin():
        other = UserRepository(db).create("two@example.com")
        IdentityRepository(db).link(other, "github", "7", "two@example.com")


def test_login_token_is_consumed_once_and_not_after_expiry(sessions):
    now = utcnow()
    with sessions() as db, db.begin():
        tokens = LoginTokenRepository(db)
        tokens.add("a" * 64, "ada@example.com", now + dt.timedelta(minutes=10))
        tokens.add("b" * 64, "bob@example.com", now - dt.timedelta(seconds=1))
    with sessions() as db, db.begin():
        tokens = LoginTokenRepository(db)
        assert tokens.usable("a" * 64, now).email == "ada@example.com"
        assert tokens.usable("b" * 64, now) is None
        assert tokens.consume("b" * 64, now) is None
        assert tokens.consume("a" * 64, now) == "ada@example.com"
    with sessions() as db, db.begin():
        tokens = LoginTokenRepository(db)
        assert tokens.consume("a" * 64, now) is None
        assert tokens.usable("a" * 64, now) is None
        assert tokens.consume("c" * 64, now) is None


def test_rate_events_count_within_the_window(sessions):
    now = utcnow()
    with sessions() as db, db.begin():
        rates = RateEventRepository(db)
        rates.add("magic:ip:1.2.3.4", now - dt.timedelta(hours=2))
        rates.add("magic:ip:1.2.3.4", now - dt.timedelta(minutes=5))
        rates.add("magic:ip:1.2.3.4", now)
        rates.add("magic:ip:5.6.7.8", now)
    with sessions() as db, db.begin():
        rates = RateEventRepository(db)
        assert rates.count("magic:ip:1.2.3.4", now - dt.timedelta(hours=1)) == 2
        rates.purge(now - dt.timedelta(hours=1))
        assert rates.count("magic:ip:1.2.3.4", now - dt.timedelta(days=1)) == 2


def test_web_sessions_expire_and_are_deleted(sessions):
    now = utcnow()
    with sessions() as db, db.begin():
        repo = WebSessionRepository(db)
        repo.add("live", {"_user_id": "u1", "n": 1}, "u1", now + dt.timedelta(hours=1))
        repo.add("dead", {}, None, now - dt.timedelta(seconds=1))
        repo.add("other", {}, "u1", now + dt.timedelta(hours=1))
    with sessions() as db, db.begin():
        repo = WebSessionRepository(db)
        assert repo.get("live", now).data == {"_user_id": "u1", "n": 1}
        assert repo.get("dead", now) is None
        assert repo.update("live", {"n": 2}, "u1", now + dt.timedelta(hours=1))
        assert not repo.update("gone", {"n": 2}, "u1", now + dt.timedelta(hours=1)), "a gone row is not re-made"
        repo.purge(now)
    with sessions() as db, db.begin():
        repo = WebSessionRepository(db)
        assert repo.get("live", now).data == {"n": 2}
        repo.delete_for_user("u1")
    with sessions() as db:
        assert WebSessionRepository(db).get("live", now) is None
        assert WebSessionRepository(db).get("other", now) is None


def test_key_audit_lists_newest_first(sessions):
    with sessions() as db, db.begin():
        audit = KeyAuditRepository(db)
        audit.record("u1", "p1", "k1", "ok-abc", "create", "127.0.0.1")
        audit.record("u1", "p1", "k1", "ok-abc", "revoke", "127.0.0.1")
        audit.record("u1", "p2", "k2", "ok-def", "create", "127.0.0.1")
    with sessions() as db:
        assert [a.action for a in KeyAuditRepository(db).recent("p1")] == ["revoke", "create"]


def test_repositories_do_not_commit(sessions):
    with sessions() as db:
        UserRepository(db).create("ghost@example.com")
        db.rollback()
    with sessions() as db:
        assert UserRepository(db).by_email("ghost@example.com") is None


def test_a_sqlite_store_is_private_and_an_older_loose_one_is_tightened(tmp_path):
    from sqlalchemy import text

    from account.migrations import prepare_engine

    engine = make_engine(f"sqlite:///{tmp_path}/new/account.db")
    prepare_engine(engine)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    for name in ("account.db", "account.db-wal", "account.db-shm"):
        assert (tmp_path / "new" / name).stat().st_mode & 0o777 == 0o600, name
    engine.dispose()

    old = tmp_path / "old.db"
    old.touch()
    old.chmod(0o644)
    make_engine(f"sqlite:///{old}").dispose()
    assert old.stat().st_mode & 0o777 == 0o600
