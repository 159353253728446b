"""Deleting an account while another session of the same user makes keys: no key made during the
delete outlives it (issue 23, finding 3). Checked in the core: every key of the deleted projects
is revoked, and none answers."""
from __future__ import annotations

import re
import threading
import time

import grpc
import pytest

from onekey.v1 import router_pb2, router_pb2_grpc
from tests.account.conftest import _CSRF, Browser
from tests.account.test_projects import core_keys

SECRET = re.compile(r'<code id="secret">([^<]+)</code>')


def _maker(browser: Browser, project_id: str, made: list[str], stop: threading.Event) -> None:
    """Create keys as fast as the app answers until told to stop (or signed out)."""
    page = f"/projects/{project_id}"
    token = _CSRF.search(browser.get(page).get_data(as_text=True)).group(1)
    n = 0
    while not stop.is_set():
        n += 1
        response = browser.client.post(f"{page}/keys", data={"csrf_token": token,
                                                             "name": f"{threading.get_ident()}-{n}"})
        if response.status_code != 302 or "/keys/" not in response.headers.get("Location", ""):
            if "/login" in response.headers.get("Location", ""):
                return  # signed out: the account is gone
            continue
        shown = browser.get(response.headers["Location"])
        match = SECRET.search(shown.get_data(as_text=True))
        if match:
            made.append(match.group(1))


@pytest.mark.parametrize("round_", range(3))
def test_keys_made_while_the_account_is_deleted_do_not_outlive_it(make_app, smtp, core, round_):
    app = make_app(magic_link_per_email=50, magic_link_per_email_ip=50, magic_link_per_ip=500)
    email = f"racing-{round_}@example.com"
    deleter = Browser(app, smtp)
    deleter.sign_in_by_email(email)
    [project_id] = deleter.project_ids()
    makers = [Browser(app, smtp) for _ in range(3)]
    for browser in makers:
        browser.sign_in_by_email(email)
    made: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_maker, args=(b, project_id, made, stop)) for b in makers]
    for thread in threads:
        thread.start()
    while len(made) < 3:  # the makers are under way
        time.sleep(0.01)
    done = deleter.submit("/settings/delete", "/settings/delete", {"email": email})
    assert done.status_code == 302 and "/login" in done.headers["Location"]
    time.sleep(0.3)
    stop.set()
    for thread in threads:
        thread.join(30)

    keys = core_keys(core, project_id)
    assert len(keys) >= len(made) >= 3
    working = [k.id for k in keys if not k.HasField("revoked_at")]
    assert working == [], f"{len(working)} of {len(keys)} keys outlived the account"
    router = router_pb2_grpc.RouterServiceStub(core.channel)
    time.sleep(core.core.settings.key_cache_ttl)
    for secret in made:
        with pytest.raises(grpc.RpcError) as refused:
            router.ValidateKey(router_pb2.ValidateKeyRequest(api_key=secret))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
