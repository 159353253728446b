"""A refused form in real Chromium at 390 px: the alert is red, not the green success box, and
the input stays in the form. The screenshot is kept in test-artifacts/layout/."""
from __future__ import annotations

import pytest

from tests.account.test_browser import ARTIFACTS, chromium, served  # noqa: F401 (fixtures)
from tests.account.test_browser_layout import _sign_in

pytestmark = pytest.mark.slow


def test_a_refused_key_form_is_a_red_alert_with_the_input_kept(chromium, served, smtp):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        project_url = _sign_in(page, served, smtp, "alerts@example.com").rsplit("/dashboard", 1)[0]
        page.goto(project_url)
        page.fill("#key-name", "ci")
        page.click("#create-key")
        page.goto(project_url)
        page.fill("#key-name", "ci")
        page.fill("#key-limit", "0.0005")
        page.click("#create-key")
        alert = page.locator("[role=alert]")
        assert alert.count() == 1 and "$0.01" in alert.inner_text()
        assert page.locator("[role=status]").count() == 0
        background = alert.evaluate("el => getComputedStyle(el).backgroundColor")
        assert background == "rgb(254, 243, 242)", background  # the error colour, not the success green
        assert page.input_value("#key-name") == "ci" and page.input_value("#key-limit") == "0.0005"
        (ARTIFACTS / "layout").mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "layout" / "phone-key-refused.png"))
    finally:
        context.close()
