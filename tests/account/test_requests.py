"""Every request of a project in the account app, failed ones included: list, filters, paging,
one request's page, and a CSV export that holds metadata only."""
from __future__ import annotations

import csv
import io
import re
import uuid

import openai
import pytest

from tests.account.test_projects import create_key
from tests.stack import usage_events


def _traffic(browser, core, project_id: str, canary: str) -> dict[str, str]:
    """One success and two failures with the canary in their prompts: {kind: request id}."""
    secret, _ = create_key(browser, project_id, "ci")
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    msgs = [{"role": "user", "content": f"say {canary}"}]
    ids = {"ok": client.chat.completions.with_raw_response.create(
        model="sandbox/echo", messages=msgs).headers["x-onekey-request-id"]}
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model=f"no-such-{canary}", messages=msgs)
    ids["404"] = missing.value.response.headers["x-onekey-request-id"]
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="sandbox/echo", messages=[])
    ids["400"] = bad.value.response.headers["x-onekey-request-id"]
    assert len(usage_events(core, project_id, 3)) == 3
    return ids


def test_a_failed_request_shows_up_with_its_request_id(browser, core):
    browser.sign_in_by_email("failed@example.com")
    [project_id] = browser.project_ids()
    canary = f"CANARY-{uuid.uuid4().hex}"
    ids = _traffic(browser, core, project_id, canary)
    page = browser.get(f"/projects/{project_id}/requests").get_data(as_text=True)
    for request_id in ids.values():
        assert request_id in page
    assert "model_not_found" in page and "invalid_type" in page and canary not in page
    failed = browser.get(f"/projects/{project_id}/requests?status=error").get_data(as_text=True)
    assert ids["404"] in failed and ids["400"] in failed and ids["ok"] not in failed
    ok = browser.get(f"/projects/{project_id}/requests?status=ok&model=sandbox/echo").get_data(as_text=True)
    assert ids["ok"] in ok and ids["404"] not in ok

    detail = browser.get(f"/projects/{project_id}/requests/{ids['404']}")
    assert detail.status_code == 200
    body = detail.get_data(as_text=True)
    assert "404" in body and "model_not_found" in body and "ci" in body and canary not in body
    found = browser.get(f"/projects/{project_id}/find-request?id={ids['400']}")
    assert found.status_code == 302 and found.headers["Location"].endswith(f"/requests/{ids['400']}")
    dashboard = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert ids["404"] in dashboard and "2 failed" in dashboard, "failures count in the dashboard too"


def test_another_users_request_id_is_404(browser, core, app, smtp):
    from tests.account.conftest import Browser

    browser.sign_in_by_email("owner@example.com")
    [project_id] = browser.project_ids()
    ids = _traffic(browser, core, project_id, "x")
    other = Browser(app, smtp)
    other.sign_in_by_email("nosy@example.com")
    [theirs] = other.project_ids()
    assert other.get(f"/projects/{theirs}/requests/{ids['ok']}").status_code == 404
    assert other.get(f"/projects/{project_id}/requests/{ids['ok']}").status_code == 404
    assert other.get(f"/projects/{project_id}/requests.csv").status_code == 404


def test_csv_export_holds_every_request_and_no_content(browser, core):
    browser.sign_in_by_email("csv@example.com")
    [project_id] = browser.project_ids()
    canary = f"CANARY-{uuid.uuid4().hex}"
    ids = _traffic(browser, core, project_id, canary)
    response = browser.get(f"/projects/{project_id}/requests.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text = response.get_data(as_text=True)
    assert canary not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert {r["request_id"] for r in rows} == set(ids.values())
    assert {r["status"] for r in rows} == {"200", "404", "400"}
    assert all(r["key_name"] == "ci" for r in rows)
    assert not any(name in ("prompt", "messages", "content", "completion") for name in rows[0])
    only_failed = list(csv.DictReader(io.StringIO(browser.get(
        f"/projects/{project_id}/requests.csv?status=error").get_data(as_text=True))))
    assert {r["request_id"] for r in only_failed} == {ids["404"], ids["400"]}


def test_requests_are_paged_newest_first(browser, core):
    browser.sign_in_by_email("pages@example.com")
    [project_id] = browser.project_ids()
    ids = _traffic(browser, core, project_id, "x")
    seen = []
    page = browser.get(f"/projects/{project_id}/requests?per_page=2").get_data(as_text=True)
    seen += re.findall(r"/requests/(req_[0-9a-f]+)", page)
    older = re.search(r'href="([^"]+)" id="older"', page).group(1).replace("&amp;", "&")
    last = browser.get(older).get_data(as_text=True)
    seen += re.findall(r"/requests/(req_[0-9a-f]+)", last)
    assert 'id="older"' not in last and "Newest" in last
    assert seen == [ids["400"], ids["404"], ids["ok"]]


def test_request_pages_explain_failures_agree_on_ttfb_count_and_name_an_unknown_id(browser, core):
    browser.sign_in_by_email("requestpages@example.com")
    [project_id] = browser.project_ids()
    ids = _traffic(browser, core, project_id, "x")
    base = f"/projects/{project_id}"
    missing = browser.get(f"{base}/find-request?id=req_doesnotexist", follow_redirects=True)
    assert missing.status_code == 404
    assert "No request with id req_doesnotexist in this project" in missing.get_data(as_text=True)

    failed = browser.get(f"{base}/requests/{ids['404']}").get_data(as_text=True)
    assert 'id="error-meaning"' in failed and "No model by that id" in failed
    ttfb = re.search(r"<th>Time to first byte · total</th><td>(.*?)</td>", failed).group(1)
    assert ttfb.startswith("— ·"), "a refused request has no time to first byte"
    assert re.search(r'Projects</a> / <a href="[^"]+">[^<]+</a> › <a href="[^"]+">requests</a>', failed)

    rows = {r["request_id"]: r for r in csv.DictReader(io.StringIO(browser.get(
        f"{base}/requests.csv").get_data(as_text=True)))}
    assert rows[ids["404"]]["ttfb_ms"] == "" and rows[ids["400"]]["ttfb_ms"] == ""
    assert rows[ids["ok"]]["ttfb_ms"] != ""

    listing = browser.get(f"{base}/requests?per_page=2").get_data(as_text=True)
    assert '<span id="pager-count">1–2 of 3</span>' in listing
    older = re.search(r'href="([^"]+)" id="older"', listing).group(1).replace("&amp;", "&")
    assert '<span id="pager-count">3–3 of 3</span>' in browser.get(older).get_data(as_text=True)
    only_failed = browser.get(f"{base}/requests?status=error").get_data(as_text=True)
    assert '<span id="pager-count">1–2 of 2</span>' in only_failed
    assert "› requests</p>" in listing


def test_a_request_refused_on_its_route_keeps_its_catalog_model(browser, core):
    import requests as http

    browser.sign_in_by_email("routes@example.com")
    [project_id] = browser.project_ids()
    secret, _ = create_key(browser, project_id, "ci")
    # Every model answers on every route; what a route cannot carry to the model's provider (an
    # Anthropic server tool on an OpenAI model) is refused there, naming the field.
    refused = http.post(f"{core.base_url}/messages", headers={"x-api-key": secret}, timeout=30,
                        json={"model": "openai/gpt-5.2-pro", "max_tokens": 16,
                              "tools": [{"type": "web_search_20250305", "name": "web_search"}],
                              "messages": [{"role": "user", "content": "hi"}]})
    assert refused.status_code == 400 and "tools[0].type" in refused.text
    [event] = usage_events(core, project_id, 1)
    assert event.status == 400 and event.model == "openai/gpt-5.2-pro"
