"""The pages around the account: models and prices, docs, the icon, and the small courtesies
(no scolding on a first visit, a new link for a used one, saying what a second project gets)."""
from __future__ import annotations

import datetime as dt
import re

import openai

from onekey.v1 import admin_pb2, router_pb2, router_pb2_grpc
from tests.account.test_projects import create_key
from tests.stack import usage_events


def test_models_page_lists_the_cores_catalog_with_prices_and_status(app, core):
    page = app.test_client().get("/models")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<code>openai/gpt-4.1</code>" in body and "<code>anthropic/claude-opus-4-6</code>" in body
    row = re.search(r"<code>openai/gpt-4\.1</code>.*?</tr>", body, re.S).group(0)
    assert "$2.00" in row and "$8.00" in row, "gpt-4.1 costs $2 in and $8 out per million tokens"
    assert "free test model" in body and "<code>sandbox/echo</code>" in body
    assert re.search(r"Prices come from\s+genai-prices \d", body), "the page names the price package and its version"
    listed = router_pb2_grpc.RouterServiceStub(core.channel).ListModels(router_pb2.ListModelsRequest()).models
    assert len(re.findall(r"<tr class=\"model-", body)) == len(listed)
    # Each model's routes: native where its provider speaks the API, translated otherwise.
    assert "native: /v1/chat/completions, /v1/responses · translated: /v1/messages" in row
    google = re.search(r"<code>google/gemini-2\.5-flash</code>.*?</tr>", body, re.S).group(0)
    assert "native: /v1/chat/completions · translated: /v1/responses, /v1/messages" in google


def test_docs_page_has_base_url_and_examples_for_sdks_curl_and_tools(app, settings):
    body = app.test_client().get("/docs").get_data(as_text=True)
    assert settings.api_base_url in body
    for needle in ("from openai import OpenAI", 'require("openai")', "curl ", "custom OpenAI endpoint",
                   "api_key_revoked", "key_spend_limit_reached", "x-onekey-request-id"):
        assert needle in body, needle


def test_favicon_and_links_to_docs_and_models_on_every_page(app, browser):
    icon = app.test_client().get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/vnd.microsoft.icon" and icon.data[:4] == b"\0\0\1\0"
    browser.sign_in_by_email("links@example.com")
    [project_id] = browser.project_ids()
    for path in ("/projects", f"/projects/{project_id}", f"/projects/{project_id}/dashboard", "/settings", "/login"):
        body = browser.get(path).get_data(as_text=True) if path != "/login" else app.test_client().get(path).get_data(as_text=True)
        assert 'href="/docs"' in body and 'href="/models"' in body and 'rel="icon"' in body, path


def test_first_visit_to_the_root_is_not_scolded(app):
    client = app.test_client()
    first = client.get("/")
    assert first.status_code == 302 and first.headers["Location"].endswith("/login")
    assert "Sign in to see that page" not in client.get("/login").get_data(as_text=True)
    client.get("/projects")  # a real page asked for: the note is right there
    assert "Sign in to see that page" in client.get("/login").get_data(as_text=True)


def test_a_used_magic_link_offers_a_new_one(browser):
    link = browser.request_link("twice@example.com")
    assert browser.submit(link, link).status_code == 302
    browser.submit("/projects", "/logout")
    again = browser.get(link)
    body = again.get_data(as_text=True)
    assert again.status_code == 400 and "Send me a new sign-in link" in body and "Go back" not in body


def test_a_second_project_is_told_it_has_no_free_requests(browser):
    browser.sign_in_by_email("second@example.com")
    listing = browser.get("/projects").get_data(as_text=True)
    assert "free requests come once per account" in listing
    created = browser.submit("/projects", "/projects", {"name": "Another"}, follow_redirects=True)
    assert "so this one starts without any" in created.get_data(as_text=True)


def test_billing_without_payments_shows_prices_and_a_statement_of_charges(browser, core):
    browser.sign_in_by_email("statement@example.com")
    [project_id] = browser.project_ids()
    secret, _ = create_key(browser, project_id)
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    client.chat.completions.create(model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
    usage_events(core, project_id, 1)
    body = browser.get(f"/projects/{project_id}/billing").get_data(as_text=True)
    assert 'id="payments-off"' in body and project_id in body and 'id="prices-link"' in body
    statement = re.search(r'<table id="statement"[^>]*>(.*?)</table>', body, re.S).group(1)
    assert dt.datetime.now(dt.timezone.utc).strftime("%Y-%m") in statement and '<td class="num" data-label="Requests">1</td>' in statement
    assert 'class="stacked"' in body and 'data-label="Charged"' in statement, "stacks on a phone, no column cut"


def test_credit_the_operator_adds_is_listed_on_billing(browser, core):
    browser.sign_in_by_email("operatorcredit@example.com")
    [project_id] = browser.project_ids()
    page = f"/projects/{project_id}/billing"
    assert "No credit added yet" in browser.get(page).get_data(as_text=True)
    core.admin.AddCredit(admin_pb2.AddCreditRequest(project_id=project_id, amount_micro_usd=5_000_000,
                                                    idempotency_key=f"op-{project_id}", reason="operator"),
                         metadata=core.metadata)
    core.admin.AddCredit(admin_pb2.AddCreditRequest(project_id=project_id, amount_micro_usd=-1_250_000,
                                                    idempotency_key=f"op2-{project_id}", reason="operator"),
                         metadata=core.metadata)
    body = browser.get(page).get_data(as_text=True)
    table = re.search(r'<table id="credits"[^>]*>(.*?)</table>', body, re.S).group(1)
    rows = re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)
    assert len(rows) == 2
    assert "−$1.25" in rows[0] and "Taken back by the operator" in rows[0], "newest first"
    assert "$5.00" in rows[1] and "Added by the operator" in rows[1]


def test_models_page_renders_notes_says_what_is_usable_puts_it_first_and_filters(app, core):
    client = app.test_client()
    body = client.get("/models").get_data(as_text=True)
    assert "`" not in body, "Markdown code spans are rendered, not shown raw"
    assert "Every model this OneKey lists" in body and "serves, with" not in body
    listed = router_pb2_grpc.RouterServiceStub(core.channel).ListModels(router_pb2.ListModelsRequest()).models
    usable = [m for m in listed if m.status in ("available", "preview", "degraded")]
    assert 0 < len(usable) < len(listed)
    assert f'<strong id="usable-count">{len(usable)} of {len(listed)}</strong>' in body
    statuses = re.findall(r'<tr class="model-([a-z_]+)"', body)
    first_unusable = next(i for i, s in enumerate(statuses) if s not in ("available", "preview", "degraded"))
    assert set(statuses[:first_unusable]) <= {"available", "preview", "degraded"}
    assert len(statuses[:first_unusable]) >= 2, "the providers with a channel here come first"

    only = client.get("/models?usable=1").get_data(as_text=True)  # the plain GET form's query, no script needed
    assert len(re.findall(r'<tr class="model-', only)) == len(usable)
    assert "model-no_channel" not in only and 'id="usable-only" checked' in only
    found = client.get("/models?q=GPT-4.1-MINI").get_data(as_text=True)
    assert "<code>openai/gpt-4.1-mini</code>" in found and "<code>anthropic/claude-opus-4-6</code>" not in found
    none = client.get("/models?q=no-such-model-here").get_data(as_text=True)
    assert 'id="no-match"' in none


def test_code_spans_escape_everything_else():
    from account.pages.views import code_spans

    assert str(code_spans("channel for `openai` <b>")) == "channel for <code>openai</code> &lt;b&gt;"
    assert str(code_spans("odd ` tick")) == "odd ` tick"
