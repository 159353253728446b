"""The Messages API routes of the edge: Anthropic-shaped errors even where no core answers."""
from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request

import anthropic
import pytest

from edge.app import start
from edge.settings import EdgeSettings
from tests.procs import free_port


@pytest.fixture
def edge_without_core(loop_thread):
    runner, port = loop_thread.run(start(EdgeSettings(listen="127.0.0.1:0", core=f"127.0.0.1:{free_port()}",
                                                      max_body_bytes=2048, max_in_flight=1)))
    yield f"http://127.0.0.1:{port}"
    loop_thread.run(runner.cleanup())


def post(url: str, body: bytes, headers: dict) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_core_unreachable_is_an_anthropic_503(edge_without_core):
    client = anthropic.Anthropic(base_url=edge_without_core, api_key="ok-any", max_retries=0)
    with pytest.raises(anthropic.ServiceUnavailableError) as info:
        client.messages.create(model="claude-haiku-4-5", max_tokens=8, messages=[{"role": "user", "content": "x"}])
    assert info.value.body == {"type": "error", "error": {
        "type": "api_error", "message": "The OneKey routing core is unreachable; try again shortly."}}
    assert info.value.response.headers["x-onekey-request-id"].startswith("req_")


@pytest.mark.parametrize("method, path, status, type_", [
    ("GET", "/v1/messages", 405, "invalid_request_error"),
    ("GET", "/messages/count_tokens", 405, "invalid_request_error"),
    ("POST", "/v1/messages/batches", 404, "not_found_error"),
])
def test_wrong_urls_under_messages_are_anthropic_shaped(edge_without_core, method, path, status, type_):
    req = urllib.request.Request(edge_without_core + path, method=method, data=b"{}" if method == "POST" else None)
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(req, timeout=10)
    body = json.loads(info.value.read())
    assert info.value.code == status and body["type"] == "error" and body["error"]["type"] == type_
    assert path in body["error"]["message"]


def test_refusals_before_the_core_are_anthropic_shaped(edge_without_core):
    url = edge_without_core + "/v1/messages"
    status, body = post(url, b'{"model": "claude-haiku-4-5"}' + b" " * 4096, {"x-api-key": "ok-any"})
    assert (status, body["type"], body["error"]["type"]) == (413, "error", "request_too_large")
    status, body = post(url, b"{}", {"x-api-key": "ok-\u00e9t\u00e9"})  # not a key a client could hold
    assert (status, body["error"]["type"]) == (401, "authentication_error")
    status, body = post(url, b"{}", {})
    assert (status, body["error"]["type"]) == (401, "authentication_error") and "x-api-key" in body["error"]["message"]


def test_an_edge_at_its_in_flight_bound_answers_the_messages_route_with_529(edge_without_core):
    host, port = edge_without_core.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as held:
        # A request whose body never comes holds the one place in flight.
        held.sendall(b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ok-any\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        deadline = time.monotonic() + 10
        while True:
            client = anthropic.Anthropic(base_url=edge_without_core, api_key="ok-any", max_retries=0)
            try:
                client.messages.create(model="claude-haiku-4-5", max_tokens=8,
                                       messages=[{"role": "user", "content": "x"}])
            except anthropic.OverloadedError as err:
                assert err.body["error"]["type"] == "overloaded_error"
                assert err.response.headers["retry-after"] == "1"
                break
            except anthropic.APIStatusError:
                assert time.monotonic() < deadline, "the held request never took the place"
                time.sleep(0.05)
