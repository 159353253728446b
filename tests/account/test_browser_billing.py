"""Billing and the assistant in real headless Chromium: the billing page, a checkout that reaches
(fake) Stripe's hosted page, a signed webhook that raises the balance, and one assistant question
answered on the dashboard. Screenshots are kept in test-artifacts/."""
from __future__ import annotations

import dataclasses
import json
import re

import grpc
import pytest
import requests

from account.app import create_app
from account.billing.payments import StripePayments
from account.mail import SmtpMailer
from account.settings import AssistantSettings
from tests.account.conftest import ServedApp
from tests.account.test_assistant import anthropic_core  # noqa: F401  (fixture)
from tests.account.test_billing import WEBHOOK_SECRET, fake_stripe, stripe_billing  # noqa: F401  (fixture)
from tests.account.test_browser import ARTIFACTS, chromium  # noqa: F401  (fixture)
from tests.fakes.fake_stripe import event, sign
from tests.procs import free_port

pytestmark = pytest.mark.slow


@pytest.fixture
def served(settings, anthropic_core, fake_stripe):  # noqa: F811
    """The account app behind waitress, on the Anthropic core, selling credit through the fake Stripe."""
    port = free_port()
    s = dataclasses.replace(settings, public_url=f"http://127.0.0.1:{port}", core=f"127.0.0.1:{anthropic_core.core.port}",
                            api_base_url=anthropic_core.base_url, billing=stripe_billing(fake_stripe, stripe_crypto=True),
                            assistant=AssistantSettings())
    channel = grpc.insecure_channel(s.core)
    app = create_app(s, core_channel=channel, mailer=SmtpMailer(s.smtp),
                     payments=StripePayments(s.billing, max_network_retries=0))
    server = ServedApp(s, app, port)
    yield server
    server.stop()
    channel.close()


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000


def test_billing_page_checkout_webhook_and_an_assistant_question(chromium, served, smtp, fake_stripe,  # noqa: F811
                                                                 anthropic_core):  # noqa: F811
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{served.url}/login")
        page.fill("#email", "shopper@example.com")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your email")
        mail = smtp.wait_for("shopper@example.com").get_content()
        page.goto(re.search(rf"{re.escape(served.url)}/login/email/\S+", mail).group(0))
        page.click("#confirm-sign-in")
        page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}/dashboard$"))
        dashboard_url = page.url
        project_id = dashboard_url.split("/")[-2]

        page.click("text=Billing")
        page.wait_for_url(f"{served.url}/projects/{project_id}/billing")
        assert page.locator("#balance").inner_text() == "$0.00"
        assert page.locator("#pack-25").is_visible() and page.locator("#custom-amount").is_visible()
        assert "stablecoins" in page.content() and "Apple Pay and Google Pay" in page.content()
        _shot(page, "billing-page.png")

        page.click("#pack-25")
        page.wait_for_url(re.compile(rf"{re.escape(fake_stripe.url)}/pay/cs_test_\w+"))
        assert page.locator("#amount").inner_text() == "Pay $25.00 USD"
        assert page.locator("#methods").inner_text() == "Payment methods: card, crypto"
        _shot(page, "stripe-checkout.png")
        session_id = page.url.rsplit("/", 1)[1]

        body = json.dumps(event("checkout.session.completed", fake_stripe.complete(session_id)))
        delivered = requests.post(f"{served.url}/stripe/webhook", data=body, timeout=10,
                                  headers={"Content-Type": "application/json",
                                           "Stripe-Signature": sign(body, WEBHOOK_SECRET)})
        assert delivered.status_code == 200 and delivered.json()["outcome"] == "credited"

        # Stripe sends the buyer back to the success URL it was given.
        success_url = fake_stripe.sessions[session_id]["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        page.goto(success_url)
        assert "$25.00 of credit was added" in page.locator("#purchase-status").inner_text()
        page.click("text=Back to billing")
        assert page.locator("#balance").inner_text() == "$25.00"
        assert "paid" in page.locator("#purchases").inner_text()
        _shot(page, "billing-after-payment.png")

        page.goto(dashboard_url)
        question = "How do I call Claude from the OpenAI SDK?"
        page.fill("#assistant-question", question)
        page.click("#assistant-ask")
        answer = page.wait_for_selector("#assistant-log .a.answer")
        assert answer.inner_text() == question  # the fake provider echoes the question
        system_prompt = anthropic_core.fake.received[-1].body["messages"][0]["content"]
        assert "$25.00" in system_prompt and project_id in system_prompt
        page.locator("#assistant").scroll_into_view_if_needed()
        _shot(page, "dashboard-assistant.png")
    finally:
        context.close()
