"""A refused form says so in an alert (role=alert, styled as an error), keeps what the user typed,
and changes nothing."""
from __future__ import annotations

import html
import re

from tests.account.test_projects import core_keys, create_key

_ALERT = re.compile(r'<p class="flash error" role="alert">(.*?)</p>', re.S)


def alerts(body: str) -> list[str]:
    return [html.unescape(a) for a in _ALERT.findall(body)]


def value_of(body: str, field_id: str) -> str:
    tag = re.search(rf'<input[^>]*id="{field_id}"[^>]*>', body).group(0)
    match = re.search(r'value="([^"]*)"', tag)
    return html.unescape(match.group(1)) if match else ""


def test_a_duplicate_key_name_is_an_alert_and_the_form_keeps_its_input(browser, core):
    browser.sign_in_by_email("dupkey@example.com")
    [project_id] = browser.project_ids()
    create_key(browser, project_id, "ci")
    page = f"/projects/{project_id}"
    refused = browser.submit(page, f"{page}/keys", {"name": "ci", "spend_limit_usd": "12.50"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    [alert] = alerts(body)
    assert "No key was created" in alert and "already exists" in alert
    assert 'role="status"' not in body, "an error is not shown as a success"
    assert value_of(body, "key-name") == "ci" and value_of(body, "key-limit") == "12.50"
    assert [k.name for k in core_keys(core, project_id)] == ["ci"]


def test_a_bad_limit_on_a_new_key_says_the_smallest_amount_and_keeps_the_input(browser, core):
    browser.sign_in_by_email("badlimit@example.com")
    [project_id] = browser.project_ids()
    page = f"/projects/{project_id}"
    refused = browser.submit(page, f"{page}/keys", {"name": "tiny", "spend_limit_usd": "0.0005"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    [alert] = alerts(body)
    assert "$0.01" in alert and "smallest" in alert
    assert value_of(body, "key-limit") == "0.0005" and value_of(body, "key-name") == "tiny"
    assert list(core_keys(core, project_id)) == []


def test_a_bad_limit_and_a_past_expiry_on_the_key_page_are_alerts_with_the_input_kept(browser, core):
    browser.sign_in_by_email("keypage@example.com")
    [project_id] = browser.project_ids()
    create_key(browser, project_id, "capped")
    [key] = core_keys(core, project_id)
    page = f"/projects/{project_id}/keys/{key.id}"
    bad = browser.submit(page, page, {"spend_limit_usd": "lots", "expires_on": ""})
    body = bad.get_data(as_text=True)
    assert bad.status_code == 400
    [alert] = alerts(body)
    assert "Nothing was changed" in alert and "smallest is $0.01" in alert
    assert value_of(body, "spend-limit") == "lots"

    past = browser.submit(page, page, {"spend_limit_usd": "3", "expires_on": "2001-01-01"})
    body = past.get_data(as_text=True)
    assert past.status_code == 400
    [alert] = alerts(body)
    assert "Nothing was changed" in alert and "future" in alert
    assert value_of(body, "spend-limit") == "3" and value_of(body, "expires-on") == "2001-01-01"
    [key] = core_keys(core, project_id)
    assert not key.HasField("spend_limit_micro_usd") and not key.HasField("expires_at")


def test_the_wrong_email_on_deletion_is_an_alert_and_keeps_what_was_typed(browser):
    browser.sign_in_by_email("keepme@example.com")
    refused = browser.submit("/settings/delete", "/settings/delete", {"email": "keep@example.com"})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    [alert] = alerts(body)
    assert "Nothing was deleted" in alert and "keepme@example.com" in alert
    assert value_of(body, "confirm-email") == "keep@example.com"
    assert browser.get("/settings").status_code == 200, "still signed in, account still there"


def test_a_duplicate_project_name_is_refused_with_an_alert(browser):
    browser.sign_in_by_email("dupproject@example.com")
    [first] = browser.project_ids()
    name = re.search(r"<h1>(.*?)</h1>", browser.get(f"/projects/{first}").get_data(as_text=True)).group(1)
    refused = browser.submit("/projects", "/projects", {"name": f" {html.unescape(name).upper()} "})
    body = refused.get_data(as_text=True)
    assert refused.status_code == 400
    [alert] = alerts(body)
    assert "already have a project named" in alert
    assert browser.project_ids() == [first]
    browser.submit("/projects", "/projects", {"name": "Second"})
    second = next(p for p in browser.project_ids() if p != first)
    renamed = browser.submit(f"/projects/{second}", f"/projects/{second}/rename", {"name": html.unescape(name)},
                             follow_redirects=True)
    assert any("Not renamed" in a for a in alerts(renamed.get_data(as_text=True)))
