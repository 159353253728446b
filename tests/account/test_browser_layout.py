"""Every signed-in page at a phone's 390×844 and a desktop's 1280×900 in real headless Chromium:
nothing scrolls sideways (the chart included). Screenshots of each page at both sizes are kept in
test-artifacts/layout/ for a person to look at."""
from __future__ import annotations

import re

import openai
import pytest

from tests.account.test_browser import ARTIFACTS, chromium, served  # noqa: F401 (fixtures)
from onekey.v1 import admin_pb2
from tests.stack import usage_events

pytestmark = pytest.mark.slow

VIEWPORTS = {"phone": (390, 844), "desktop": (1280, 900)}
NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"


def _sign_in(page, served, smtp, email: str) -> str:
    """Sign in through the magic link; the URL of the first project's dashboard."""
    page.goto(f"{served.url}/login")
    page.fill("#email", email)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Check your email")
    mail = smtp.wait_for(email).get_content()
    page.goto(re.search(rf"{re.escape(served.url)}/login/email/\S+", mail).group(0))
    page.click("#confirm-sign-in")
    page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}/dashboard$"))
    return page.url


def signed_in_pages(page, served, smtp, core) -> dict[str, str]:
    """Sign in, make a key and some traffic (a success and a failure), and name every page to visit."""
    dashboard = _sign_in(page, served, smtp, "layout-with-a-rather-long-address@example.com")
    project_url = dashboard.rsplit("/dashboard", 1)[0]
    project_id = project_url.rsplit("/", 1)[1]
    page.goto(project_url)
    page.fill("#key-name", "a key with a fairly long name for a phone")
    page.click("#create-key")
    secret = page.locator("#secret").inner_text().strip()
    key_created = page.url
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    reply = client.chat.completions.with_raw_response.create(
        model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])
    request_id = reply.headers["x-onekey-request-id"]
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="no-such/model", messages=[{"role": "user", "content": "hi"}])
    failed_id = missing.value.response.headers["x-onekey-request-id"]
    assert len(usage_events(core, project_id, 2)) == 2, "the success and the failure are both recorded"
    core.admin.AddCredit(admin_pb2.AddCreditRequest(project_id=project_id, amount_micro_usd=5_000_000,
                                                    idempotency_key=f"layout-{project_id}", reason="operator"),
                         metadata=core.metadata)  # Billing lists it
    page.goto(project_url)
    revoke = page.locator("a:has-text('Revoke')").first.get_attribute("href")
    key_id = revoke.split("/keys/", 1)[1].split("/", 1)[0]
    return {
        "projects": f"{served.url}/projects",
        "keys": project_url,
        "key-created": key_created,
        "revoke": f"{served.url}{revoke}",
        "dashboard": dashboard,
        "dashboard-cost": f"{dashboard}?metric=cost&range=90d",
        "requests": f"{project_url}/requests",
        "request": f"{project_url}/requests/{request_id}",
        "request-failed": f"{project_url}/requests/{failed_id}",
        "key": f"{project_url}/keys/{key_id}",
        "billing": f"{project_url}/billing",
        "settings": f"{served.url}/settings",
        "delete-account": f"{served.url}/settings/delete",
        "models": f"{served.url}/models",
        "docs": f"{served.url}/docs",
    }


def test_every_signed_in_page_fits_a_phone_and_a_desktop(chromium, served, smtp, core):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    shots = ARTIFACTS / "layout"
    shots.mkdir(parents=True, exist_ok=True)
    try:
        pages = signed_in_pages(page, served, smtp, core)
        too_wide = []
        for size, (width, height) in VIEWPORTS.items():
            page.set_viewport_size({"width": width, "height": height})
            for name, url in pages.items():
                response = page.goto(url)
                assert response.status == 200, (name, response.status, page.content()[:2000])
                if not page.evaluate(NO_SIDEWAYS_SCROLL):
                    too_wide.append((size, name, page.evaluate("document.documentElement.scrollWidth")))
                page.screenshot(path=str(shots / f"{size}-{name}.png"), full_page=True)
        assert not too_wide, f"pages wider than the window: {too_wide}"
        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(pages["dashboard"])
        assert page.locator("svg.chart.narrow").is_visible() and not page.locator("svg.chart.wide").is_visible()
        assert page.locator("header.top nav >> text=Sign out").is_visible()
    finally:
        context.close()
