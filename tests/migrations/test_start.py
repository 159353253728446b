"""When the stores are upgraded: SQLite on start, PostgreSQL only by `onekey db upgrade`."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from account import migrations as account_migrations
from router_core import migrations as core_migrations
from router_core.settings import CoreSettings
from tests.migrations.release_0_1 import core_tables
from tests.stack import Stack
from tests.stores import build, revision, sync_engine


def test_a_new_sqlite_store_is_made_on_start_and_reported_current(tmp_path, loop_thread, onekey_db, make_app):
    url = f"sqlite:///{tmp_path}/router.db"
    code, report, _ = onekey_db("current", "core", core_url=url)
    assert code == 0 and report["core"]["revision"] is None and not report["core"]["has_tables"]
    Stack(CoreSettings(database_url=url), loop=loop_thread).stop()
    make_app(database_url=f"sqlite:///{tmp_path}/account.db")
    code, report, _ = onekey_db("current", "all", core_url=url, account_url=f"sqlite:///{tmp_path}/account.db")
    assert code == 0
    assert report["core"]["revision"] == core_migrations.head() and report["core"]["up_to_date"]
    assert report["account"]["revision"] == account_migrations.head() and report["account"]["up_to_date"]


@pytest.mark.postgres
def test_postgresql_is_upgraded_once_by_the_operator_never_by_a_replica(postgres_url, loop_thread, onekey_db,
                                                                        make_app, tmp_path):
    settings = CoreSettings(database_url=postgres_url)
    with pytest.raises(core_migrations.SchemaNotReady, match="empty: run `onekey db upgrade` once"):
        Stack(settings, loop=loop_thread)
    assert revision(postgres_url, "core") is None  # the refused core changed nothing
    code, report, _ = onekey_db("current", "core", core_url=postgres_url)
    assert code == 0 and report["core"] == {**report["core"], "revision": None, "up_to_date": False}
    code, report, err = onekey_db("upgrade", "core", core_url=postgres_url)
    assert code == 0, err
    assert report["core"]["revision"] == core_migrations.head()
    Stack(settings, loop=loop_thread).stop()
    code, report, _ = onekey_db("upgrade", "core", core_url=postgres_url)  # once more: nothing to do
    assert code == 0 and report["core"]["up_to_date"]


@pytest.mark.postgres
def test_onekey_core_refuses_a_postgresql_store_not_yet_upgraded_and_names_the_command(postgres_url, tmp_path):
    (tmp_path / "onekey.toml").write_text(f'[core]\nlisten = "127.0.0.1:0"\ndatabase_url = "{postgres_url}"\n')
    proc = subprocess.run([sys.executable, "-m", "onekey_cli", "core", "--config", str(tmp_path / "onekey.toml")],
                          env={**os.environ, "ONEKEY_SERVICE_TOKEN": "t"}, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert "onekey core: the routing store is empty: run `onekey db upgrade` once" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_store_from_a_newer_release_is_refused(database_url, loop_thread, onekey_db):
    build(database_url, "core")
    engine = sync_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(core_migrations.SchemaNotReady, match="revision 9999, which this release does not know"):
        Stack(CoreSettings(database_url=database_url), loop=loop_thread)
    code, _, err = onekey_db("upgrade", "core", core_url=database_url)
    assert code == 1 and "revision 9999, which this release does not know" in err


def test_tables_without_history_that_are_not_revision_one_are_never_stamped(database_url, loop_thread, onekey_db):
    engine = sync_engine(database_url)
    core_tables.Base.metadata.create_all(engine)
    with engine.begin() as conn:  # a store some other way: one column short of 0.1.0's
        conn.execute(sa.text("ALTER TABLE response_owners DROP COLUMN channel"))
    engine.dispose()
    refusal = ("predates schema migrations: run `onekey db upgrade`" if database_url.startswith("postgresql")
               else r"not those of revision 0001 \(differing: response_owners\)")
    with pytest.raises(core_migrations.SchemaNotReady, match=refusal):
        Stack(CoreSettings(database_url=database_url), loop=loop_thread)
    code, _, err = onekey_db("upgrade", "core", core_url=database_url)
    assert code == 1 and "(differing: response_owners): it cannot be upgraded safely" in err
    assert revision(database_url, "core") is None
