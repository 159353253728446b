"""/settings: sign-in methods, sessions, the export of one's own data, and account deletion."""
from __future__ import annotations

import json
import time

import openai
import pytest

from tests.account.conftest import Browser
from tests.account.test_projects import core_keys, create_key
from tests.fakes.oauth_provider import FakeUser


def test_settings_show_email_linked_identities_and_sessions(browser, google):
    google.next_user = FakeUser(subject="g-settings", email="linked@example.com")
    browser.oauth("google", google)
    page = browser.get("/settings")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "linked@example.com" in body and "Google (linked@example.com)" in body and "this browser" in body
    assert "continue with GitHub" in body, "how to link the provider not linked yet"
    assert "Sign out everywhere" in body and "Download my data" in body and "Delete my account" in body


def test_sign_out_other_sessions_and_everywhere(app, smtp):
    laptop, phone = Browser(app, smtp), Browser(app, smtp)
    laptop.sign_in_by_email("two@example.com")
    phone.sign_in_by_email("two@example.com")
    assert laptop.get("/settings").get_data(as_text=True).count("<tr><td>an unknown browser</td>") == 2
    laptop.submit("/settings", "/settings/sessions/others")
    assert laptop.get("/projects").status_code == 200, "this browser stays signed in"
    assert phone.get("/projects").status_code == 302, "the other session is over"
    phone.sign_in_by_email("two@example.com")
    out = laptop.submit("/settings", "/settings/sessions/all")
    assert out.status_code == 302 and "/login" in out.headers["Location"]
    assert laptop.get("/projects").status_code == 302 and phone.get("/projects").status_code == 302


def test_export_holds_the_users_own_data_and_nobody_elses(app, smtp, core):
    me, other = Browser(app, smtp), Browser(app, smtp)
    me.sign_in_by_email("me@example.com")
    other.sign_in_by_email("other@example.com")
    [mine] = me.project_ids()
    [theirs] = other.project_ids()
    secret, _ = create_key(me, mine, "my-key")
    create_key(other, theirs, "their-key")
    openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0).chat.completions.create(
        model="sandbox/echo", messages=[{"role": "user", "content": "private words"}])
    response = me.get("/settings/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    data = json.loads(text)
    assert data["user"]["email"] == "me@example.com"
    assert [p["id"] for p in data["projects"]] == [mine]
    assert [k["name"] for k in data["projects"][0]["keys"]] == ["my-key"]
    assert data["projects"][0]["free_requests"] == 20
    assert "other@example.com" not in text and theirs not in text and "their-key" not in text
    assert secret not in text and "private words" not in text


def test_deleting_the_account_says_what_happens_and_revokes_keys_within_5s(app, smtp, core):
    me = Browser(app, smtp)
    me.sign_in_by_email("leaving@example.com")
    [project_id] = me.project_ids()
    secret, _ = create_key(me, project_id, "k")
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
    confirm = me.get("/settings/delete").get_data(as_text=True)
    assert "every key" in confirm and "Unspent credit" in confirm and "$0.00" in confirm and "My first project" in confirm
    wrong = me.submit("/settings/delete", "/settings/delete", {"email": "someone@example.com"}, follow_redirects=True)
    assert "Nothing was deleted" in wrong.get_data(as_text=True)
    assert not core_keys(core, project_id)[0].HasField("revoked_at")

    deleted_at = time.monotonic()
    done = me.submit("/settings/delete", "/settings/delete", {"email": "leaving@example.com"})
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    assert core_keys(core, project_id)[0].HasField("revoked_at")
    while True:
        try:
            client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
        except openai.AuthenticationError as err:
            assert err.body["code"] == "api_key_revoked"
            break
        assert time.monotonic() - deleted_at < 5, "a key outlived its account by 5 s"
        time.sleep(0.1)
    assert me.get("/projects").status_code == 302, "signed out"
    again = Browser(app, smtp)
    again.sign_in_by_email("leaving@example.com")
    assert project_id not in again.project_ids(), "a new account starts afresh"


@pytest.mark.parametrize("path", ["/settings", "/settings/export", "/settings/delete"])
def test_settings_need_a_signed_in_user(app, path):
    assert app.test_client().get(path).status_code == 302


def test_export_agrees_with_settings_and_sessions_name_their_device(app, smtp):
    me = Browser(app, smtp)
    link = me.request_link("agree@example.com")
    firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0"
    me.client.environ_base["HTTP_USER_AGENT"] = firefox  # every request from that browser
    assert me.submit(link, link).status_code == 302
    data = json.loads(me.get("/settings/export").get_data(as_text=True))
    assert data["user"]["last_login_at"] is not None, "a user who signed in has a last sign-in"
    assert [m["provider"] for m in data["sign_in_methods"]] == ["email_link"]
    assert data["sign_in_methods"][0]["email"] == "agree@example.com"
    settings = me.get("/settings").get_data(as_text=True)
    assert "E-mail link to agree@example.com" in settings and "<td>Firefox on Windows</td>" in settings
