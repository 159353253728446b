"""How release_0_1.json was made: rows written by OneKey 0.1.0 itself (commit c5e46b1), the
release whose stores `create_all` built before schema migrations existed.

It runs that release's real core, edge and account app on SQLite with the test fakes (an
OpenAI-compatible provider, SMTP, an OIDC provider), goes through what users and operators do
— sign in by email and by Google, create a project and a key in the dashboard, buy credit, send
paid requests through the edge with the OpenAI SDK, store a Responses API response, ask for a
sign-in link left unused — and dumps every row of both stores while the core still holds its
credit lease. Run from a copy of that release, with this script copied in:

    git archive c5e46b1 | tar -x -C /tmp/onekey-0.1.0
    cp tests/migrations/make_release_fixture.py /tmp/onekey-0.1.0/tests/migrations/
    cd /tmp/onekey-0.1.0 && $VENV/bin/python -m tests.migrations.make_release_fixture \\
        $REPO/tests/migrations/release_0_1.json

The secrets in the file (an API key, a session cookie) belong to that throwaway store only.
"""
from __future__ import annotations

import datetime as dt
import json
import pathlib
import sys
import tempfile
import time

import grpc
import openai
import sqlalchemy as sa

from account.app import create_app
from account.mail import SmtpMailer
from account.settings import AccountSettings, OAuthProviderSettings, Secret, SmtpSettings
from account.store.db import make_engine, session_factory
from account.store.models import Base as AccountBase
from account.store.repositories import PurchaseRepository
from onekey.v1 import admin_pb2
from router_core.settings import CoreSettings
from router_core.tables import Base as CoreBase
from tests.account.conftest import Browser
from tests.conftest import openai_channel
from tests.fakes.oauth_provider import FakeOAuthProvider, FakeUser
from tests.fakes.openai_provider import FakeOpenAI
from tests.fakes.smtp import FakeSmtp
from tests.stack import SERVICE_TOKEN, LoopThread, Stack

USER_AGENT = "onekey-release-fixture"  # the session's browser, as flask-login's session protection sees it
COOKIE = "onekey-session"


def dump(url: str, metadata: sa.MetaData) -> dict[str, list[dict]]:
    def plain(value):
        return value.isoformat() if isinstance(value, dt.datetime) else value

    engine = sa.create_engine(url)
    with engine.connect() as conn:
        out = {t.name: [{k: plain(v) for k, v in row._mapping.items()}
                        for row in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
               for t in metadata.sorted_tables}
    engine.dispose()
    return out


def main(out: pathlib.Path) -> None:
    root = pathlib.Path(tempfile.mkdtemp(prefix="onekey-release-"))
    loop = LoopThread()
    provider = FakeOpenAI()
    loop.run(provider.start())
    smtp = FakeSmtp().start()
    google = FakeOAuthProvider(kind="oidc", client_id="google-client", client_secret="google-secret").start()
    core = Stack(CoreSettings(database_url=f"sqlite:///{root}/router.db", channels=(openai_channel(provider),),
                              usage_flush_interval=0.05), loop=loop)
    settings = AccountSettings(
        listen="127.0.0.1:0", database_url=f"sqlite:///{root}/account.db", public_url="http://localhost",
        api_base_url=core.base_url, core=f"127.0.0.1:{core.core.port}", core_timeout=5.0,
        service_token=Secret(SERVICE_TOKEN), secret_key=Secret("test-secret-key"),
        smtp=SmtpSettings(host=smtp.host, port=smtp.port, starttls=False), mail_from="OneKey <no-reply@onekey.test>",
        google=OAuthProviderSettings(name="google", client_id=google.client_id,
                                     client_secret=Secret(google.client_secret), metadata_url=google.metadata_url))
    channel = grpc.insecure_channel(settings.core)
    app = create_app(settings, core_channel=channel, mailer=SmtpMailer(settings.smtp))

    ada = Browser(app, smtp)
    ada.client.environ_base["HTTP_USER_AGENT"] = USER_AGENT
    ada.sign_in_by_email("ada@example.com")
    [project_id] = ada.project_ids()
    page = f"/projects/{project_id}"
    body = ada.submit(page, f"{page}/keys", {"name": "laptop"}).get_data(as_text=True)
    secret = body.split('<code id="secret">', 1)[1].split("<", 1)[0]
    sid = ada.client.get_cookie(COOKIE).value

    google.next_user = FakeUser(subject="g-100", email="grace@example.com")
    Browser(app, smtp).oauth("google", google)
    Browser(app, smtp).request_link("lin@example.com")  # a sign-in link never used

    with session_factory(make_engine(settings.database_url))() as db, db.begin():  # what the webhook leaves
        user_id = db.execute(sa.text("SELECT id FROM users WHERE email = 'ada@example.com'")).scalar_one()
        purchase = PurchaseRepository(db).add(project_id, user_id, 500, "usd")
        purchase.session_id, purchase.payment_intent, purchase.status = "cs_release", "pi_release", "paid"
    core.admin.AddCredit(admin_pb2.AddCreditRequest(project_id=project_id, amount_micro_usd=5_000_000,
                                                    idempotency_key="stripe:cs_release", reason="purchase"),
                         metadata=core.metadata)

    client = openai.OpenAI(base_url=core.base_url, api_key=secret, max_retries=0)
    for _ in range(21):  # the 20 free requests, then one paid from the balance
        client.chat.completions.create(model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "hi"}])
    client.responses.create(model="openai/gpt-4.1", input="hello")
    other = core.admin.CreateProject(admin_pb2.CreateProjectRequest(name="ops", credit_micro_usd=1_000_000),
                                     metadata=core.metadata)
    gone = core.admin.CreateKey(admin_pb2.CreateKeyRequest(project_id=other.id, name="old"), metadata=core.metadata)
    core.admin.RevokeKey(admin_pb2.RevokeKeyRequest(key_id=gone.key.id), metadata=core.metadata)
    time.sleep(1)  # usage events and response owners are written in batches

    fixture = {"made_by": "OneKey 0.1.0 (c5e46b1), tests/migrations/make_release_fixture.py",
               "secrets": {"api_key": secret, "revoked_api_key": gone.secret, "session_id": sid,
                           "user_agent": USER_AGENT, "project_id": project_id},
               "core": dump(f"sqlite:///{root}/router.db", CoreBase.metadata),
               "account": dump(settings.database_url, AccountBase.metadata)}
    out.write_text(json.dumps(fixture, indent=1, sort_keys=True) + "\n")
    channel.close()
    core.stop()
    loop.run(provider.stop())
    loop.close()
    smtp.stop()
    google.stop()


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]))
