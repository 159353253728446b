"""Buying credits: Stripe Checkout against a fake Stripe on loopback, and signed webhooks that credit
the project through the real core exactly once."""
from __future__ import annotations

import dataclasses
import json
import re
import time

import grpc
import pytest
from sqlalchemy import select

from account.app import create_app
from account.billing.money import parse_usd
from account.billing.payments import StripePayments
from account.mail import SmtpMailer
from account.settings import BillingSettings, Secret
from account.store.db import make_engine, session_factory
from account.store.models import Purchase
from onekey.v1 import admin_pb2
from tests.account.conftest import Browser
from tests.fakes.fake_stripe import FakeStripe, event, sign
from tests.stores import build

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"


@pytest.fixture(scope="session")
def fake_stripe():
    fake = FakeStripe().start()
    yield fake
    fake.stop()


def stripe_billing(fake: FakeStripe, **kw) -> BillingSettings:
    return BillingSettings(backend="stripe", stripe_secret_key=Secret(fake.secret_key),
                           stripe_webhook_secret=Secret(WEBHOOK_SECRET), stripe_api_base=fake.url,
                           stripe_checkout_origin=fake.url, **kw)


@pytest.fixture
def make_billing_app(settings, fake_stripe):
    """make_billing_app(database_url=None, **billing) -> the account app selling credit through the fake."""
    channels = []

    def make(database_url: str | None = None, **billing):
        s = dataclasses.replace(settings, billing=stripe_billing(fake_stripe, **billing),
                                database_url=database_url or settings.database_url)
        channel = grpc.insecure_channel(s.core)
        channels.append(channel)
        app = create_app(s, core_channel=channel, mailer=SmtpMailer(s.smtp),
                         payments=StripePayments(s.billing, max_network_retries=0))
        app.config["TESTING"] = True
        return app

    yield make
    for channel in channels:
        channel.close()


@pytest.fixture
def shop(make_billing_app, smtp, database_url):
    """A signed-in buyer on the billing app (account store on SQLite and on PostgreSQL)."""
    build(database_url, "account")  # PostgreSQL is upgraded by the operator, not by the app
    b = Browser(make_billing_app(database_url), smtp)
    b.sign_in_by_email("buyer@example.com")
    return b


def balance(core, project_id: str) -> int:
    return core.admin.GetProject(admin_pb2.GetProjectRequest(project_id=project_id),
                                 metadata=core.metadata).balance_micro_usd


def buy(browser: Browser, project_id: str, amount: str):
    page = f"/projects/{project_id}/billing"
    return browser.submit(page, f"{page}/checkout", {"amount_usd": amount})


def checkout(browser: Browser, fake: FakeStripe, project_id: str, amount: str = "25") -> str:
    """Start a checkout and return its session id (the redirect goes to the fake's hosted page)."""
    response = buy(browser, project_id, amount)
    assert response.status_code == 303, response.get_data(as_text=True)
    session_id = response.headers["Location"].rsplit("/", 1)[1]
    assert response.headers["Location"] == f"{fake.url}/pay/{session_id}"
    return session_id


def deliver(browser: Browser, payload: dict | str, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None,
            signature: str | None = None, headers: dict | None = None):
    """POST a webhook the way Stripe does: raw JSON body, Stripe-Signature over `t.body`."""
    body = payload if isinstance(payload, str) else json.dumps(payload)
    sig = signature if signature is not None else sign(body, secret, timestamp)
    return browser.client.post("/stripe/webhook", data=body, content_type="application/json",
                               headers={"Stripe-Signature": sig, **(headers or {})})


def purchases(browser: Browser) -> list[Purchase]:
    engine = browser.app.extensions["onekey_engine"]
    with session_factory(engine)() as db:
        return list(db.scalars(select(Purchase).order_by(Purchase.created_at)))


def test_checkout_session_has_the_amount_currency_methods_and_project(shop, fake_stripe):
    [project_id] = shop.project_ids()
    page = shop.get(f"/projects/{project_id}/billing").get_data(as_text=True)
    assert 'id="pack-10"' in page and 'id="custom-amount"' in page and "Apple Pay and Google Pay" in page
    csp = shop.get(f"/projects/{project_id}/billing").headers["Content-Security-Policy"]
    assert f"form-action 'self' {fake_stripe.url};" in csp, "the checkout redirect must not be blocked"
    before = len(fake_stripe.created)
    session_id = checkout(shop, fake_stripe, project_id, "12.50")

    [sent] = fake_stripe.created[before:]
    assert sent.headers["Authorization"] == f"Bearer {fake_stripe.secret_key}"
    assert sent.headers["Idempotency-Key"].startswith("onekey-checkout-")
    p = sent.params
    assert p["mode"] == "payment"
    assert p["payment_method_types"] == ["card"]
    [item] = p["line_items"]
    assert item["quantity"] == "1"
    assert item["price_data"]["unit_amount"] == "1250" and item["price_data"]["currency"] == "usd"
    assert p["client_reference_id"] == project_id and p["metadata"]["onekey_project_id"] == project_id
    assert p["payment_intent_data"]["metadata"]["onekey_project_id"] == project_id
    assert p["success_url"] == f"http://localhost/projects/{project_id}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert p["cancel_url"].startswith(f"http://localhost/projects/{project_id}/billing/cancel")
    assert p["customer_email"] == "buyer@example.com"
    assert fake_stripe.sessions[session_id]["amount_total"] == 1250

    [purchase] = purchases(shop)
    assert (purchase.session_id, purchase.amount_cents, purchase.status, purchase.project_id) == \
        (session_id, 1250, "pending", project_id)
    history = shop.get(f"/projects/{project_id}/billing").get_data(as_text=True)
    assert re.search(r'<table id="purchases">.*\$12\.50.*pending', history, re.S)


def test_crypto_is_offered_when_enabled(make_billing_app, smtp, fake_stripe):
    browser = Browser(make_billing_app(stripe_crypto=True), smtp)
    browser.sign_in_by_email("crypto@example.com")
    [project_id] = browser.project_ids()
    assert "stablecoins" in browser.get(f"/projects/{project_id}/billing").get_data(as_text=True)
    checkout(browser, fake_stripe, project_id, "10")
    assert fake_stripe.created[-1].params["payment_method_types"] == ["card", "crypto"]


@pytest.mark.parametrize("amount, message", [("4.99", "smallest purchase is $5"), ("1000.01", "largest purchase is $1,000"),
                                             ("0", "Enter an amount"), ("ten", "Enter an amount"),
                                             ("5.001", "Enter an amount"), ("", "Enter an amount")])
def test_amounts_outside_the_limits_are_refused_before_stripe_is_called(make_billing_app, smtp, fake_stripe,
                                                                         amount, message):
    browser = Browser(make_billing_app(), smtp)
    browser.sign_in_by_email("limits@example.com")
    [project_id] = browser.project_ids()
    before = len(fake_stripe.received)
    response = buy(browser, project_id, amount)
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert len(fake_stripe.received) == before
    assert purchases(browser) == []


def test_checkout_for_another_users_project_is_404_and_needs_csrf(make_billing_app, smtp, fake_stripe):
    app = make_billing_app()
    alice, mallory = Browser(app, smtp), Browser(app, smtp)
    alice.sign_in_by_email("alice-b@example.com")
    mallory.sign_in_by_email("mallory-b@example.com")
    [alices] = alice.project_ids()
    [mallorys] = mallory.project_ids()
    before = len(fake_stripe.received)
    assert mallory.get(f"/projects/{alices}/billing").status_code == 404
    stolen = mallory.submit(f"/projects/{mallorys}/billing", f"/projects/{alices}/billing/checkout", {"amount_usd": "10"})
    assert stolen.status_code == 404
    forged = alice.client.post(f"/projects/{alices}/billing/checkout", data={"amount_usd": "10"})
    assert forged.status_code == 400  # no CSRF token
    assert len(fake_stripe.received) == before


def test_completed_checkout_credits_once_however_often_delivered(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    session_id = checkout(shop, fake_stripe, project_id, "25")
    assert balance(core, project_id) == 0
    completed = event("checkout.session.completed", fake_stripe.complete(session_id))
    first = deliver(shop, completed)
    assert first.status_code == 200 and first.get_json()["outcome"] == "credited"
    assert balance(core, project_id) == 25_000_000
    for _ in range(5):  # Stripe delivers at least once
        again = deliver(shop, completed)
        assert again.status_code == 200 and again.get_json()["outcome"] == "duplicate"
    # A new event id about the same session credits nothing either: the key is the session.
    deliver(shop, event("checkout.session.completed", fake_stripe.complete(session_id)))
    assert balance(core, project_id) == 25_000_000
    [purchase] = purchases(shop)
    assert purchase.status == "paid" and purchase.payment_intent.startswith("pi_")
    page = shop.get(f"/projects/{project_id}/billing").get_data(as_text=True)
    assert 'id="balance">$25.00<' in page and "paid" in page
    success = shop.get(f"/projects/{project_id}/billing/success?session_id={session_id}").get_data(as_text=True)
    assert "$25.00 of credit was added" in success


@pytest.mark.parametrize("case", ["bad signature", "wrong secret", "no signature", "stale", "garbled header",
                                  "malformed body", "tampered body"])
def test_unprovable_webhooks_are_400_and_credit_nothing(shop, fake_stripe, core, case):
    [project_id] = shop.project_ids()
    session_id = checkout(shop, fake_stripe, project_id, "10")
    body = json.dumps(event("checkout.session.completed", fake_stripe.complete(session_id)))
    good = sign(body, WEBHOOK_SECRET)
    response = {
        "bad signature": lambda: deliver(shop, body, signature=good[:-4] + "0000"),
        "wrong secret": lambda: deliver(shop, body, secret="whsec_someone_else"),
        "no signature": lambda: shop.client.post("/stripe/webhook", data=body, content_type="application/json"),
        "stale": lambda: deliver(shop, body, timestamp=int(time.time()) - 301),
        "garbled header": lambda: deliver(shop, body, signature="nonsense"),
        "malformed body": lambda: deliver(shop, "{not json"),
        "tampered body": lambda: deliver(shop, body.replace('"amount_total": 1000', '"amount_total": 99900'),
                                         signature=good),
    }[case]()
    assert response.status_code == 400
    assert balance(core, project_id) == 0
    assert purchases(shop)[0].status == "pending"


def test_clock_skew_within_tolerance_is_accepted(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    session_id = checkout(shop, fake_stripe, project_id, "10")
    late = deliver(shop, event("checkout.session.completed", fake_stripe.complete(session_id)),
                   timestamp=int(time.time()) - 240)
    assert late.status_code == 200
    assert balance(core, project_id) == 10_000_000


def test_large_events_and_expired_sessions(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    session_id = checkout(shop, fake_stripe, project_id, "10")
    expired = event("checkout.session.expired", {**fake_stripe.sessions[session_id], "status": "expired",
                                                 "padding": "x" * 200_000})
    response = deliver(shop, expired)
    assert response.status_code == 200 and response.get_json()["outcome"] == "expired"
    assert purchases(shop)[0].status == "expired" and balance(core, project_id) == 0


def test_unknown_event_types_and_foreign_sessions_are_200_ignored(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    ignored = deliver(shop, event("customer.created", {"id": "cus_123", "object": "customer"}))
    assert ignored.status_code == 200 and ignored.get_json()["outcome"] == "ignored"
    foreign = {"id": "cs_test_not_ours", "object": "checkout.session", "payment_status": "paid", "amount_total": 500,
               "currency": "usd", "metadata": {"onekey_project_id": project_id}, "client_reference_id": project_id}
    response = deliver(shop, event("checkout.session.completed", foreign))
    assert response.status_code == 200 and response.get_json()["outcome"] == "ignored"
    assert balance(core, project_id) == 0, "metadata alone, without our purchase, credits nothing"


def test_async_payment_success_credits_and_failure_does_not(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    ok = checkout(shop, fake_stripe, project_id, "20")
    bad = checkout(shop, fake_stripe, project_id, "30")
    for session_id in (ok, bad):  # a delayed method (crypto): completed, but not paid yet
        waiting = deliver(shop, event("checkout.session.completed", fake_stripe.complete(session_id, paid=False)))
        assert waiting.get_json()["outcome"] == "awaiting payment"
    assert balance(core, project_id) == 0
    assert {p.status for p in purchases(shop)} == {"processing"}

    failed = event("checkout.session.async_payment_failed", fake_stripe.settle(bad, succeeded=False))
    assert deliver(shop, failed).get_json()["outcome"] == "failed"
    succeeded = event("checkout.session.async_payment_succeeded", fake_stripe.settle(ok, succeeded=True))
    assert deliver(shop, succeeded).get_json()["outcome"] == "credited"
    assert deliver(shop, succeeded).get_json()["outcome"] == "duplicate"
    assert balance(core, project_id) == 20_000_000
    assert {p.session_id: p.status for p in purchases(shop)} == {ok: "paid", bad: "failed"}
    pending = shop.get(f"/projects/{project_id}/billing/success?session_id={bad}").get_data(as_text=True)
    assert "payment failed" in pending


def test_refunds_debit_the_refunded_credit_once_per_refund(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    session_id = checkout(shop, fake_stripe, project_id, "10")
    deliver(shop, event("checkout.session.completed", fake_stripe.complete(session_id)))
    assert balance(core, project_id) == 10_000_000

    partial = event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=300))
    assert deliver(shop, partial).get_json()["outcome"] == "debited"
    for _ in range(3):
        assert deliver(shop, partial).get_json()["outcome"] == "duplicate"
    assert balance(core, project_id) == 7_000_000
    assert purchases(shop)[0].status == "partially_refunded"

    full = event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=1000))
    assert deliver(shop, full).get_json()["outcome"] == "debited"
    assert deliver(shop, partial).get_json()["outcome"] == "duplicate", "an older event arriving late"
    assert balance(core, project_id) == 0
    [purchase] = purchases(shop)
    assert (purchase.status, purchase.refunded_cents) == ("refunded", 1000)
    page = shop.get(f"/projects/{project_id}/billing").get_data(as_text=True)
    assert "refunded" in page and 'id="balance">$0.00<' in page


def test_refund_before_its_payment_is_retried_later(shop, fake_stripe, core):
    [project_id] = shop.project_ids()
    session_id = checkout(shop, fake_stripe, project_id, "10")
    fake_stripe.complete(session_id)
    early = deliver(shop, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=1000)))
    assert early.status_code == 503, "Stripe retries a non-2xx delivery"
    deliver(shop, event("checkout.session.completed", fake_stripe.complete(session_id)))
    deliver(shop, event("charge.refunded", fake_stripe.charge(session_id, amount_refunded=1000)))
    assert balance(core, project_id) == 0


def test_stripe_down_says_so_and_keeps_nothing(make_billing_app, smtp, fake_stripe):
    browser = Browser(make_billing_app(), smtp)
    browser.sign_in_by_email("down@example.com")
    [project_id] = browser.project_ids()
    fake_stripe.fail_with = 500
    try:
        response = buy(browser, project_id, "10")
    finally:
        fake_stripe.fail_with = None
    assert response.status_code == 503
    body = response.get_data(as_text=True)
    assert "not reachable right now" in body and "Nothing was charged" in body
    assert fake_stripe.secret_key not in body
    assert purchases(browser) == []


def test_core_down_webhook_is_retried(make_billing_app, smtp, fake_stripe, settings, core):
    app = make_billing_app()
    browser = Browser(app, smtp)
    browser.sign_in_by_email("later@example.com")
    [project_id] = browser.project_ids()
    session_id = checkout(browser, fake_stripe, project_id, "10")
    completed = event("checkout.session.completed", fake_stripe.complete(session_id))
    down = create_app(dataclasses.replace(settings, billing=stripe_billing(fake_stripe), core="127.0.0.1:1",
                                          core_timeout=1.0), engine=app.extensions["onekey_engine"],
                      payments=StripePayments(stripe_billing(fake_stripe), max_network_retries=0))
    body = json.dumps(completed)
    refused = down.test_client().post("/stripe/webhook", data=body, content_type="application/json",
                                      headers={"Stripe-Signature": sign(body, WEBHOOK_SECRET)})
    assert refused.status_code == 503
    assert deliver(browser, completed).get_json()["outcome"] == "credited"
    assert balance(core, project_id) == 10_000_000


def test_without_a_payments_backend_the_page_says_so(browser, core):
    browser.sign_in_by_email("nobilling@example.com")
    [project_id] = browser.project_ids()
    page = browser.get(f"/projects/{project_id}/billing")
    assert page.status_code == 200 and 'id="payments-off"' in page.get_data(as_text=True)
    refused = buy(browser, project_id, "10")
    assert refused.status_code == 503
    assert browser.client.post("/stripe/webhook", data="{}", headers={"Stripe-Signature": "t=1,v1=0"}).status_code == 400


def test_parse_usd_is_exact():
    assert parse_usd("12") == 1200 and parse_usd("12.5") == 1250 and parse_usd("$1,000.01") == 100001
    assert parse_usd("0.07") == 7  # a float would make it 7.000000000000001
    for bad in ("", "-5", "1e3x", "NaN", "Infinity", "1.234"):
        with pytest.raises(ValueError):
            parse_usd(bad)


def test_the_account_store_keeps_purchases(database_url):
    from account.store.repositories import PurchaseRepository

    build(database_url, "account")
    engine = make_engine(database_url)
    with session_factory(engine)() as db:
        repo = PurchaseRepository(db)
        purchase = repo.add("project-1", "user-1", 2500, "usd")
        purchase.session_id, purchase.payment_intent = "cs_1", "pi_1"
        db.commit()
    with session_factory(engine)() as db, db.begin():
        repo = PurchaseRepository(db)
        assert repo.by_session("cs_1", lock=True).amount_cents == 2500
        assert repo.by_payment_intent("pi_1").id == purchase.id
        assert [p.id for p in repo.for_project("project-1")] == [purchase.id]
        assert repo.for_project("project-2") == []
    engine.dispose()


@pytest.mark.postgres
def test_store_down_webhook_is_retried_and_credits_once_after(make_billing_app, smtp, fake_stripe, core,
                                                                  postgres_url):
    """Issue 22: no lost charge. The account store cut off (fault proxy), Stripe's delivery gets the
    webhook's own 503 and nothing is credited; delivered again once the store is back, it credits once."""
    from urllib.parse import urlsplit

    from tests.fakes.fault_proxy import FaultProxy

    build(postgres_url, "account")
    parts = urlsplit(postgres_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        app = make_billing_app(database_url=proxy.url_for(postgres_url))
        browser = Browser(app, smtp)
        browser.sign_in_by_email("cut-off@example.com")
        [project_id] = browser.project_ids()
        completed = event("checkout.session.completed",
                          fake_stripe.complete(checkout(browser, fake_stripe, project_id, "10")))
        stripe = Browser(app, smtp)  # Stripe sends no cookie
        proxy.set("cut")
        refused = deliver(stripe, completed)
        assert refused.status_code == 503 and refused.get_json() == {"error": "try again later"}
        assert int(refused.headers["Retry-After"]) > 0
        assert balance(core, project_id) == 0
        proxy.set("pass")
        deadline = time.monotonic() + 15
        while (settled := deliver(stripe, completed)).status_code != 200:  # Stripe's retries
            assert settled.status_code == 503 and time.monotonic() < deadline
            time.sleep(0.2)
        assert settled.get_json()["outcome"] == "credited"
        assert deliver(stripe, completed).status_code == 200
        assert balance(core, project_id) == 10_000_000
