"""The account app while its store (PostgreSQL) or the core cannot be reached (issue 22).

A fault proxy (tests/fakes/fault_proxy.py) stands between the real app and the real peer. For
each fault (refused, cut, held) the pages answer 503 with a message that says so and a
Retry-After, within a bound, never a 500 or a traceback; once the proxy passes bytes again the
same app (no restart) serves them and signs people in again.

Bounds, with the timeouts set here (store_timeout = core_timeout = 2 s): a held store costs a
page at most one timed-out answer plus one timed-out reconnect (2 + 2 s), a held core one call's
deadline (2 s); both are asserted under BOUND_S. Recovery is asserted within RECOVERY_S.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest

from tests.account.conftest import Browser
from tests.fakes.fault_proxy import FaultProxy
from tests.stores import build

TIMEOUT_S = 2.0
BOUND_S = 5.0
RECOVERY_S = 15.0
FAULTS = ("refuse", "cut", "hold")


def _pages(browser: Browser, project_id: str) -> list[str]:
    """The signed-in pages: projects, keys, one key, dashboard, billing (a key is made for its page)."""
    made = browser.submit(f"/projects/{project_id}", f"/projects/{project_id}/keys", {"name": "ci"})
    assert made.status_code == 302, made.get_data(as_text=True)
    key_page = made.headers["Location"].removesuffix("/new")
    return ["/projects", f"/projects/{project_id}", key_page, f"/projects/{project_id}/dashboard",
            f"/projects/{project_id}/billing"]


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    start = time.monotonic()
    result = call()
    return result, time.monotonic() - start


def _assert_unavailable(response, elapsed: float, says: str, where: str) -> str:
    body = response.get_data(as_text=True)
    assert response.status_code == 503, f"{where}: {response.status_code} {body[:300]}"
    assert elapsed < BOUND_S, f"{where} took {elapsed:.1f} s"
    assert says in body, f"{where}: {body[:500]}"
    assert "Traceback" not in body and "sqlalchemy" not in body.lower() and "grpc" not in body.lower(), where
    assert int(response.headers["Retry-After"]) > 0, where
    return body


def _until_served(browser: Browser, paths: list[str]) -> float:
    """Seconds until every path answers 200 again (fails after RECOVERY_S)."""
    start = time.monotonic()
    while True:
        statuses = {path: browser.get(path).status_code for path in paths}
        if all(status == 200 for status in statuses.values()):
            return time.monotonic() - start
        assert time.monotonic() - start < RECOVERY_S, f"not back after {RECOVERY_S} s: {statuses}"
        time.sleep(0.2)


def _signed_in(app, smtp, email: str) -> tuple[Browser, str]:
    browser = Browser(app, smtp)
    assert browser.sign_in_by_email(email).status_code == 302
    [project_id] = browser.project_ids()
    return browser, project_id


# -- the store -----------------------------------------------------------------------------------


@pytest.fixture
def store_proxy(postgres_url):
    build(postgres_url, "account")  # PostgreSQL is upgraded by the operator, not by the app
    parts = urlsplit(postgres_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        yield proxy, proxy.url_for(postgres_url)


@pytest.mark.postgres
@pytest.mark.parametrize("fault", FAULTS)
def test_store_outage_answers_503_then_pages_and_sign_in_come_back(fault, store_proxy, make_app, smtp):
    proxy, url = store_proxy
    app = make_app(database_url=url, store_timeout=TIMEOUT_S)
    browser, project_id = _signed_in(app, smtp, f"store-{fault}@example.com")
    pages = _pages(browser, project_id)
    visitor = Browser(app, smtp)
    token = visitor.csrf("/login")
    for path in pages:
        assert browser.get(path).status_code == 200, path

    proxy.set(fault)
    if fault == "refuse":
        # `refuse` keeps open connections going: empty the pool, so the app needs a new one, as
        # after a server restart whose port is not open yet.
        app.extensions["onekey_engine"].dispose()

    says = "temporarily unavailable"
    for path in pages:
        response, elapsed = _timed(lambda: browser.get(path))
        _assert_unavailable(response, elapsed, says, path)
    response, elapsed = _timed(lambda: visitor.get("/login"))
    body = _assert_unavailable(response, elapsed, says, "the sign-in page")
    assert 'name="email"' not in body, "no form that cannot work"
    response, elapsed = _timed(lambda: visitor.client.post("/login/email", data={"csrf_token": token,
                                                                                 "email": "new@example.com"}))
    _assert_unavailable(response, elapsed, says, "asking for a sign-in link")
    response, elapsed = _timed(lambda: browser.client.post("/assistant", data={"question": "balance?"},
                                                           headers={"Accept": "application/json"}))
    assert response.status_code == 503 and elapsed < BOUND_S, "the assistant's script gets JSON"
    reply = response.get_json()
    assert reply["answer"] is None and says in reply["error"]
    assert app.test_client().get("/healthz").status_code == 200, "liveness does not depend on the store"
    ready, elapsed = _timed(lambda: app.test_client().get("/readyz"))
    assert ready.status_code == 503 and elapsed < BOUND_S
    assert ready.get_json() == {"status": "unavailable", "store": "unavailable", "core": "ok"}

    proxy.set("pass")
    _until_served(browser, pages)
    assert app.test_client().get("/readyz").get_json() == {"status": "ready", "store": "ok", "core": "ok"}
    assert visitor.get("/login").status_code == 200
    again, _ = _signed_in(app, smtp, f"back-{fault}@example.com")
    assert again.get("/projects").status_code == 200


# -- the core ------------------------------------------------------------------------------------


@pytest.fixture
def core_proxy(core):
    with FaultProxy("127.0.0.1", core.core.port) as proxy:
        yield proxy


@pytest.mark.parametrize("fault", FAULTS)
def test_core_outage_answers_503_then_pages_come_back(fault, core_proxy, make_app, smtp):
    direct, project_id = _signed_in(make_app(), smtp, f"core-{fault}@example.com")
    core_pages = _pages(direct, project_id)[1:]  # the project list is the store's alone: it keeps working
    app = make_app(core=core_proxy.address, core_timeout=TIMEOUT_S)  # the same store, the core through the proxy
    browser, _ = _signed_in(app, smtp, f"core-{fault}@example.com")
    if fault != "refuse":  # `refuse` spares open connections: the app's channel has none yet
        for path in core_pages:
            assert browser.get(path).status_code == 200, path

    core_proxy.set(fault)
    for path in core_pages:
        response, elapsed = _timed(lambda: browser.get(path))
        _assert_unavailable(response, elapsed, "not reachable right now", path)
    assert browser.get("/projects").status_code == 200
    ready, elapsed = _timed(lambda: app.test_client().get("/readyz"))
    assert ready.status_code == 503 and elapsed < BOUND_S
    assert ready.get_json() == {"status": "unavailable", "store": "ok", "core": "unavailable"}
    # Signing in does not need the core (the first project is offered again later).
    during = Browser(app, smtp)
    assert during.get("/login").status_code == 200
    assert during.sign_in_by_email(f"during-{fault}@example.com").status_code == 302
    assert during.get("/projects").status_code == 200

    core_proxy.set("pass")
    _until_served(browser, core_pages)
    assert app.test_client().get("/readyz").status_code == 200
    again, _ = _signed_in(app, smtp, f"core-back-{fault}@example.com")
    assert again.get(f"/projects/{again.project_ids()[0]}/dashboard").status_code == 200
