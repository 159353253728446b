"""The account assistant through OneKey's own edge and core, to a fake Anthropic provider: what it
is told (only the signed-in user's own facts), what it answers, and who pays."""
from __future__ import annotations

import dataclasses
import pathlib
import re

import grpc
import openai
import pytest

from account.app import create_app
from account.assistant.credential import system_key, system_project_id
from account.mail import SmtpMailer
from account.settings import AssistantSettings, Secret
from onekey.v1 import admin_pb2
from router_core.settings import ChannelSettings, CoreSettings
from tests.account.conftest import Browser
from tests.account.test_projects import create_key
from tests.fakes.providers import Behaviour, FakeAnthropic, closed_port_url
from tests.stack import LoopThread, Stack, usage_events

MODEL = "anthropic/claude-haiku-4-5"


@pytest.fixture(scope="module")
def anthropic_core(tmp_path_factory):
    """Core and edge with one Anthropic channel to the fake Anthropic provider."""
    loop = LoopThread()
    fake = FakeAnthropic()
    loop.run(fake.start())
    db = tmp_path_factory.mktemp("assistant-core") / "router.db"
    stack = Stack(CoreSettings(database_url=f"sqlite:///{db}", usage_flush_interval=0.05, channels=(
        ChannelSettings(name="anthropic-a", provider="anthropic", base_url=fake.url, api_key=Secret(fake.api_key)),)),
        loop=loop)
    stack.fake = fake
    yield stack
    stack.stop()
    loop.run(fake.stop())
    loop.close()


@pytest.fixture
def make_assistant_app(settings, anthropic_core):
    channels = []

    def make(**assistant):
        s = dataclasses.replace(settings, core=f"127.0.0.1:{anthropic_core.core.port}",
                                api_base_url=anthropic_core.shown_base_url, assistant=AssistantSettings(**assistant))
        channel = grpc.insecure_channel(s.core)
        channels.append(channel)
        app = create_app(s, core_channel=channel, mailer=SmtpMailer(s.smtp))
        app.config["TESTING"] = True
        return app

    yield make
    for channel in channels:
        channel.close()


def credit(core, project_id: str, micro: int) -> None:
    core.admin.AddCredit(admin_pb2.AddCreditRequest(project_id=project_id, amount_micro_usd=micro,
                                                    idempotency_key=f"test:{project_id}:{micro}", reason="test"),
                         metadata=core.metadata)


def user_with_usage(app, smtp, core, email: str, key_name: str, model: str, calls: int, micro: int):
    """A signed-in user whose project has credit, a key and `calls` requests to `model`."""
    browser = Browser(app, smtp)
    browser.sign_in_by_email(email)
    [project_id] = browser.project_ids()
    credit(core, project_id, micro)
    secret, _ = create_key(browser, project_id, key_name)
    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    for i in range(calls):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": f"private words {i}"}])
    usage_events(core, project_id, calls)
    prefix = re.search(r"^(\S{8})", secret).group(1)
    return browser, project_id, prefix


def ask(browser: Browser, project_id: str, question: str, json_reply: bool = True):
    page = f"/projects/{project_id}/dashboard"
    headers = {"Accept": "application/json"} if json_reply else {}
    return browser.submit(page, "/assistant", {"question": question, "project_id": project_id}, headers=headers)


def system_prompts(fake: FakeAnthropic, since: int) -> list[str]:
    return [m["content"] for r in fake.received[since:] for m in r.body["messages"] if m["role"] == "system"]


def test_prompt_holds_the_users_own_facts_and_nothing_of_another_user(make_assistant_app, smtp, anthropic_core):
    core, fake = anthropic_core, anthropic_core.fake
    app = make_assistant_app()
    alice, a_project, a_prefix = user_with_usage(app, smtp, core, "ann@example.com", "ann-laptop",
                                                 "anthropic/claude-sonnet-4-6", 2, 12_340_000)
    bob, b_project, b_prefix = user_with_usage(app, smtp, core, "ben@example.com", "ben-server",
                                               "anthropic/claude-opus-4-6", 3, 98_760_000)
    dashboard = alice.get(f"/projects/{a_project}/dashboard").get_data(as_text=True)
    assert 'id="assistant-form"' in dashboard and "assistant.js" in dashboard

    before = len(fake.received)
    question = "Which key used Claude Sonnet most, and why did my balance drop yesterday?"
    reply = ask(alice, a_project, question)
    assert reply.status_code == 200, reply.get_data(as_text=True)
    assert reply.get_json() == {"answer": question, "error": None}  # the fake echoes the question

    [sent] = fake.received[before:]
    assert sent.body["model"] == "claude-haiku-4-5"
    assert sent.body["messages"][-1] == {"role": "user", "content": question}
    [prompt] = system_prompts(fake, before)
    # Alice's own facts: balance, usage by model and key, key name and prefix, her project.
    assert "$12.34" in prompt and a_project in prompt
    assert "anthropic/claude-sonnet-4-6: 2 requests" in prompt
    assert "\"ann-laptop\"" in prompt and a_prefix in prompt
    assert "used anthropic/claude-sonnet-4-6 2 times" in prompt
    assert "Calling Claude from the OpenAI Python SDK" in prompt and core.base_url in prompt
    # Nothing of Bob's, and no request content, no secret.
    for foreign in (b_project, b_prefix, "ben-server", "ben@example.com", "$98.76", "claude-opus-4-6"):
        assert foreign not in prompt, foreign
    assert "private words" not in prompt and "ann@example.com" not in prompt

    # Bob's question carries his facts, not Alice's.
    before = len(fake.received)
    assert ask(bob, b_project, "What is my balance?").status_code == 200
    [prompt] = system_prompts(fake, before)
    assert "$98.76" in prompt and b_prefix in prompt and "$12.34" not in prompt and a_prefix not in prompt


def test_the_assistant_is_paid_by_the_system_project(make_assistant_app, smtp, anthropic_core):
    core = anthropic_core
    app = make_assistant_app(budget_usd=5)
    browser, project_id, _ = user_with_usage(app, smtp, core, "payer@example.com", "k", MODEL, 1, 1_000_000)
    assert ask(browser, project_id, "How do I call Claude from the OpenAI SDK?").status_code == 200
    system = system_project_id(app.extensions["onekey"].sessions)
    assert system and system != project_id
    [event] = usage_events(core, system, 1)
    assert (event.model, event.status) == (MODEL, 200)
    assert event.cost_micro_usd > 0 and event.charged_micro_usd == event.cost_micro_usd
    project = core.admin.GetProject(admin_pb2.GetProjectRequest(project_id=system), metadata=core.metadata)
    assert project.balance_micro_usd == 5_000_000 - event.charged_micro_usd
    assert len(usage_events(core, project_id, 1)) == 1, "the user's project paid nothing for the assistant"

    # The system key is reused, and the store holds it only encrypted.
    assert ask(browser, project_id, "And again?").status_code == 200
    assert system_project_id(app.extensions["onekey"].sessions) == system
    keys = core.admin.ListKeys(admin_pb2.ListKeysRequest(project_id=system), metadata=core.metadata).keys
    assert len(keys) == 1
    from account.store.models import ServiceCredential
    with app.extensions["onekey"].sessions() as db:
        row = db.get(ServiceCredential, "assistant")
        assert row.key_prefix == keys[0].prefix and row.key_prefix not in row.secret_encrypted


def test_an_operator_key_is_used_as_given(make_assistant_app, smtp, anthropic_core):
    core = anthropic_core
    operator_project, operator_key = core.new_key(credit_micro_usd=2_000_000)
    app = make_assistant_app(api_key=Secret(operator_key))
    browser = Browser(app, smtp)
    browser.sign_in_by_email("op@example.com")
    [project_id] = browser.project_ids()
    assert ask(browser, project_id, "hello").status_code == 200
    assert usage_events(core, operator_project, 1)[0].model == MODEL
    assert system_project_id(app.extensions["onekey"].sessions) is None


def test_the_answer_shows_without_script(make_assistant_app, smtp, anthropic_core):
    app = make_assistant_app()
    browser = Browser(app, smtp)
    browser.sign_in_by_email("noscript@example.com")
    [project_id] = browser.project_ids()
    page = ask(browser, project_id, "What is <b>my</b> balance?", json_reply=False)
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert 'id="assistant-answer">What is &lt;b&gt;my&lt;/b&gt; balance?<' in body


def test_questions_are_rate_limited_per_user(make_assistant_app, smtp, anthropic_core):
    app = make_assistant_app(per_minute=2)
    first, other = Browser(app, smtp), Browser(app, smtp)
    first.sign_in_by_email("eager@example.com")
    other.sign_in_by_email("calm@example.com")
    [project_id] = first.project_ids()
    [other_project] = other.project_ids()
    assert [ask(first, project_id, f"q{i}").status_code for i in range(3)] == [200, 200, 429]
    limited = ask(first, project_id, "q4").get_json()
    assert limited["answer"] is None and "Wait a minute" in limited["error"]
    assert ask(other, other_project, "q").status_code == 200, "limits are per user"


def test_engine_or_provider_down_is_a_clear_message_and_the_page_still_renders(make_assistant_app, smtp,
                                                                               anthropic_core):
    app = make_assistant_app(base_url=closed_port_url())
    browser = Browser(app, smtp)
    browser.sign_in_by_email("outage-a@example.com")
    [project_id] = browser.project_ids()
    down = ask(browser, project_id, "anyone there?")
    assert down.status_code == 503 and "cannot reach the OneKey engine" in down.get_json()["error"]
    page = ask(browser, project_id, "anyone there?", json_reply=False)
    assert page.status_code == 503 and "cannot reach the OneKey engine" in page.get_data(as_text=True)
    assert browser.get(f"/projects/{project_id}/dashboard").status_code == 200

    working = make_assistant_app()
    browser = Browser(working, smtp)
    browser.sign_in_by_email("outage-b@example.com")
    [project_id] = browser.project_ids()
    anthropic_core.fake.queue(*[Behaviour(kind="status", status=529)] * 3)
    try:
        failed = ask(browser, project_id, "still there?")
    finally:
        anthropic_core.fake.behaviours.clear()
    assert failed.status_code == 503 and "briefly unavailable" in failed.get_json()["error"]


def test_the_question_is_not_stored_anywhere(make_assistant_app, smtp, anthropic_core, settings, caplog):
    app = make_assistant_app()
    browser = Browser(app, smtp)
    browser.sign_in_by_email("canary@example.com")
    [project_id] = browser.project_ids()
    canary = "CANARY-7f3a9c-assistant"
    with caplog.at_level("DEBUG"):
        assert ask(browser, project_id, f"please repeat {canary}").get_json()["answer"].endswith(canary)
    app.extensions["onekey_engine"].dispose()
    database = pathlib.Path(settings.database_url.removeprefix("sqlite:///"))
    for path in database.parent.glob(database.name + "*"):  # the database and its WAL
        assert canary.encode() not in path.read_bytes(), path
    assert canary not in caplog.text
    ctx = app.extensions["onekey"]
    key = system_key(ctx.settings, ctx.sessions, ctx.core).reveal()
    assert key and key not in caplog.text, "the system key is never logged"


def test_asking_needs_a_session_and_a_csrf_token(make_assistant_app, smtp, anthropic_core):
    app = make_assistant_app()
    before = len(anthropic_core.fake.received)
    anonymous = app.test_client().post("/assistant", data={"question": "hi"})
    assert anonymous.status_code == 400  # no CSRF token without a session
    browser = Browser(app, smtp)
    browser.sign_in_by_email("csrf-a@example.com")
    assert browser.client.post("/assistant", data={"question": "hi"}).status_code == 400
    assert len(anthropic_core.fake.received) == before


def test_a_spent_budget_is_a_clear_message(make_assistant_app, smtp, anthropic_core, caplog):
    app = make_assistant_app(budget_usd=0)
    browser = Browser(app, smtp)
    browser.sign_in_by_email("broke@example.com")
    [project_id] = browser.project_ids()
    before = len(anthropic_core.fake.received)
    with caplog.at_level("WARNING"):
        reply = ask(browser, project_id, "hello?")
    assert reply.status_code == 503 and "budget is used up" in reply.get_json()["error"]
    assert len(anthropic_core.fake.received) == before, "refused by the engine, never sent upstream"
    assert "top up its project" in caplog.text


def test_the_system_key_is_kept_on_either_store_and_replaced_after_a_secret_key_change(database_url, settings,
                                                                                       anthropic_core):
    from account.core_client import CoreClient
    from account.store.db import make_engine, session_factory
    from tests.stack import SERVICE_TOKEN
    from tests.stores import build

    build(database_url, "account")
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    channel = grpc.insecure_channel(f"127.0.0.1:{anthropic_core.core.port}")
    core = CoreClient(channel, Secret(SERVICE_TOKEN), 5.0)
    try:
        first = system_key(settings, sessions, core)
        assert system_key(settings, sessions, core) == first
        project = system_project_id(sessions)
        rotated = dataclasses.replace(settings, secret_key=Secret("a-new-secret-key"))
        second = system_key(rotated, sessions, core)
        assert second != first and system_project_id(sessions) != project
        [old] = core.list_keys(project)
        assert old.revoked_at is not None, "the key nobody can read any more is revoked"
    finally:
        channel.close()
        engine.dispose()


def test_a_model_without_a_channel_here_is_said_plainly_and_not_offered_again(make_assistant_app, smtp,
                                                                              anthropic_core):
    app = make_assistant_app(model="openai/gpt-4.1-mini")  # this core has no OpenAI channel
    browser = Browser(app, smtp)
    browser.sign_in_by_email("unconfigured@example.com")
    [project_id] = browser.project_ids()
    before = len(anthropic_core.fake.received)
    reply = ask(browser, project_id, "How many requests did I make today?")
    error = reply.get_json()["error"]
    assert reply.status_code == 503 and "not set up on this OneKey" in error and "openai/gpt-4.1-mini" in error
    assert "try again" not in error.lower()
    page = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert 'id="assistant-off"' in page and 'id="assistant-form"' not in page, "no longer offered"
    again = ask(browser, project_id, "and now?")
    assert again.status_code == 503 and "not set up" in again.get_json()["error"]
    assert len(anthropic_core.fake.received) == before


def test_a_brief_provider_outage_says_try_again(make_assistant_app, smtp, anthropic_core):
    browser = Browser(make_assistant_app(), smtp)
    browser.sign_in_by_email("brief@example.com")
    [project_id] = browser.project_ids()
    anthropic_core.fake.queue(*[Behaviour(kind="status", status=503)] * 3)
    try:
        reply = ask(browser, project_id, "hello?")
    finally:
        anthropic_core.fake.behaviours.clear()
    assert reply.status_code == 503 and "briefly unavailable" in reply.get_json()["error"]
    page = browser.get(f"/projects/{project_id}/dashboard").get_data(as_text=True)
    assert 'id="assistant-form"' in page, "a passing outage does not hide the assistant"


def test_after_sign_out_the_assistant_asks_the_user_to_sign_in(make_assistant_app, smtp, anthropic_core):
    app = make_assistant_app()
    browser = Browser(app, smtp)
    browser.sign_in_by_email("signedout@example.com")
    [project_id] = browser.project_ids()
    page = f"/projects/{project_id}/dashboard"
    token = browser.csrf(page)  # the page stays open in a tab while the user signs out in another
    browser.submit("/projects", "/logout")
    before = len(anthropic_core.fake.received)
    reply = browser.client.post("/assistant", data={"csrf_token": token, "question": "hi", "project_id": project_id},
                                headers={"Accept": "application/json"})
    assert reply.status_code == 401
    assert "signed out" in reply.json["error"] and "Sign in" in reply.json["error"] and reply.json["sign_in"] == "/login"
    assert len(anthropic_core.fake.received) == before


@pytest.mark.slow
def test_in_a_browser_signed_out_in_another_tab_the_panel_asks_to_sign_in(settings, anthropic_core, smtp):
    from tests.account.conftest import ServedApp
    from tests.account.test_browser import CHROMIUM_ARGS, _chromium_path
    from tests.account.test_browser_layout import _sign_in
    from tests.procs import free_port

    path = _chromium_path()
    if path is None:
        pytest.skip("Debian's chromium is not installed: run scripts/ensure_chromium.sh")
    from playwright.sync_api import sync_playwright

    port = free_port()
    s = dataclasses.replace(settings, public_url=f"http://127.0.0.1:{port}", core=f"127.0.0.1:{anthropic_core.core.port}",
                            api_base_url=anthropic_core.shown_base_url, assistant=AssistantSettings())
    channel = grpc.insecure_channel(s.core)
    served = ServedApp(s, create_app(s, core_channel=channel, mailer=SmtpMailer(s.smtp)), port)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 390, "height": 844})
            page = context.new_page()
            page.set_default_timeout(15_000)
            dashboard = _sign_in(page, served, smtp, "tabs@example.com")
            other = context.new_page()  # another tab of the same browser signs out
            other.goto(dashboard)
            other.click("header.top nav >> text=Sign out")
            other.wait_for_url("**/login")
            page.fill("#assistant-question", "how much did I spend?")
            page.click("#assistant-ask")
            reply = page.locator("#assistant-log .a.error")
            reply.wait_for()
            assert "You are signed out" in reply.inner_text() and "not reachable" not in reply.inner_text()
            assert reply.locator("a[href='/login']").inner_text() == "Sign in again"
            browser.close()
    finally:
        served.stop()
        channel.close()
