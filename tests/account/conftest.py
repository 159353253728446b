"""Fixtures of the account tests: a real core on loopback, a real SMTP server, fake OAuth
providers, and the account app wired to them."""
from __future__ import annotations

import dataclasses
import re
import threading
from urllib.parse import urlsplit

import pytest
import requests
from waitress import wasyncore

from account.app import create_app
from account.core_client import open_channel
from account.mail import SmtpMailer
from account.server import create_server
from account.settings import AccountSettings, OAuthProviderSettings, Secret, SmtpSettings
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.fakes.oauth_provider import FakeOAuthProvider
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.smtp import FakeSmtp
from tests.stack import SERVICE_TOKEN, LoopThread, Stack

PUBLIC_URL = "http://localhost"


@pytest.fixture(scope="session")
def core(tmp_path_factory):
    """The real core and edge shared by the account tests (projects are per test): the sandbox
    provider, and an OpenAI channel to the fake provider for priced models."""
    db = tmp_path_factory.mktemp("core") / "router.db"
    loop = LoopThread()
    provider = FakeOpenAI()
    loop.run(provider.start())
    stack = Stack(CoreSettings(database_url=f"sqlite:///{db}", channels=(openai_channel(provider),),
                               usage_flush_interval=0.05), loop=loop)
    yield stack
    stack.stop()
    loop.run(provider.stop())
    loop.close()


@pytest.fixture(scope="session")
def smtp():
    server = FakeSmtp().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def google():
    fake = FakeOAuthProvider(kind="oidc", client_id="google-client", client_secret="google-secret").start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def github():
    fake = FakeOAuthProvider(kind="github", client_id="github-client", client_secret="github-secret").start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(tmp_path, core, smtp, google, github) -> AccountSettings:
    return AccountSettings(
        listen="127.0.0.1:0",
        database_url=f"sqlite:///{tmp_path}/account.db",
        public_url=PUBLIC_URL,
        api_base_url=core.shown_base_url,
        core=f"127.0.0.1:{core.core.port}",
        core_timeout=5.0,
        service_token=Secret(SERVICE_TOKEN),
        secret_key=Secret("test-secret-key"),
        smtp=SmtpSettings(host=smtp.host, port=smtp.port, starttls=False),
        mail_from="OneKey <no-reply@onekey.test>",
        google=OAuthProviderSettings(name="google", client_id=google.client_id,
                                     client_secret=Secret(google.client_secret), metadata_url=google.metadata_url),
        github=OAuthProviderSettings(name="github", client_id=github.client_id,
                                     client_secret=Secret(github.client_secret),
                                     authorize_url=f"{github.url}/login/oauth/authorize",
                                     token_url=f"{github.url}/login/oauth/access_token", api_base_url=f"{github.url}/"),
    )


@pytest.fixture
def make_app(settings):
    """make_app(**setting_overrides) -> a Flask app on the real core, SMTP and OAuth fakes."""
    channels = []

    def make(**overrides):
        s = dataclasses.replace(settings, **overrides)
        channel = open_channel(s.core)  # the app's own channel options
        channels.append(channel)
        app = create_app(s, core_channel=channel, mailer=SmtpMailer(s.smtp))
        app.config["TESTING"] = True  # exceptions surface; CSRF stays enforced
        return app

    yield make
    for channel in channels:
        channel.close()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def browser(app, smtp):
    return Browser(app, smtp)


class ServedApp:
    """The account app behind the production WSGI server (waitress) on a loopback port."""

    def __init__(self, settings: AccountSettings, app, port: int = 0) -> None:
        self.server, self.port = create_server(dataclasses.replace(settings, listen=f"127.0.0.1:{port}"), app)
        self._thread = threading.Thread(target=self.server.run, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.task_dispatcher.shutdown(timeout=5)
        wasyncore.close_all(self.server._map)  # ends run()'s loop from this thread
        self._thread.join(10)


_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
_LINK = re.compile(r"http://localhost(/login/email/[A-Za-z0-9_\-]+)")


class Browser:
    """A test client that fills in CSRF tokens the way a browser's form would."""

    def __init__(self, app, smtp: FakeSmtp) -> None:
        self.app = app
        self.client = app.test_client()
        self.smtp = smtp

    def get(self, path: str, **kw):
        return self.client.get(path, **kw)

    def csrf(self, page: str) -> str:
        match = _CSRF.search(self.client.get(page).get_data(as_text=True))
        assert match, f"no CSRF token on {page}"
        return match.group(1)

    def submit(self, page: str, action: str, data: dict | None = None, **kw):
        """POST a form found on `page` to `action`, with that page's CSRF token."""
        return self.client.post(action, data={"csrf_token": self.csrf(page), **(data or {})}, **kw)

    def request_link(self, email: str) -> str:
        """Ask for a magic link and return its path, as read from the mail that arrived."""
        before = len(self.smtp.sent_to(email))
        response = self.submit("/login", "/login/email", {"email": email})
        assert response.status_code == 200, response.get_data(as_text=True)
        message = self.smtp.wait_for(email, before + 1)
        match = _LINK.search(message.get_content())
        assert match, message.get_content()
        return match.group(1)

    def sign_in_by_email(self, email: str):
        link = self.request_link(email)
        return self.submit(link, link)

    def oauth(self, provider: str, fake: FakeOAuthProvider):
        """The whole redirect dance: app -> provider (real HTTP) -> app's callback."""
        start = self.client.get(f"/login/{provider}")
        assert start.status_code == 302, start.get_data(as_text=True)
        at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
        assert at_provider.status_code == 302, at_provider.text
        back = urlsplit(at_provider.headers["Location"])
        return self.client.get(f"{back.path}?{back.query}")

    def project_ids(self) -> list[str]:
        page = self.client.get("/projects").get_data(as_text=True)
        return re.findall(r'href="/projects/([0-9a-f-]{36})"', page)
