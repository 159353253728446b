"""A store OneKey 0.1.0 made and filled (before migrations) upgrades with every row, and its
keys, balances, sessions and identities keep working: on SQLite by starting, on PostgreSQL by
`onekey db upgrade` (the component refuses to start until then)."""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import time

import openai
import pytest
import sqlalchemy as sa

from account.migrations import SchemaNotReady as AccountNotReady
from account.store.db import make_engine, session_factory
from account.store.repositories import PurchaseRepository
from onekey.v1 import metering_pb2
from router_core import migrations as core_migrations
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.fakes.oauth_provider import FakeUser
from tests.migrations.release_0_1 import account_models, core_tables
from tests.stack import Stack, usage_events
from tests.stores import fill, revision, snapshot, sync_engine

FIXTURE = json.loads((pathlib.Path(__file__).parent / "release_0_1.json").read_text())
SECRETS = FIXTURE["secrets"]
RELEASE = {"core": core_tables.Base.metadata, "account": account_models.Base.metadata}


def release_store(url: str, store: str) -> dict[str, list[tuple]]:
    """The store as 0.1.0 left it: its create_all schema, no schema history, its rows. Returns them."""
    metadata = RELEASE[store]
    engine = sync_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    fill(url, metadata.sorted_tables, FIXTURE[store])
    rows = snapshot(url, metadata.sorted_tables)
    assert {t: len(r) for t, r in rows.items()} == {t: len(r) for t, r in FIXTURE[store].items()}
    assert revision(url, store) is None
    return rows


def test_a_release_routing_store_upgrades_and_its_keys_and_balances_still_work(database_url, loop_thread,
                                                                               fake_openai, onekey_db):
    before = release_store(database_url, "core")
    settings = CoreSettings(database_url=database_url, channels=(openai_channel(fake_openai),),
                            usage_flush_interval=0.05)
    if database_url.startswith("postgresql"):
        with pytest.raises(core_migrations.SchemaNotReady, match="predates schema migrations: run `onekey db upgrade`"):
            Stack(settings, loop=loop_thread)
        code, report, err = onekey_db("upgrade", "core", core_url=database_url)
        assert code == 0, err
        assert report["core"]["revision"] == core_migrations.head() and report["core"]["up_to_date"]
    stack = Stack(settings, loop=loop_thread)  # SQLite: adopted and upgraded on start
    try:
        assert revision(database_url, "core") == core_migrations.head()
        # Every row is there; the lease of 0.1.0's replica, not renewed since, comes back as any dead one.
        expected = without_dead_leases(before)
        deadline = time.monotonic() + 15
        while (now := snapshot(database_url, RELEASE["core"].sorted_tables)) != expected and \
                time.monotonic() < deadline:
            time.sleep(0.1)
        assert now == expected

        project = SECRETS["project_id"]
        old_balance = stack.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project),
                                                metadata=stack.metadata).balance_micro_usd
        assert old_balance == next(p for p in FIXTURE["core"]["projects"] if p["id"] == project)["balance_micro_usd"]
        client = openai.OpenAI(base_url=stack.base_url, api_key=SECRETS["api_key"], max_retries=0)
        reply = client.chat.completions.create(model="openai/gpt-4.1-mini",
                                               messages=[{"role": "user", "content": "still here?"}])
        assert reply.choices[0].message.content
        [old_response] = FIXTURE["core"]["response_owners"]
        assert client.responses.create(model="openai/gpt-4.1", input="and then",
                                       previous_response_id=old_response["response_id"]).output_text
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=stack.base_url, api_key=SECRETS["revoked_api_key"], max_retries=0) \
                .chat.completions.create(model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])

        old_events = sum(1 for e in FIXTURE["core"]["usage_events"] if e["project_id"] == project)
        events = usage_events(stack, project, old_events + 2)
        assert len(events) == old_events + 2
        credited, charged, balance = ledger(database_url, project)
        assert balance < old_balance  # the old balance paid for the new requests
        assert credited - charged == balance  # and the ledger still adds up to the micro-dollar
    finally:
        stack.stop()


def without_dead_leases(rows: dict[str, list[tuple]]) -> dict[str, list[tuple]]:
    """The rows once every lease is reclaimed: leases gone, each project's leased amount back to 0."""
    leased = [c.name for c in core_tables.Project.__table__.columns].index("leased_micro_usd")
    projects = [(*p[:leased], 0, *p[leased + 1:]) for p in rows["projects"]]
    return {**rows, "credit_leases": [], "projects": projects}


def ledger(url: str, project_id: str) -> tuple[int, int, int]:
    engine = sync_engine(url)
    with engine.connect() as conn:
        one = lambda sql: conn.execute(sa.text(sql), {"p": project_id}).scalar_one()  # noqa: E731
        result = (one("SELECT COALESCE(SUM(amount_micro_usd), 0) FROM credit_ledger WHERE project_id = :p"),
                  one("SELECT COALESCE(SUM(charged_micro_usd), 0) FROM usage_events WHERE project_id = :p"),
                  one("SELECT balance_micro_usd FROM projects WHERE id = :p"))
    engine.dispose()
    return result


def test_a_release_account_store_upgrades_and_its_sessions_and_sign_ins_still_work(database_url, make_app, smtp,
                                                                                   google, onekey_db):
    url = database_url.replace("router.db", "account.db")
    before = release_store(url, "account")
    if url.startswith("postgresql"):
        with pytest.raises(AccountNotReady, match="run `onekey db upgrade`"):
            make_app(database_url=url)
        code, report, err = onekey_db("upgrade", "account", account_url=url)
        assert code == 0, err
        assert report["account"]["up_to_date"]
    app = make_app(database_url=url)  # SQLite: adopted and upgraded on start
    assert snapshot(url, RELEASE["account"].sorted_tables) == before

    # A browser signed in under 0.1.0 is still signed in (the fixture is older than a session lives).
    engine = sync_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE web_sessions SET expires_at = :t"),
                     {"t": dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)})
    engine.dispose()
    client = app.test_client()
    client.environ_base["HTTP_USER_AGENT"] = SECRETS["user_agent"]
    client.set_cookie("onekey-session", SECRETS["session_id"])
    page = client.get("/projects")
    assert page.status_code == 200 and SECRETS["project_id"] in page.get_data(as_text=True)

    # An old user signing in again, by email or through the linked Google account, is the same user.
    from tests.account.conftest import Browser

    users = {u["email"]: u["id"] for u in FIXTURE["account"]["users"]}
    again = Browser(app, smtp)
    again.sign_in_by_email("ada@example.com")
    assert SECRETS["project_id"] in again.project_ids()
    google.next_user = FakeUser(subject="g-100", email="grace@example.com")
    Browser(app, smtp).oauth("google", google)
    with session_factory(make_engine(url))() as db:
        assert dict(db.execute(sa.text("SELECT email, id FROM users")).all()) == users
        purchase = PurchaseRepository(db).by_session("cs_release")
        assert (purchase.amount_cents, purchase.status) == (500, "paid")
