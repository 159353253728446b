"""The routing store on SQLite and PostgreSQL: projects, hashed keys, idempotent credits."""
from __future__ import annotations

import pytest
from sqlalchemy import select, text

from router_core import tables
from router_core.admin import AdminService
from router_core.db import create_engine, session_factory
from router_core.errors import InvalidApiKey, NotFound
from router_core.keys import KeyValidator, hash_key
from tests.stores import build


@pytest.fixture
async def store(database_url):
    build(database_url, "core")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    keys = KeyValidator(sessions, ttl=60)
    yield AdminService(sessions, keys), keys, sessions
    await engine.dispose()


async def test_key_is_stored_only_as_hash_and_validates(store):
    admin, keys, sessions = store
    project = await admin.create_project("p", 5_000_000, 20)
    key, secret = await admin.create_key(project.id, "ci")
    assert secret.startswith("ok-") and key.prefix == secret[:10]
    async with sessions() as session:
        dump = "\n".join(str(tuple(r)) for r in (await session.execute(text("SELECT * FROM api_keys"))).all())
    assert secret not in dump and hash_key(secret) in dump
    identity = await keys.validate(secret)
    assert (identity.project_id, identity.key_id) == (project.id, key.id)
    with pytest.raises(InvalidApiKey):
        await keys.validate(secret + "x")
    with pytest.raises(InvalidApiKey):
        await keys.validate("")


async def test_revoke_takes_effect_on_this_replica_at_once(store):
    admin, keys, _ = store
    project = await admin.create_project("p", 0, 0)
    key, secret = await admin.create_key(project.id, "")
    await keys.validate(secret)
    await admin.revoke_key(key.id)
    with pytest.raises(InvalidApiKey):
        await keys.validate(secret)
    listed = await admin.list_keys(project.id)
    assert listed[0].revoked_at is not None


async def test_credit_is_idempotent_and_ledger_adds_up(store):
    admin, _, sessions = store
    project = await admin.create_project("p", 1_000_000, 0)
    for _ in range(3):
        p, applied = await admin.add_credit(project.id, 2_500_000, "stripe:evt_1", "stripe")
    assert p.balance_micro_usd == 3_500_000
    p, applied = await admin.add_credit(project.id, -500_000, "refund:evt_2", "refund")
    assert applied and p.balance_micro_usd == 3_000_000
    async with sessions() as session:
        entries = (await session.execute(select(tables.CreditEntry.amount_micro_usd)
                                         .where(tables.CreditEntry.project_id == project.id))).scalars().all()
    assert sum(entries) == 3_000_000


async def test_unknown_project_and_key_are_not_found(store):
    admin, _, _ = store
    with pytest.raises(NotFound):
        await admin.create_key("00000000-0000-0000-0000-000000000000", "")
    with pytest.raises(NotFound):
        await admin.revoke_key("nope")


async def test_free_requests_never_go_negative(store):
    admin, _, _ = store
    project = await admin.create_project("p", 0, 3)
    assert (await admin.add_free_requests(project.id, -10)).free_requests == 0
    assert (await admin.add_free_requests(project.id, 20)).free_requests == 20


async def test_a_sqlite_store_is_private_and_an_older_loose_one_is_tightened(tmp_path):
    from router_core.migrations import prepare_engine

    engine = create_engine(f"sqlite:///{tmp_path}/new/router.db")
    await prepare_engine(engine)
    assert (tmp_path / "new").stat().st_mode & 0o777 == 0o700
    for name in ("router.db", "router.db-wal", "router.db-shm"):
        assert (tmp_path / "new" / name).stat().st_mode & 0o777 == 0o600, name
    await engine.dispose()

    old = tmp_path / "old.db"
    old.touch()
    old.chmod(0o644)
    await create_engine(f"sqlite:///{old}").dispose()
    assert old.stat().st_mode & 0o777 == 0o600


async def test_requests_that_find_a_key_expired_at_once_read_the_store_once(database_url):
    import asyncio

    from sqlalchemy import event

    build(database_url, "core")
    engine = create_engine(database_url)
    sessions = session_factory(engine)
    keys = KeyValidator(sessions, ttl=60)
    admin = AdminService(sessions, keys)
    project = await admin.create_project("p", 0, 0)
    _, secret = await admin.create_key(project.id, "")
    reads = []
    event.listen(engine.sync_engine, "before_cursor_execute",
                 lambda conn, cursor, statement, *rest: reads.append(statement) if "api_keys" in statement else None)
    try:
        identities = await asyncio.gather(*(keys.validate(secret) for _ in range(32)))
        assert {i.project_id for i in identities} == {project.id}
        assert len([s for s in reads if s.lstrip().upper().startswith("SELECT")]) == 1
        # A cancelled caller leaves the read to the others, and the answer is remembered.
        keys.forget(hash_key(secret))
        first = asyncio.ensure_future(keys.validate(secret))
        second = asyncio.ensure_future(keys.validate(secret))
        await asyncio.sleep(0)
        first.cancel()
        assert (await second).project_id == project.id
        reads.clear()
        await keys.validate(secret)
        assert reads == []
    finally:
        await engine.dispose()


async def test_a_closed_project_takes_no_key_and_no_key_made_during_the_close_outlives_it(database_url, store):
    """Issue 23, finding 3, at the core: CloseProject and CreateKey never interleave, on SQLite and
    on PostgreSQL, however many key creations race the close."""
    import asyncio

    from router_core.errors import CoreError, ProjectClosed

    admin, keys, _ = store
    if database_url.startswith("postgresql"):  # another core replica on the same store
        other_engine = create_engine(database_url)
        other = AdminService(session_factory(other_engine), KeyValidator(session_factory(other_engine)))
    else:
        other_engine, other = None, admin
    try:
        for _ in range(3):
            project = await admin.create_project("p", 0, 0)
            await admin.create_key(project.id, "before")

            async def make(i: int) -> str | None:
                await asyncio.sleep(0.001 * i)
                try:
                    return (await other.create_key(project.id, ""))[1]
                except CoreError:  # closed, or the store's own refusal of a stale write
                    return None

            made = asyncio.gather(*(make(i) for i in range(30)))
            await asyncio.sleep(0.01)
            closed, revoked = await admin.close_project(project.id)
            secrets = [s for s in await made if s]
            assert closed.closed_at is not None and revoked >= 1
            assert all(k.revoked_at is not None for k in await admin.list_keys(project.id))
            for secret in secrets:
                with pytest.raises(InvalidApiKey):
                    await keys.validate(secret)
            with pytest.raises(ProjectClosed):
                await admin.create_key(project.id, "after")
            assert (await admin.close_project(project.id))[1] == 0, "closing again changes nothing"
    finally:
        if other_engine is not None:
            await other_engine.dispose()
