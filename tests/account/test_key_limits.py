"""A key's monthly spend limit and expiry, set from the dashboard and enforced by the core."""
from __future__ import annotations

import datetime as dt
import re
import time

import openai

from onekey.v1 import admin_pb2
from tests.account.test_projects import core_keys, create_key


def test_limit_and_expiry_set_on_the_key_page_reach_the_core(browser, core):
    browser.sign_in_by_email("limits@example.com")
    [project_id] = browser.project_ids()
    secret, _ = create_key(browser, project_id, "capped")
    [key] = core_keys(core, project_id)
    page = f"/projects/{project_id}/keys/{key.id}"
    assert browser.get(page).status_code == 200
    last_day = dt.date.today() + dt.timedelta(days=30)
    saved = browser.submit(page, page, {"spend_limit_usd": "0.01", "expires_on": last_day.isoformat()},
                           follow_redirects=True)
    assert "saved" in saved.get_data(as_text=True)
    [key] = core_keys(core, project_id)
    assert key.spend_limit_micro_usd == 10_000
    assert key.expires_at.ToDatetime().date() == last_day + dt.timedelta(days=1)  # works through last_day
    listing = browser.get(f"/projects/{project_id}").get_data(as_text=True)
    assert "$0.01/mo" in listing and f"until {last_day.isoformat()}" in listing, "the day picked, not the day after"
    key_page = browser.get(page).get_data(as_text=True)
    assert f"works through {last_day.isoformat()} (UTC)" in key_page
    assert f'value="{last_day.isoformat()}"' in key_page

    bad = browser.submit(page, page, {"spend_limit_usd": "lots"}, follow_redirects=True)
    assert "amount in dollars" in bad.get_data(as_text=True)
    past = browser.submit(page, page, {"spend_limit_usd": "", "expires_on": "2001-01-01"}, follow_redirects=True)
    assert "Nothing was changed" in past.get_data(as_text=True) and "future" in past.get_data(as_text=True)
    assert core_keys(core, project_id)[0].spend_limit_micro_usd == 10_000

    cleared = browser.submit(page, page, {"spend_limit_usd": "", "expires_on": ""}, follow_redirects=True)
    assert cleared.status_code == 200
    [key] = core_keys(core, project_id)
    assert not key.HasField("spend_limit_micro_usd") and not key.HasField("expires_at")


def test_a_limit_set_at_creation_refuses_priced_requests_with_402(browser, core):
    browser.sign_in_by_email("capped@example.com")
    [project_id] = browser.project_ids()
    core.admin.AddFreeRequests(admin_pb2.AddFreeRequestsRequest(project_id=project_id, count=-20),
                               metadata=core.metadata)
    core.admin.AddCredit(admin_pb2.AddCreditRequest(project_id=project_id, amount_micro_usd=5_000_000,
                                             idempotency_key=f"t-{project_id}"), metadata=core.metadata)
    page = f"/projects/{project_id}"
    created = browser.submit(page, f"{page}/keys", {"name": "tiny", "spend_limit_usd": "0.01"})
    shown = browser.get(created.headers["Location"]).get_data(as_text=True)
    secret = re.search(r'<code id="secret">([^<]+)</code>', shown).group(1)
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    words = " ".join(["word"] * 2000)  # about 2,000 tokens: $0.004 at gpt-4.1's $2/M input
    deadline = time.monotonic() + 30
    while True:
        try:
            client.chat.completions.create(model="openai/gpt-4.1", messages=[{"role": "user", "content": words}])
        except openai.APIStatusError as err:
            assert err.status_code == 402 and err.body["code"] == "key_spend_limit_reached"
            break
        assert time.monotonic() < deadline, "the limit never refused"
    key_page = browser.get(f"{page}/keys/{core_keys(core, project_id)[0].id}").get_data(as_text=True)
    assert 'id="key-limit-shown">$0.01<' in key_page
