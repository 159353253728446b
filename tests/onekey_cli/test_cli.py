"""The operator commands as a user runs them: a subprocess speaking gRPC to a running core."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import openai
import pytest

from tests.stack import SERVICE_TOKEN


@pytest.fixture
def onekey(stack, tmp_path):
    config = tmp_path / "onekey.toml"
    config.write_text(f'[core]\nlisten = "127.0.0.1:{stack.core.port}"\n')
    env = {**os.environ, "ONEKEY_CONFIG": str(config), "ONEKEY_SERVICE_TOKEN": SERVICE_TOKEN}

    def run(*args: str, ok: bool = True):
        proc = subprocess.run([sys.executable, "-m", "onekey_cli", *args], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        if ok:
            assert proc.returncode == 0, proc.stderr
        return proc

    return run


def test_project_key_credit_balance_usage_round_trip(stack, onekey):
    project = json.loads(onekey("project", "create", "--name", "cli", "--credit", "5.25",
                                "--free-requests", "3", "--json").stdout)
    assert project["balance_micro_usd"] == "5250000" and project["free_requests"] == "3"
    pid = project["id"]
    assert onekey("project", "create").stdout.strip().count("-") == 4  # a bare UUID

    created = json.loads(onekey("key", "create", "--project", pid, "--name", "ci", "--json").stdout)
    secret = created["secret"]
    plain = onekey("key", "create", "--project", pid)
    assert plain.stdout.strip().startswith("ok-") and "shown only this once" in plain.stderr

    client = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
    client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "hi"}])

    keys = json.loads(onekey("key", "list", "--project", pid, "--json").stdout)["keys"]
    assert {k["name"] for k in keys} == {"ci", "key 1"}
    assert all(secret not in json.dumps(k) for k in keys)
    listing = onekey("key", "list", "--project", pid).stdout
    assert created["key"]["prefix"] in listing and secret not in listing

    credited = json.loads(onekey("credit", "add", "--project", pid, "--usd", "1.5",
                                 "--idempotency-key", "op-1", "--json").stdout)
    again = json.loads(onekey("credit", "add", "--project", pid, "--usd", "1.5",
                              "--idempotency-key", "op-1", "--json").stdout)
    assert credited["applied"] is True and again["applied"] is False
    assert "$6.75" in onekey("balance", "--project", pid).stdout

    usage = json.loads(onekey("usage", "--project", pid, "--by", "model", "--json").stdout)
    assert usage["rows"][0]["group"] == "sandbox/echo" and usage["rows"][0]["requests"] == "1"

    revoked = json.loads(onekey("key", "revoke", created["key"]["id"], "--json").stdout)
    assert revoked["revoked_at"]
    with pytest.raises(openai.AuthenticationError):
        for _ in range(100):  # within the key cache's staleness bound
            client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": "x"}])
            time.sleep(0.1)


def test_bad_input_and_bad_credential_are_clear(stack, onekey, tmp_path):
    bad = onekey("credit", "add", "--project", "x", "--usd", "1.0000001", ok=False)
    assert bad.returncode == 2 and "more than 6 decimals" in bad.stderr
    missing = onekey("balance", "--project", "00000000-0000-0000-0000-000000000000", ok=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
    env = {**os.environ, "ONEKEY_CONFIG": str(tmp_path / "onekey.toml"), "ONEKEY_SERVICE_TOKEN": "wrong"}
    proc = subprocess.run([sys.executable, "-m", "onekey_cli", "project", "create"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "service credential" in proc.stderr


def test_rate_limits_are_set_on_create_and_later(stack, onekey):
    project = json.loads(onekey("project", "create", "--rate-limit", "100", "--json").stdout)
    assert project["rate_limit_rpm"] == "100"
    pid = project["id"]
    created = json.loads(onekey("key", "create", "--project", pid, "--rate-limit", "2", "--json").stdout)
    assert created["key"]["rate_limit_rpm"] == "2"
    key_id = created["key"]["id"]
    assert "2/min" in onekey("key", "list", "--project", pid).stdout

    client = openai.OpenAI(base_url=stack.base_url, api_key=created["secret"], max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    for _ in range(2):
        client.chat.completions.create(model="sandbox/echo", messages=msgs)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="sandbox/echo", messages=msgs)

    assert "none" in onekey("limits", "set", "--key", key_id, "--rate-limit", "0").stdout
    client.chat.completions.create(model="sandbox/echo", messages=msgs)  # no limit now
    cleared = onekey("limits", "set", "--key", key_id, "--rate-limit", "default").stdout
    assert "default" in cleared
    shown = onekey("limits", "set", "--project", pid, "--rate-limit", "0").stdout
    assert f"project {pid}: none" in shown
    bad = onekey("limits", "set", "--key", key_id, "--rate-limit", "-3", ok=False)
    assert bad.returncode == 2 and "cannot be negative" in bad.stderr
    both = onekey("limits", "set", "--key", key_id, "--project", pid, "--rate-limit", "1", ok=False)
    assert both.returncode == 2


def test_key_spend_limit_and_expiry_are_set_and_cleared_from_the_cli(stack, onekey):
    pid = onekey("project", "create", "--credit", "1").stdout.strip()
    created = json.loads(onekey("key", "create", "--project", pid, "--name", "capped", "--spend-limit", "2.50",
                                "--expires", "2099-12-31", "--json").stdout)
    assert created["key"]["spend_limit_micro_usd"] == "2500000"
    assert created["key"]["expires_at"].startswith("2100-01-01T00:00:00")  # works through 2099-12-31 UTC
    listing = onekey("key", "list", "--project", pid).stdout
    assert "$2.5 " in listing and "2100-01-01" in listing and "active" in listing
    key_id = created["key"]["id"]
    changed = onekey("key", "update", key_id, "--spend-limit", "0.75").stdout
    assert "spend limit $0.75/month" in changed and "expires 2100-01-01" in changed
    cleared = onekey("key", "update", key_id, "--no-spend-limit", "--no-expiry").stdout
    assert "spend limit none" in cleared and "expires never" in cleared
    past = onekey("key", "update", key_id, "--expires", "2001-01-01", ok=False)
    assert past.returncode != 0 and "expiry must be in the future" in past.stderr
    taken = onekey("key", "create", "--project", pid, "--name", "capped", ok=False)
    assert taken.returncode != 0 and "already exists" in taken.stderr
