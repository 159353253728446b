"""Sign-in: magic links over real SMTP, Google (OIDC) and GitHub against fake providers on
loopback, sessions, CSRF."""
from __future__ import annotations

import datetime as dt
import re
import time

import pytest
from sqlalchemy import select, text, update

from account.store.models import LoginToken, OAuthIdentity, User, WebSession
from onekey.v1 import metering_pb2
from tests.fakes.oauth_provider import FakeUser


def store(app):
    return app.extensions["onekey"].sessions()


def signed_in(browser) -> bool:
    return browser.get("/projects").status_code == 200


def balance(core, project_id: str):
    return core.metering.GetBalance(metering_pb2.GetBalanceRequest(project_id=project_id), metadata=core.metadata)


# -- magic links ----------------------------------------------------------------------------

def test_magic_link_signs_in_and_first_sign_in_makes_a_project_with_20_free_requests(browser, smtp, core, app):
    link = browser.request_link("Ada@Example.com")
    message = smtp.sent_to("ada@example.com")[-1]
    assert message["Subject"] == "Your OneKey sign-in link"
    assert "10 minutes" in message.get_content()

    confirm = browser.get(link)
    assert confirm.status_code == 200 and "Sign in as ada@example.com?" in confirm.get_data(as_text=True)
    assert not signed_in(browser), "opening the link (GET) must not sign in: mail scanners prefetch links"

    done = browser.submit(link, link)
    assert done.status_code == 302
    assert signed_in(browser)
    [project_id] = browser.project_ids()
    assert balance(core, project_id).free_requests == 20
    with store(app) as db:
        assert db.scalar(select(User.email)) == "ada@example.com"


def test_magic_link_works_once(browser, app):
    link = browser.request_link("once@example.com")
    assert browser.submit(link, link).status_code == 302
    other = type(browser)(app, browser.smtp)
    again = other.submit("/login", link)
    assert again.status_code == 400 and "expired or was already used" in again.get_data(as_text=True)
    assert "expired or was already used" in other.get(link).get_data(as_text=True)
    assert not signed_in(other)


def test_expired_magic_link_is_refused_and_changes_nothing(browser, app):
    link = browser.request_link("late@example.com")
    with store(app) as db, db.begin():
        db.execute(update(LoginToken).values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    response = browser.submit("/login", link)
    assert response.status_code == 400 and "expired" in response.get_data(as_text=True)
    assert not signed_in(browser)
    with store(app) as db:
        assert db.scalar(select(User).where(User.email == "late@example.com")) is None
        assert db.scalar(select(LoginToken.used_at)) is None


def test_link_token_is_stored_only_as_a_hash(browser, app):
    link = browser.request_link("hash@example.com")
    token = link.rsplit("/", 1)[1]
    with store(app) as db:
        dump = repr(db.execute(text("SELECT * FROM login_tokens")).all())
    assert token not in dump
    assert re.search(r"'[0-9a-f]{64}'", dump)


def test_same_answer_whether_or_not_the_email_is_known(browser, app):
    browser.sign_in_by_email("known@example.com")
    stranger = type(browser)(app, browser.smtp)

    def answer(email):
        body = stranger.submit("/login", "/login/email", {"email": email}).get_data(as_text=True)
        return re.sub(r'value="[^"]+"', "", body).replace(email, "EMAIL")  # the page repeats the address typed

    assert answer("known@example.com") == answer("unknown@example.com")


def ask(browser, email: str, ip: str):
    """POST the sign-in form for email as a browser at ip would."""
    return browser.submit("/login", "/login/email", {"email": email}, environ_base={"REMOTE_ADDR": ip})


def link_in(message) -> str:
    return re.search(r"http://localhost(/login/email/[A-Za-z0-9_\-]+)", message.get_content()).group(1)


def test_a_requester_asking_too_often_for_one_address_is_refused_alone(make_app, smtp):
    from tests.account.conftest import Browser

    app = make_app(magic_link_per_email_ip=2)
    browser = Browser(app, smtp)
    for n in (1, 2):
        assert ask(browser, "busy@example.com", "203.0.113.9").status_code == 200
        smtp.wait_for("busy@example.com", n)
    refused = ask(browser, "busy@example.com", "203.0.113.9")
    assert refused.status_code == 429 and "Too many" in refused.get_data(as_text=True)
    assert len(smtp.sent_to("busy@example.com")) == 2
    browser.request_link("calm@example.com")  # another address is not held back
    # The same address from another requester is not held back either (IPv6: counted per /64).
    assert ask(browser, "busy@example.com", "2001:db8:1:2::5").status_code == 200
    smtp.wait_for("busy@example.com", 3)
    assert ask(browser, "busy@example.com", "2001:db8:1:2::6").status_code == 200
    assert ask(browser, "busy@example.com", "2001:db8:1:2:ffff::7").status_code == 429


def test_a_stranger_flooding_an_address_cannot_keep_its_owner_out(make_app, smtp, app):
    from tests.account.conftest import Browser

    app = make_app(magic_link_per_email=4, magic_link_per_email_ip=3)
    owner_email = "owner-flooded@example.com"
    stranger = Browser(app, smtp)
    answers = [ask(stranger, owner_email, ip).status_code for ip in ["203.0.113.9"] * 4 + ["198.51.100.7"] * 3]
    assert answers == [200, 200, 200, 429, 200, 200, 200]  # the sign-in page refuses only the stranger
    smtp.wait_for(owner_email, 4)
    assert len(smtp.sent_to(owner_email)) == 4, "the mailbox got no more than the per-address cap"

    owner = Browser(app, smtp)
    page = ask(owner, owner_email, "192.0.2.10")
    assert page.status_code == 200 and "Check your email" in page.get_data(as_text=True)
    assert len(smtp.sent_to(owner_email)) == 4  # still capped: the links already sent work
    newest = link_in(smtp.sent_to(owner_email)[-1])
    assert owner.submit(newest, newest).status_code == 302 and signed_in(owner)


def test_when_every_link_sent_has_expired_the_owner_gets_a_new_one_despite_the_cap(make_app, smtp):
    from tests.account.conftest import Browser

    app = make_app(magic_link_per_email=2)
    owner_email = "owner-expired@example.com"
    stranger = Browser(app, smtp)
    for ip in ("203.0.113.20", "203.0.113.21"):
        assert ask(stranger, owner_email, ip).status_code == 200
    smtp.wait_for(owner_email, 2)
    with store(app) as db, db.begin():
        db.execute(update(LoginToken).where(LoginToken.email == owner_email)
                   .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    owner = Browser(app, smtp)
    assert ask(owner, owner_email, "192.0.2.11").status_code == 200
    fresh = link_in(smtp.wait_for(owner_email, 3))
    assert owner.submit(fresh, fresh).status_code == 302 and signed_in(owner)
    # Capped again while that link lived; now used, the next ask gets a mail of its own.
    assert ask(stranger, owner_email, "203.0.113.22").status_code == 200
    smtp.wait_for(owner_email, 4)


def test_signing_in_ends_every_other_link_of_the_address(browser, app):
    older = browser.request_link("two-links@example.com")
    newer = browser.request_link("two-links@example.com")
    assert browser.submit(newer, newer).status_code == 302 and signed_in(browser)
    other = type(browser)(app, browser.smtp)
    refused = other.submit("/login", older)
    assert refused.status_code == 400 and "expired or was already used" in refused.get_data(as_text=True)
    assert not signed_in(other)


def test_signing_in_with_oauth_ends_the_outstanding_links_of_the_address(browser, google, app):
    browser.sign_in_by_email("both-ways@example.com")
    browser.submit("/projects", "/logout")
    pending = browser.request_link("both-ways@example.com")
    google.next_user = FakeUser(subject="g-both", email="both-ways@example.com", email_verified=True)
    assert browser.oauth("google", google).status_code == 302 and signed_in(browser)
    other = type(browser)(app, browser.smtp)
    assert other.submit("/login", pending).status_code == 400 and not signed_in(other)


def test_magic_links_are_rate_limited_per_ip(make_app, smtp):
    from tests.account.conftest import Browser

    browser = Browser(make_app(magic_link_per_ip=3), smtp)
    for i in range(3):
        browser.request_link(f"ip{i}@example.com")
    refused = browser.submit("/login", "/login/email", {"email": "ip9@example.com"})
    assert refused.status_code == 429
    assert smtp.sent_to("ip9@example.com") == []
    other_ip = browser.submit("/login", "/login/email", {"email": "ip9@example.com"},
                              environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert other_ip.status_code == 200


def test_bad_email_is_refused_without_mail(browser, smtp):
    response = browser.submit("/login", "/login/email", {"email": "not-an-email"})
    assert response.status_code == 400 and "not an email address" in response.get_data(as_text=True)
    assert smtp.sent_to("not-an-email") == []


# -- sessions -------------------------------------------------------------------------------

def cookie(browser, app) -> str | None:
    found = browser.client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return found.value if found else None


def test_sign_in_gives_a_new_session_id_and_the_old_one_dies(browser, app):
    link = browser.request_link("fixation@example.com")
    browser.get(link)
    before = cookie(browser, app)
    assert before
    browser.submit(link, link)
    after = cookie(browser, app)
    assert after and after != before
    attacker = app.test_client()
    attacker.set_cookie(app.config["SESSION_COOKIE_NAME"], before)
    assert attacker.get("/projects").status_code == 302  # the pre-sign-in id is worth nothing


def test_sign_out_ends_the_session_on_the_server(browser, app):
    browser.sign_in_by_email("bye@example.com")
    stolen = cookie(browser, app)
    assert browser.submit("/projects", "/logout").status_code == 302
    assert not signed_in(browser)
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], stolen)
    assert replay.get("/projects").status_code == 302
    with store(app) as db:
        assert db.scalar(select(WebSession).where(WebSession.user_id.is_not(None))) is None


def test_session_cookie_is_secure_httponly_samesite_and_headers_are_set(make_app):
    app = make_app(cookie_secure=True, public_url="https://account.example")
    response = app.test_client().get("/login", base_url="https://localhost")
    set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith("__Host-onekey-session=")
    for flag in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
        assert flag in set_cookie
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"


def test_session_store_holds_no_raw_cookie_value(browser, app):
    browser.sign_in_by_email("raw@example.com")
    value = cookie(browser, app)
    with store(app) as db:
        assert value not in repr(db.execute(text("SELECT * FROM web_sessions")).all())


# -- CSRF -----------------------------------------------------------------------------------

def test_forms_without_csrf_token_are_refused_and_change_nothing(browser, smtp, app):
    response = browser.client.post("/login/email", data={"email": "csrf@example.com"})
    assert response.status_code == 400 and "Form refused" in response.get_data(as_text=True)
    assert smtp.sent_to("csrf@example.com") == []

    browser.sign_in_by_email("csrf@example.com")
    projects = browser.project_ids()
    for path in ("/projects", f"/projects/{projects[0]}/keys", f"/projects/{projects[0]}/rename", "/logout"):
        refused = browser.client.post(path, data={"name": "sneaky"})
        assert refused.status_code == 400, path
        forged = browser.client.post(path, data={"name": "sneaky", "csrf_token": "forged"})
        assert forged.status_code == 400, path
    assert browser.project_ids() == projects
    assert signed_in(browser)
    assert "sneaky" not in browser.get(f"/projects/{projects[0]}").get_data(as_text=True)


# -- OAuth ----------------------------------------------------------------------------------

def test_google_oidc_sign_in_with_state_pkce_and_nonce(browser, google, core, app):
    google.next_user = FakeUser(subject="g-100", email="Grace@Example.com")
    response = browser.oauth("google", google)
    assert response.status_code == 302 and signed_in(browser)
    asked = google.authorize_requests[-1]
    assert asked["code_challenge_method"] == "S256" and asked["code_challenge"]
    assert asked["state"] and asked["nonce"] and "openid" in asked["scope"].split()
    assert asked["redirect_uri"] == "http://localhost/login/google/callback"
    assert google.token_requests[-1]["code_verifier"]
    [project_id] = browser.project_ids()
    assert balance(core, project_id).free_requests == 20
    with store(app) as db:
        identity = db.scalar(select(OAuthIdentity).where(OAuthIdentity.subject == "g-100"))
        assert identity.provider == "google" and identity.user.email == "grace@example.com"


def test_replayed_oauth_callback_is_refused(browser, google, app):
    google.next_user = FakeUser(subject="g-200", email="replay@example.com")
    start = browser.client.get("/login/google")
    import requests
    from urllib.parse import urlsplit
    back = urlsplit(requests.get(start.headers["Location"], allow_redirects=False, timeout=10).headers["Location"])
    callback = f"{back.path}?{back.query}"
    assert browser.get(callback).status_code == 302
    browser.submit("/projects", "/logout")
    again = browser.get(callback)
    assert again.status_code == 400 and "Sign-in failed" in again.get_data(as_text=True)
    assert not signed_in(browser)


def test_forged_state_is_refused_and_changes_nothing(browser, google, app):
    google.next_user = FakeUser(subject="g-300", email="forged@example.com")
    browser.get("/login/google")  # a real state exists in this session, but not this one
    tokens_before = len(google.token_requests)
    response = browser.get("/login/google/callback?code=stolen-code&state=forged-state")
    assert response.status_code == 400 and "Sign-in failed" in response.get_data(as_text=True)
    assert len(google.token_requests) == tokens_before, "a forged callback must not reach the token endpoint"
    assert not signed_in(browser)
    with store(app) as db:
        assert db.scalar(select(User).where(User.email == "forged@example.com")) is None


def test_callback_without_a_session_is_refused(app, google):
    response = app.test_client().get("/login/google/callback?code=x&state=y")
    assert response.status_code == 400


def test_provider_denial_shows_a_clear_page(browser, google):
    google.deny_next = True
    response = browser.oauth("google", google)
    assert response.status_code == 400 and "Sign-in failed" in response.get_data(as_text=True)
    assert not signed_in(browser)


def test_oauth_links_to_existing_user_through_a_verified_email(browser, google, app):
    browser.sign_in_by_email("linus@example.com")
    projects = browser.project_ids()
    browser.submit("/projects", "/logout")
    google.next_user = FakeUser(subject="g-400", email="linus@example.com", email_verified=True)
    assert browser.oauth("google", google).status_code == 302
    assert browser.project_ids() == projects, "the same user, not a second account"
    with store(app) as db:
        assert db.scalar(select(text("count(*)")).select_from(User).where(User.email == "linus@example.com")) == 1


def test_oauth_with_an_unverified_email_does_not_take_over_an_account(browser, google, app):
    browser.sign_in_by_email("victim@example.com")
    browser.submit("/projects", "/logout")
    google.next_user = FakeUser(subject="g-evil", email="victim@example.com", email_verified=False)
    response = browser.oauth("google", google)
    assert response.status_code == 403 and "verified email" in response.get_data(as_text=True)
    assert not signed_in(browser)
    with store(app) as db:
        assert db.scalar(select(OAuthIdentity).where(OAuthIdentity.subject == "g-evil")) is None


def test_github_sign_in_uses_the_primary_verified_email(browser, github, app):
    github.next_user = FakeUser(subject="4242", email="Octo@Example.com", login="octo")
    assert browser.oauth("github", github).status_code == 302 and signed_in(browser)
    assert github.authorize_requests[-1]["code_challenge_method"] == "S256"
    assert github.token_requests[-1]["code_verifier"]
    projects = browser.project_ids()
    browser.submit("/projects", "/logout")
    github.next_user = FakeUser(subject="4242", email="changed@example.com", login="octo")
    assert browser.oauth("github", github).status_code == 302
    assert browser.project_ids() == projects  # the identity, not the email, names the user
    with store(app) as db:
        identity = db.scalar(select(OAuthIdentity).where(OAuthIdentity.provider == "github"))
        assert identity.subject == "4242" and identity.user.email == "octo@example.com"


def test_unknown_provider_is_404(browser):
    assert browser.get("/login/myspace").status_code == 404


@pytest.mark.parametrize("provider", ["google", "github"])
def test_login_page_offers_configured_providers(browser, provider):
    assert f'href="/login/{provider}"' in browser.get("/login").get_data(as_text=True)


def test_without_smtp_the_link_is_written_to_a_private_mail_file(make_app, tmp_path):
    from account.mail import FileMailer
    from tests.account.conftest import Browser

    app = make_app(mail_dir=str(tmp_path / "mail"))
    app.extensions["onekey"].mailer = FileMailer(str(tmp_path / "mail"))
    browser = Browser(app, None)
    assert browser.submit("/login", "/login/email", {"email": "local@example.com"}).status_code == 200
    [mail] = (tmp_path / "mail").glob("*.eml")
    assert mail.stat().st_mode & 0o777 == 0o600 and (tmp_path / "mail").stat().st_mode & 0o777 == 0o700
    link = re.search(r"http://localhost(/login/email/\S+)", mail.read_text()).group(1)
    assert browser.submit(link, link).status_code == 302 and signed_in(browser)
    assert not mail.exists(), "a used link's mail is deleted"


def file_mail_app(make_app, tmp_path):
    from account.mail import FileMailer

    app = make_app(mail_dir=str(tmp_path / "mail"))
    app.extensions["onekey"].mailer = FileMailer(str(tmp_path / "mail"))
    return app


def written_link(path) -> str:
    return re.search(r"http://localhost(/login/email/\S+)", path.read_text()).group(1)


def test_written_mails_go_once_a_sign_in_used_or_ended_their_link(make_app, tmp_path):
    from tests.account.conftest import Browser

    app = file_mail_app(make_app, tmp_path)
    browser = Browser(app, None)
    for email in ("files@example.com", "files@example.com", "bystander@example.com"):
        assert browser.submit("/login", "/login/email", {"email": email}).status_code == 200
    mails = {p: p.read_text() for p in (tmp_path / "mail").glob("*.eml")}
    assert len(mails) == 3
    mine = [p for p, text in mails.items() if "To: files@example.com" in text]
    link = written_link(mine[0])
    assert browser.submit(link, link).status_code == 302 and signed_in(browser)
    # Both of that address's mails went (one used, one ended); the bystander's link still works.
    [left] = (tmp_path / "mail").glob("*.eml")
    assert "To: bystander@example.com" in left.read_text()


def test_written_mails_go_once_their_link_expired(make_app, tmp_path):
    from account.auth.mail_sweeper import MailSweeper
    from tests.account.conftest import Browser

    app = file_mail_app(make_app, tmp_path)
    browser = Browser(app, None)
    for email in ("late-file@example.com", "fresh-file@example.com"):
        assert browser.submit("/login", "/login/email", {"email": email}).status_code == 200
    with store(app) as db, db.begin():
        db.execute(update(LoginToken).where(LoginToken.email == "late-file@example.com")
                   .values(expires_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)))
    onekey = app.extensions["onekey"]
    sweeper = MailSweeper(onekey.sessions, onekey.mailer, interval=0.05)
    sweeper.start()
    try:
        deadline = time.monotonic() + 10
        while len(list((tmp_path / "mail").glob("*.eml"))) > 1:
            assert time.monotonic() < deadline, "the expired link's mail was not swept"
            time.sleep(0.05)
    finally:
        sweeper.stop()
    [left] = (tmp_path / "mail").glob("*.eml")
    assert "To: fresh-file@example.com" in left.read_text()
    assert sweeper.sweep() == 0  # a live link's mail stays


def test_mail_server_down_is_reported(make_app, smtp):
    from account.mail import SmtpMailer
    from account.settings import SmtpSettings
    from tests.account.conftest import Browser

    app = make_app()
    app.extensions["onekey"].mailer = SmtpMailer(SmtpSettings(host="127.0.0.1", port=1, starttls=False, timeout=2))
    response = Browser(app, smtp).submit("/login", "/login/email", {"email": "nomail@example.com"})
    assert response.status_code == 503 and "could not send" in response.get_data(as_text=True)


def test_over_https_a_same_origin_form_post_passes_the_strict_csrf_check(make_app, smtp):
    app = make_app(cookie_secure=True, public_url="https://localhost")
    client = app.test_client()
    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    data = {"csrf_token": token, "email": "tls@example.com"}
    cross = client.post("/login/email", data=data, base_url="https://localhost",
                        headers={"Referer": "https://evil.example/login"})
    assert cross.status_code == 400
    same = client.post("/login/email", data=data, base_url="https://localhost",
                       headers={"Referer": "https://localhost/login"})
    assert same.status_code == 200
    assert "https://localhost/login/email/" in smtp.wait_for("tls@example.com").get_content()


@pytest.mark.parametrize("misbehaviour", [
    {"sign_with_rogue_key": True},
    {"id_token_overrides": {"aud": "someone-else"}},
    {"id_token_overrides": {"iss": "https://evil.example"}},
    {"id_token_overrides": {"nonce": "replayed-nonce"}},
    {"id_token_overrides": {"exp": 1_000_000_000}},
], ids=["bad-signature", "wrong-audience", "wrong-issuer", "wrong-nonce", "expired"])
def test_an_id_token_that_does_not_verify_is_refused(browser, google, app, misbehaviour):
    google.next_user = FakeUser(subject="g-bad", email="badtoken@example.com")
    for name, value in misbehaviour.items():
        setattr(google, name, value)
    try:
        response = browser.oauth("google", google)
    finally:
        google.sign_with_rogue_key, google.id_token_overrides = False, {}
    assert response.status_code == 400 and "Sign-in failed" in response.get_data(as_text=True)
    assert not signed_in(browser)
    with store(app) as db:
        assert db.scalar(select(User).where(User.email == "badtoken@example.com")) is None


def test_no_sign_in_token_or_email_reaches_a_log_line(browser, caplog):
    import logging

    caplog.set_level(logging.DEBUG)
    link = browser.request_link("quiet@example.com")
    token = link.rsplit("/", 1)[1]
    browser.client.post(link, data={})  # refused for its missing CSRF token
    browser.submit(link, link)
    # Everything but the fake SMTP server's own protocol log ("mail.log"), which shows the mail it got.
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert any(r.name.startswith("account") for r in caplog.records), "the app did log the sign-in"
    assert token not in logged and "quiet@example.com" not in logged


def test_a_link_confirmed_twice_at_once_signs_in_once(make_app, smtp, database_url):
    import threading

    from tests.account.conftest import Browser
    from tests.stores import build

    url = database_url.replace("router.db", "account.db")
    build(url, "account")  # PostgreSQL is upgraded by the operator, not by the app
    app = make_app(database_url=url)
    first, second = Browser(app, smtp), Browser(app, smtp)
    link = first.request_link("race@example.com")
    tokens = [b.csrf(link) for b in (first, second)]
    start, results = threading.Barrier(2), {}

    def confirm(browser, token):
        start.wait()
        results[id(browser)] = browser.client.post(link, data={"csrf_token": token}).status_code

    threads = [threading.Thread(target=confirm, args=pair) for pair in zip((first, second), tokens)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results.values()) == [302, 400]
    assert [signed_in(first), signed_in(second)].count(True) == 1


def test_the_429_says_in_how_many_minutes_to_try_again(make_app, smtp):
    from tests.account.conftest import Browser

    browser = Browser(make_app(magic_link_per_email_ip=1, magic_link_window=1800.0), smtp)
    assert ask(browser, "wait@example.com", "203.0.113.20").status_code == 200
    refused = ask(browser, "wait@example.com", "203.0.113.20")
    body = refused.get_data(as_text=True)
    assert refused.status_code == 429 and "Try again in 30 minutes" in body
    assert 1790 <= int(refused.headers["Retry-After"]) <= 1800


def test_identical_sign_in_notes_do_not_pile_up(app):
    client = app.test_client()
    for _ in range(5):
        assert client.get("/projects").status_code == 302  # redirects not followed
    body = client.get("/login").get_data(as_text=True)
    assert body.count("Sign in to see that page.") == 1


def test_login_focuses_the_email_and_check_your_email_repeats_it(browser, app):
    login = app.test_client().get("/login").get_data(as_text=True)
    assert re.search(r'<input[^>]*autofocus[^>]*id="email"|<input[^>]*id="email"[^>]*autofocus', login)
    sent = browser.submit("/login", "/login/email", {"email": "Repeat@Example.com"})
    assert '<strong id="sent-to">repeat@example.com</strong>' in sent.get_data(as_text=True)


def test_sign_out_everywhere_says_what_it_did(browser):
    browser.sign_in_by_email("everywhere@example.com")
    done = browser.submit("/settings", "/settings/sessions/all", follow_redirects=True)
    body = done.get_data(as_text=True)
    assert "Signed out everywhere: 1 session ended" in body
    assert browser.get("/settings").status_code == 302


def test_a_used_link_opened_while_signed_in_goes_on_to_the_dashboard(browser):
    link = browser.request_link("onward@example.com")
    assert browser.submit(link, link).status_code == 302
    again = browser.get(link)
    assert again.status_code == 302 and "/login" not in again.headers["Location"]
    page = browser.get(again.headers["Location"], follow_redirects=True).get_data(as_text=True)
    assert "already used; you are signed in" in page and "Send me a new sign-in link" not in page
