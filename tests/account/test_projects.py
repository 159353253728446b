"""Projects and keys through the account app, against the real core; users see only their own."""
from __future__ import annotations

import re
import time

import openai
import pytest
from sqlalchemy import text

from account.store.models import Base
from onekey.v1 import admin_pb2, metering_pb2
from tests.account.conftest import Browser
from tests.stores import build


@pytest.fixture
def alice(browser):
    browser.sign_in_by_email("alice@example.com")
    return browser


@pytest.fixture
def bob(app, smtp):
    b = Browser(app, smtp)
    b.sign_in_by_email("bob@example.com")
    return b


def core_project(core, project_id):
    return core.admin.GetProject(admin_pb2.GetProjectRequest(project_id=project_id), metadata=core.metadata)


def core_keys(core, project_id):
    return core.admin.ListKeys(admin_pb2.ListKeysRequest(project_id=project_id), metadata=core.metadata).keys


def create_key(browser, project_id, name="laptop") -> tuple[str, str]:
    page = f"/projects/{project_id}"
    response = browser.submit(page, f"{page}/keys", {"name": name})
    assert response.status_code == 302, "POST-redirect-GET"
    shown = browser.get(response.headers["Location"])
    assert shown.status_code == 200
    body = shown.get_data(as_text=True)
    secret = re.search(r'<code id="secret">([^<]+)</code>', body).group(1)
    return secret, body


def test_create_and_rename_projects(alice, core):
    [first] = alice.project_ids()
    response = alice.submit("/projects", "/projects", {"name": "Side project"})
    assert response.status_code == 302
    second = response.headers["Location"].rsplit("/", 1)[1]
    assert set(alice.project_ids()) == {first, second}
    assert core_project(core, second).name == "Side project"
    assert core_project(core, second).free_requests == 0, "only a user's first project gets free requests"
    assert core_project(core, first).free_requests == 20

    renamed = alice.submit(f"/projects/{second}", f"/projects/{second}/rename", {"name": "Main app"})
    assert renamed.status_code == 302
    assert core_project(core, second).name == "Main app"
    assert "Main app" in alice.get("/projects").get_data(as_text=True)


def test_project_name_is_required(alice):
    response = alice.submit("/projects", "/projects", {"name": ""})
    assert response.status_code == 400
    assert len(alice.project_ids()) == 1


def test_key_is_shown_once_listed_by_prefix_and_works_until_revoked(alice, core, app):
    [project_id] = alice.project_ids()
    secret, body = create_key(alice, project_id)
    assert "shown only this once" in body
    assert 'data-copy="secret"' in body
    [key] = core_keys(core, project_id)
    assert secret.startswith(key.prefix) and key.name == "laptop"

    listing = alice.get(f"/projects/{project_id}").get_data(as_text=True)
    assert f"{key.prefix}…" in listing and "never" in listing and secret not in listing

    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    reply = client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content

    confirm = alice.get(f"/projects/{project_id}/keys/{key.id}/revoke")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.get_data(as_text=True)
    assert not core_keys(core, project_id)[0].HasField("revoked_at"), "the confirm page alone revokes nothing"
    done = alice.submit(f"/projects/{project_id}/keys/{key.id}/revoke", f"/projects/{project_id}/keys/{key.id}/revoke")
    assert done.status_code == 302
    assert core_keys(core, project_id)[0].HasField("revoked_at")
    page = alice.get(f"/projects/{project_id}").get_data(as_text=True)
    assert "revoked" in page and "created" in page  # the key activity log

    import time
    deadline = time.monotonic() + 10
    while True:  # the core's key cache may hold the key for a moment
        try:
            client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.2)


def test_key_secret_is_never_stored_in_the_account_store(alice, app):
    [project_id] = alice.project_ids()
    secret, _ = create_key(alice, project_id)
    with app.extensions["onekey"].sessions() as db:
        for table in Base.metadata.sorted_tables:
            assert secret not in repr(db.execute(text(f"SELECT * FROM {table.name}")).all()), table.name


def test_another_users_project_is_404_everywhere_and_nothing_changes(alice, bob, core):
    [theirs] = alice.project_ids()
    secret, _ = create_key(alice, theirs)
    [key] = core_keys(core, theirs)
    [mine] = bob.project_ids()
    token = bob.csrf(f"/projects/{mine}")

    for path in (f"/projects/{theirs}", f"/projects/{theirs}/dashboard", f"/projects/{theirs}/keys/{key.id}/revoke"):
        response = bob.get(path)
        assert response.status_code == 404, path
        assert "not yours" in response.get_data(as_text=True)
    for path, data in ((f"/projects/{theirs}/rename", {"name": "pwned"}), (f"/projects/{theirs}/keys", {"name": "x"}),
                       (f"/projects/{theirs}/keys/{key.id}/revoke", {})):
        assert bob.client.post(path, data={"csrf_token": token, **data}).status_code == 404, path

    assert core_project(core, theirs).name == "My first project"
    assert [k.id for k in core_keys(core, theirs)] == [key.id]
    assert not core_keys(core, theirs)[0].HasField("revoked_at")


def test_revoking_a_key_of_another_project_through_own_project_is_refused(alice, bob, core):
    [theirs] = alice.project_ids()
    create_key(alice, theirs)
    [key] = core_keys(core, theirs)
    [mine] = bob.project_ids()
    path = f"/projects/{mine}/keys/{key.id}/revoke"
    assert bob.get(path).status_code == 404
    assert bob.submit(f"/projects/{mine}", path).status_code == 404
    assert not core_keys(core, theirs)[0].HasField("revoked_at")


def test_signed_out_visitors_are_sent_to_sign_in(app):
    response = app.test_client().get("/projects")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_first_project_is_made_later_when_the_core_was_down_at_sign_in(make_app, smtp, core):
    down = Browser(make_app(core="127.0.0.1:1", core_timeout=1.0), smtp)
    down.sign_in_by_email("patient@example.com")
    assert down.project_ids() == []
    up = Browser(make_app(), smtp)  # the same account store (one db file per test), the core back
    up.sign_in_by_email("patient@example.com")
    [project_id] = up.project_ids()
    balance = core.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id), metadata=core.metadata)
    assert balance.free_requests == 20


def test_the_whole_app_runs_on_sqlite_and_postgresql(make_app, smtp, database_url, core):
    url = database_url.replace("router.db", "account.db")
    build(url, "account")  # PostgreSQL is upgraded by the operator, not by the app
    browser = Browser(make_app(database_url=url), smtp)
    browser.sign_in_by_email("pg@example.com")
    [first] = browser.project_ids()
    assert browser.submit("/projects", "/projects", {"name": "Second"}).status_code == 302
    assert len(browser.project_ids()) == 2
    secret, _ = create_key(browser, first)
    assert [k.name for k in core_keys(core, first)] == ["laptop"]
    assert browser.submit("/projects", "/logout").status_code == 302
    assert browser.get("/projects").status_code == 302


def test_reloading_the_new_key_page_makes_no_second_key_and_no_second_showing(alice, core):
    [project_id] = alice.project_ids()
    page = f"/projects/{project_id}"
    created = alice.submit(page, f"{page}/keys", {"name": "ci"})
    assert created.status_code == 302
    new_key_page = created.headers["Location"]
    first = alice.get(new_key_page).get_data(as_text=True)
    secret = re.search(r'<code id="secret">([^<]+)</code>', first).group(1)
    again = alice.get(new_key_page)  # the browser's reload: a GET, never the POST again
    assert again.status_code == 200
    body = again.get_data(as_text=True)
    assert secret not in body and 'id="secret-gone"' in body and "No other key was made" in body
    assert [k.name for k in core_keys(core, project_id)] == ["ci"]


def test_two_keys_made_before_either_page_is_shown_each_show_their_secret_once(alice, core):
    [project_id] = alice.project_ids()
    page = f"/projects/{project_id}"
    first = alice.submit(page, f"{page}/keys", {"name": "tab one"}).headers["Location"]
    second = alice.submit(page, f"{page}/keys", {"name": "tab two"}).headers["Location"]
    shown = [re.search(r'<code id="secret">([^<]+)</code>', alice.get(url).get_data(as_text=True)).group(1)
             for url in (second, first)]
    assert len(set(shown)) == 2 and all(s.startswith("ok-") for s in shown)
    assert all('id="secret-gone"' in alice.get(url).get_data(as_text=True) for url in (first, second))


def test_key_names_are_unique_among_a_projects_active_keys(alice, core):
    [project_id] = alice.project_ids()
    create_key(alice, project_id, "ci")
    page = f"/projects/{project_id}"
    refused = alice.submit(page, f"{page}/keys", {"name": "ci"}, follow_redirects=True)
    assert "No key was created" in refused.get_data(as_text=True)
    assert "already exists" in refused.get_data(as_text=True)
    assert [k.name for k in core_keys(core, project_id)] == ["ci"]
    [key] = core_keys(core, project_id)
    alice.submit(f"{page}/keys/{key.id}/revoke", f"{page}/keys/{key.id}/revoke")
    create_key(alice, project_id, "ci")  # a revoked key's name is free again
    unnamed = [create_key(alice, project_id, "")[1] for _ in range(2)]
    assert sorted(k.name for k in core_keys(core, project_id)) == ["ci", "ci", "key 1", "key 2"]
    assert "Key “key 1”" in unnamed[0]


def test_revoked_keys_are_hidden_until_asked_for(alice, core):
    [project_id] = alice.project_ids()
    create_key(alice, project_id, "old")
    create_key(alice, project_id, "current")
    old = next(k for k in core_keys(core, project_id) if k.name == "old")
    page = f"/projects/{project_id}"
    alice.submit(f"{page}/keys/{old.id}/revoke", f"{page}/keys/{old.id}/revoke")
    listing = alice.get(page).get_data(as_text=True)
    keys_table = re.search(r'<table id="keys"[^>]*>(.*?)</table>', listing, re.S).group(1)
    assert "current" in keys_table and ">old<" not in keys_table and "Show 1 revoked key" in listing
    shown = alice.get(f"{page}?revoked=shown").get_data(as_text=True)
    assert ">old<" in re.search(r'<table id="keys"[^>]*>(.*?)</table>', shown, re.S).group(1)
    assert "Hide revoked keys" in shown


def test_a_revoked_keys_requests_are_told_it_was_revoked(alice, core):
    [project_id] = alice.project_ids()
    secret, _ = create_key(alice, project_id)
    [key] = core_keys(core, project_id)
    page = f"/projects/{project_id}"
    alice.submit(f"{page}/keys/{key.id}/revoke", f"{page}/keys/{key.id}/revoke")
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError as err:
            assert err.body["code"] == "api_key_revoked"
            assert "was revoked on" in err.body["message"] and "Incorrect API key" not in err.body["message"]
            break
        assert time.monotonic() < deadline, "a revoked key kept working"
        time.sleep(0.2)
    with pytest.raises(openai.AuthenticationError) as listing:
        client.models.list()
    assert listing.value.body["code"] == "api_key_revoked"
