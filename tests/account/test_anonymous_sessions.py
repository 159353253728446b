"""No session row for a visitor who is not signed in (issue 23, finding 4): what an anonymous
session holds (the CSRF token, a flash, an OAuth state) travels in a signed cookie, and a row is
written only once someone signs in. A session ended on the server never comes back."""
from __future__ import annotations

import secrets

from flask import request
from sqlalchemy import delete, func, select

from account.store.models import WebSession
from tests.account.conftest import Browser

PUBLIC = ("/login", "/", "/models", "/docs", "/login/email/not-a-real-link")


def store(app):
    return app.extensions["onekey"].sessions()


def rows(app) -> int:
    with store(app) as db:
        return db.scalar(select(func.count()).select_from(WebSession))


def test_a_thousand_anonymous_gets_leave_the_session_store_as_it_was(app, smtp):
    Browser(app, smtp).sign_in_by_email("someone@example.com")  # a store that holds a row already
    before = rows(app)
    for i in range(1000):
        response = app.test_client().get(PUBLIC[i % len(PUBLIC)])  # a new client: no cookie
        assert response.status_code in (200, 302, 400, 404), response.status_code
    keeper = app.test_client()  # one visitor who keeps its cookie and reloads the sign-in form
    for _ in range(20):
        assert keeper.get("/login").status_code == 200
    assert rows(app) == before


def test_an_anonymous_visitor_still_gets_csrf_protected_forms_and_signs_in(app, smtp):
    before = rows(app)
    browser = Browser(app, smtp)
    link = browser.request_link("anon-then-signed@example.com")  # a form with its CSRF token
    assert rows(app) == before, "asking for a link writes no session row"
    refused = browser.client.post(link, data={"csrf_token": "forged"})
    assert refused.status_code == 400
    assert browser.submit(link, link).status_code == 302
    assert browser.get("/projects").status_code == 200
    assert rows(app) == before + 1, "signing in writes the one row"
    assert browser.submit("/projects", "/logout").status_code == 302
    assert browser.get("/projects").status_code == 302 and rows(app) == before


def test_a_tampered_anonymous_cookie_is_a_new_session(app):
    client = app.test_client()
    client.get("/login")
    name = app.config["SESSION_COOKIE_NAME"]
    value = client.get_cookie(name).value
    tampered = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    for cookie in (tampered, "anon.bm90IHNpZ25lZA", "anon."):
        with app.test_request_context("/login", headers={"Cookie": f"{name}={cookie}"}):
            assert dict(app.session_interface.open_session(app, request)) == {}
    assert client.get("/login").status_code == 200


def test_a_session_ended_on_the_server_is_not_written_back_by_a_request_in_flight(app, smtp):
    browser = Browser(app, smtp)
    browser.sign_in_by_email("ended@example.com")
    name = app.config["SESSION_COOKIE_NAME"]
    sid = browser.client.get_cookie(name).value
    iface = app.session_interface
    with app.test_request_context("/projects", headers={"Cookie": f"{name}={sid}"}):
        opened = iface.open_session(app, request)
        assert opened.get("_user_id")
        with store(app) as db, db.begin():  # "sign out everywhere" from another browser meanwhile
            db.execute(delete(WebSession))
        opened["_flashes"] = [("message", "hello")]
        response = app.response_class()
        iface.save_session(app, opened, response)
    assert rows(app) == 0, "the ended session was not written back"
    assert browser.get("/projects").status_code == 302


def test_an_anonymous_session_too_large_for_a_cookie_is_not_kept_and_writes_no_row(app):
    before = rows(app)
    with app.test_request_context("/login"):
        opened = app.session_interface.open_session(app, request)
        opened["_flashes"] = [("message", secrets.token_hex(2500))]  # 5000 characters that do not compress
        response = app.response_class()
        app.session_interface.save_session(app, opened, response)
    assert rows(app) == before and "Set-Cookie" not in response.headers
