"""Bad input and upstream faults: each gets an OpenAI-shaped error, and the service goes on."""
from __future__ import annotations

import json
import logging
import socket
import time
import urllib.error
import urllib.request

import openai
import pytest

from edge.keys import METRICS_SERVER
from edge.settings import EdgeSettings
from onekey.v1 import admin_pb2
from router_core.catalog import Catalog
from router_core.settings import CoreSettings
from tests.conftest import openai_channel
from tests.fakes.openai_provider import Behaviour
from tests.stack import Stack

CANARY = "CANARY-7f3a91-do-not-store"


def post(stack, path: str, body: bytes, key: str | None, headers: dict | None = None):
    req = urllib.request.Request(stack.base_url + path, data=body, method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def error_of(raw: bytes) -> dict:
    payload = json.loads(raw)
    assert set(payload) == {"error"}
    assert {"message", "type", "code", "param"} <= set(payload["error"])
    return payload["error"]


@pytest.mark.parametrize("body, status, code, param", [
    (b'{"model": "openai/gpt-4.1", "messages": [', 400, "invalid_json", None),
    (b'[1, 2, 3]', 400, "invalid_json", None),
    (b'"just a string"', 400, "invalid_json", None),
    (b'', 400, "invalid_request", None),
    (b'{"messages": [{"role": "user", "content": "hi"}]}', 400, "missing_required_parameter", "model"),
    (b'{"model": 42, "messages": [{"role": "user", "content": "hi"}]}', 400, "invalid_type", "model"),
    (b'{"model": "openai/gpt-4.1"}', 400, "missing_required_parameter", "messages"),
    (b'{"model": "openai/gpt-4.1", "messages": "hi"}', 400, "invalid_type", "messages"),
    (b'{"model": "openai/gpt-4.1", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}',
     400, "invalid_type", "stream"),
    (b'{"model": "no-such-model", "messages": [{"role": "user", "content": "hi"}]}', 404, "model_not_found", "model"),
    # A Responses-only model is served on chat completions by translation (once a 400
    # unsupported_endpoint); what the translation cannot carry is a 400 naming the field.
    (b'{"model": "openai/gpt-5.2-pro", "logit_bias": {"1": 1}, "messages": [{"role": "user", "content": "hi"}]}',
     400, "unsupported_parameter", "logit_bias"),
])
def test_bad_bodies_get_openai_errors(stack, client_key, fake_openai, body, status, code, param, caplog):
    caplog.set_level(logging.INFO)
    got, headers, raw = post(stack, "/chat/completions", body, client_key[1])
    assert got == status
    err = error_of(raw)
    assert err["code"] == code and err["param"] == param
    assert headers["x-onekey-request-id"].startswith("req_")
    assert fake_openai.received == [], "a bad request must never reach the provider"
    refusals = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused:")]
    assert any(headers["x-onekey-request-id"] in m and code in m for m in refusals), refusals


@pytest.mark.parametrize("key", ["", "ok-wrong", None])
def test_missing_empty_and_wrong_keys_get_401(stack, key):
    body = json.dumps({"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, raw = post(stack, "/chat/completions", body, key)
    assert status == 401
    assert error_of(raw)["code"] == "invalid_api_key"


def test_sdk_maps_errors_to_its_exceptions(stack, client_key):
    good = openai.OpenAI(base_url=stack.base_url, api_key=client_key[1], max_retries=0)
    bad = openai.OpenAI(base_url=stack.base_url, api_key="ok-not-a-key", max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
    with pytest.raises(openai.NotFoundError):
        good.chat.completions.create(model="nope/nothing", messages=msgs)
    with pytest.raises(openai.BadRequestError):
        good.chat.completions.create(model="openai/gpt-4.1", messages=[])


def test_oversized_body_is_413_and_a_large_one_passes(stack, client_key, fake_openai):
    big = "x" * (6 * 1024 * 1024)  # above gRPC's 4 MiB default, below the 10 MiB limit
    body = json.dumps({"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": big}]}).encode()
    status, _, raw = post(stack, "/chat/completions", body, client_key[1])
    assert status == 200, raw[:300]
    assert len(fake_openai.received[-1].raw) > 6 * 1024 * 1024
    huge = b'{"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "' + b"y" * (11 * 1024 * 1024) + b'"}]}'
    status, _, raw = post(stack, "/chat/completions", huge, client_key[1])
    assert status == 413
    assert error_of(raw)["code"] == "request_too_large"


def test_upstream_html_and_refused_connections_are_clean_errors(stack, client_key, fake_openai):
    client = openai.OpenAI(base_url=stack.base_url, api_key=client_key[1], max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    fake_openai.queue(Behaviour(kind="html"))
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
    assert info.value.status_code == 502
    assert "html" not in info.value.message.lower()
    # The provider goes away entirely: connection refused.
    stack.call(fake_openai.stop)
    with pytest.raises(openai.APIStatusError) as info:
        client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
    assert info.value.status_code == 502
    assert info.value.response.headers["x-should-retry"] == "false"
    assert "127.0.0.1" not in info.value.message
    # The service keeps serving.
    assert client.chat.completions.create(model="sandbox/echo", messages=msgs).choices[0].message.content == "hi"


def test_provider_error_is_scrubbed_of_keys(stack, client_key, fake_openai):
    client = openai.OpenAI(base_url=stack.base_url, api_key=client_key[1], max_retries=0)
    fake_openai.queue(Behaviour(kind="status", status=400, body={"error": {
        "message": f"Bad thing with key {fake_openai.api_key} at {fake_openai.url}/x",
        "type": "invalid_request_error", "code": "bad", "param": None}}))
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model="openai/gpt-4.1", messages=[{"role": "user", "content": "x"}])
    text = info.value.response.text
    assert fake_openai.api_key not in text and str(fake_openai.port) not in text
    assert error_of(info.value.response.content)["code"] == "bad"


def test_only_allowlisted_client_headers_reach_the_provider(stack, client_key, fake_openai):
    body = json.dumps({"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "hi"}]}).encode()
    status, _, _ = post(stack, "/chat/completions", body, client_key[1], headers={
        "x-api-key": "client-x-api-key", "x-goog-api-key": "client-goog", "Cookie": "session=abc",
        "X-Forwarded-For": "10.1.2.3", "Forwarded": "for=10.1.2.3", "OpenAI-Beta": "assistants=v2",
    })
    assert status == 200
    sent = {k.lower(): v for k, v in fake_openai.received[-1].headers.items()}
    assert sent["authorization"] == f"Bearer {fake_openai.api_key}"
    assert sent["openai-beta"] == "assistants=v2"
    for name in ("x-api-key", "x-goog-api-key", "cookie", "x-forwarded-for", "forwarded"):
        assert name not in sent
    assert client_key[1] not in json.dumps(sent)


def test_logs_carry_no_content_or_keys(stack, client_key, fake_openai, caplog):
    caplog.set_level(logging.DEBUG)
    client = openai.OpenAI(base_url=stack.base_url, api_key=client_key[1], max_retries=0)
    msgs = [{"role": "user", "content": f"tell me {CANARY}"}]
    client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
    fake_openai.queue(Behaviour(kind="html"))
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="openai/gpt-4.1", messages=msgs)
    post(stack, "/chat/completions", f'{{"model": "openai/gpt-4.1", "messages": [{CANARY}'.encode(), client_key[1])
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert CANARY not in logged
    assert client_key[1] not in logged and fake_openai.api_key not in logged


def test_models_list_and_get(stack, client_key):
    client = openai.OpenAI(base_url=stack.base_url, api_key=client_key[1], max_retries=0)
    models = client.models.list().data
    seed = [m for m in models if not m.model_extra["test_model"]]
    # the shipped catalog, and the models the fake OpenAI lists that the price package knows (gpt-5.5, gpt-6-sol)
    assert len(seed) == len([m for m in Catalog.load().all() if not m.is_test]) + 2 >= 40
    assert {m.owned_by for m in seed} == {"openai", "anthropic", "google", "xai"}
    sandbox = [m for m in models if m.id.startswith("sandbox/")]
    assert sandbox and all(m.model_extra["test_model"] for m in sandbox)
    opus = client.models.retrieve("anthropic/claude-opus-4-6")
    assert opus.model_extra["pricing"]["input_micro_usd"] == 5_000_000
    assert client.models.retrieve("claude-opus-4-6").id == "anthropic/claude-opus-4-6"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("anthropic/claude-9")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=stack.base_url, api_key="ok-bad", max_retries=0).models.list()


def test_revoked_key_stops_working_within_five_seconds(stack, client_key):
    project_id, secret = client_key
    client = openai.OpenAI(base_url=stack.base_url, api_key=secret, max_retries=0)
    msgs = [{"role": "user", "content": "hi"}]
    client.chat.completions.create(model="sandbox/echo", messages=msgs)
    keys = stack.admin.ListKeys(admin_pb2.ListKeysRequest(project_id=project_id), metadata=stack.metadata).keys
    stack.admin.RevokeKey(admin_pb2.RevokeKeyRequest(key_id=keys[0].id), metadata=stack.metadata)
    deadline = time.monotonic() + 5
    while True:
        try:
            client.chat.completions.create(model="sandbox/echo", messages=msgs)
        except openai.AuthenticationError:
            break
        assert time.monotonic() < deadline, "a revoked key still worked after 5 s"
        time.sleep(0.1)


def get(url: str, headers: dict | None = None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture
def metrics_stack(loop_thread, fake_openai, tmp_path):
    """Core + edge with the edge's metrics on an address of their own."""
    s = Stack(CoreSettings(database_url=f"sqlite:///{tmp_path}/router.db", channels=(openai_channel(fake_openai),),
                           usage_flush_interval=0.05), EdgeSettings(metrics_listen="127.0.0.1:0"), loop=loop_thread)
    yield s
    s.stop()


def test_health_and_metrics_on_their_own_address(metrics_stack):
    stack = metrics_stack
    _, key = stack.new_key()
    with urllib.request.urlopen(stack.base_url.replace("/v1", "/healthz"), timeout=5) as resp:
        assert json.loads(resp.read())["status"] == "ok"
    client = openai.OpenAI(base_url=stack.base_url, api_key=key, max_retries=0)
    client.chat.completions.create(model="sandbox/echo", messages=[{"role": "user", "content": CANARY}])
    metrics_port = stack.edge_runner.app[METRICS_SERVER].port
    assert metrics_port not in (0, stack.edge_port)
    status, headers, raw = get(f"http://127.0.0.1:{metrics_port}/metrics")
    text = raw.decode()
    assert status == 200 and headers["Server"] == "onekey"
    assert 'onekey_edge_requests_total{endpoint="chat/completions",status="2xx"}' in text
    assert CANARY not in text and key not in text
    # The metrics address serves metrics only.
    assert get(f"http://127.0.0.1:{metrics_port}/v1/models", {"Authorization": f"Bearer {key}"})[0] == 404


@pytest.mark.parametrize("path", ["/metrics", "/v1/metrics"])
def test_the_api_port_has_no_metrics(metrics_stack, path):
    status, _, raw = get(metrics_stack.base_url.replace("/v1", path))
    assert status == 404
    assert error_of(raw)["code"] == "unknown_url"
    assert b"onekey_edge" not in raw


def test_no_answer_names_the_server_software_or_its_version(stack, client_key):
    key = client_key[1]
    base = stack.base_url
    answers = [
        get(base.replace("/v1", "/healthz")),
        get(base + "/models", {"Authorization": f"Bearer {key}"}),
        get(base + "/models", {"Authorization": "Bearer ok-wrong"}),
        get(base.replace("/v1", "/metrics")),
        post(stack, "/chat/completions", b'{"model": "sandbox/echo", "messages": [{"role": "user", "content": "x"}]}',
             key),
        post(stack, "/chat/completions", b'{"model": "sandbox/echo", "stream": true, '
             b'"messages": [{"role": "user", "content": "x"}]}', key),
        post(stack, "/chat/completions", b"{", key),
    ]
    assert [status for status, _, _ in answers] == [200, 200, 401, 404, 200, 200, 400]
    for _, headers, _ in answers:
        assert headers["Server"] == "onekey", headers


@pytest.mark.parametrize("raw", [b"GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n", b"BLAH\r\n\r\n",
                                 b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"])
def test_malformed_http_answered_by_the_protocol_layer_names_no_version(stack, raw):
    with socket.create_connection(("127.0.0.1", stack.edge_port), timeout=5) as conn:
        conn.sendall(raw)
        answer = b""
        while chunk := conn.recv(4096):
            answer += chunk
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.") and " 400 " in head.split("\r\n")[0]
    assert "Server: onekey" in head.split("\r\n")
    assert "aiohttp" not in answer.decode("latin-1") and "Python/" not in head
