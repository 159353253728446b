"""The whole account journey in real headless Chromium (Debian's package, driven by Playwright):
sign in by magic link, create a project and a key, call the edge with the OpenAI SDK, and find
the request in the dashboard. The dashboard's screenshot is kept in test-artifacts/."""
from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import openai
import pytest

from router_core.settings import CoreSettings
from tests.account.conftest import ServedApp
from tests.procs import free_port
from tests.stack import Stack

pytestmark = pytest.mark.slow

ARTIFACTS = pathlib.Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _chromium_path() -> str | None:
    for candidate in (shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium():
    path = _chromium_path()
    if path is None:
        message = "Debian's chromium is not installed: run scripts/ensure_chromium.sh (make test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def served(make_app, settings):
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    app = make_app(public_url=public_url)
    server = ServedApp(settings, app, port)
    yield server
    server.stop()


def test_magic_link_project_key_sdk_call_and_dashboard(chromium, served, smtp, core):
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{served.url}/login")
        page.fill("#email", "browser@example.com")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your email")

        mail = smtp.wait_for("browser@example.com").get_content()
        link = re.search(rf"{re.escape(served.url)}/login/email/\S+", mail).group(0)
        page.goto(link)
        assert page.locator("h1").inner_text() == "Sign in as browser@example.com?"
        page.click("#confirm-sign-in")
        page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}/dashboard$"))
        assert page.locator("#free-requests").inner_text() == "20"

        page.goto(f"{served.url}/projects")
        page.fill("#project-name", "Browser project")
        page.click("#create-project")
        page.wait_for_selector("text=Project “Browser project” created.")
        project_url = page.url
        page.fill("#key-name", "from chromium")
        page.click("#create-key")
        secret = page.locator("#secret").inner_text().strip()
        assert secret and "shown only this once" in page.content()
        page.click("button.copy")
        page.wait_for_selector("button.copy:has-text('Copied')")

        client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
        reply = client.chat.completions.create(model="sandbox/echo",
                                               messages=[{"role": "user", "content": "hello from the browser test"}])
        assert reply.choices[0].message.content
        streamed = client.chat.completions.create(model="sandbox/echo", stream=True,
                                                  messages=[{"role": "user", "content": "and a stream"}])
        assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)

        page.goto(f"{project_url}/dashboard")
        deadline = time.monotonic() + 15
        while page.locator("#total-requests").inner_text() != "2":  # usage is flushed in batches
            assert time.monotonic() < deadline, page.content()
            time.sleep(0.2)
            page.reload()
        model_table = page.locator("#by-model").inner_text()
        assert "sandbox/echo" in model_table
        recent = page.locator("#recent tbody tr")
        assert recent.count() == 2
        assert "chat/completions (stream)" in page.locator("#recent").inner_text()
        assert "hello from the browser test" not in page.content()
        assert page.locator("svg.chart.wide rect.bar").count() == 30
        assert page.locator("#base-url").inner_text() == core.base_url

        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "account-dashboard.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000

        page.goto(project_url)
        assert "never" not in page.locator("#keys").inner_text(), "the key shows when it was last used"
    finally:
        context.close()


@pytest.fixture
def keyless(make_app, tmp_path):
    """The account app on a core with no provider key at all (only the sandbox), as after a
    fresh `make run`."""
    stack = Stack(CoreSettings(database_url=f"sqlite:///{tmp_path}/keyless.db", channels=(), usage_flush_interval=0.05))
    port = free_port()
    app = make_app(public_url=f"http://127.0.0.1:{port}", core=f"127.0.0.1:{stack.core.port}",
                   api_base_url=stack.base_url)
    server = ServedApp(app.extensions["onekey"].settings, app, port)
    yield server, stack
    server.stop()
    stack.stop()


def test_the_quick_start_example_works_on_an_install_without_provider_keys(chromium, keyless, smtp):
    served, stack = keyless
    context = chromium.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=served.url)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{served.url}/login")
        page.fill("#email", "newcomer@example.com")
        page.click("button[type=submit]")
        page.wait_for_selector("text=Check your email")
        link = re.search(rf"{re.escape(served.url)}/login/email/\S+",
                         smtp.wait_for("newcomer@example.com").get_content()).group(0)
        page.goto(link)
        page.click("#confirm-sign-in")
        page.wait_for_url(re.compile(r".*/projects/[0-9a-f-]{36}/dashboard$"))
        dashboard_url = page.url
        banner = page.locator("#first-run").inner_text()
        assert "no provider channel yet" in banner and "404 model_not_available" in banner
        assert page.locator("#quick-model").inner_text() == "sandbox/echo"

        page.click("section:has(h2:text('Quick start')) a:text('Keys')")  # where the Quick start sends them for a key
        page.fill("#key-name", "quick start")
        page.click("#create-key")
        secret = page.locator("#secret").inner_text().strip()

        page.goto(dashboard_url)
        page.click("button[data-copy=snippet-python]")
        page.wait_for_selector("button[data-copy=snippet-python]:has-text('Copied')")
        snippet = page.evaluate("navigator.clipboard.readText()")
        assert snippet == page.locator("#snippet-python").inner_text()
        assert stack.base_url in snippet and 'model="sandbox/echo"' in snippet
        # Run the example exactly as copied, with only the key filled in, as a newcomer would.
        ran = subprocess.run([sys.executable, "-c", snippet.replace("YOUR_ONEKEY_KEY", secret)],
                             capture_output=True, text=True, timeout=60)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.strip() == "Hello!"
        curl = page.locator("#snippet-curl").inner_text()
        assert '"model": "sandbox/echo"' in curl and f"{stack.base_url}/chat/completions" in curl

        deadline = time.monotonic() + 15
        while page.locator("#total-requests").inner_text() != "1":  # usage is flushed in batches
            assert time.monotonic() < deadline, page.content()
            time.sleep(0.2)
            page.reload()
        assert "sandbox/echo" in page.locator("#by-model").inner_text()
        others = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
        assert others.models.retrieve("openai/gpt-5-mini").model_extra["status"] == "no_channel"
        with pytest.raises(openai.NotFoundError) as info:  # what the banner says the others answer
            others.chat.completions.create(model="openai/gpt-5-mini", messages=[{"role": "user", "content": "hi"}])
        assert info.value.code == "model_not_available"
    finally:
        context.close()
