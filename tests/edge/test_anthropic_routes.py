"""The Messages API routes of the edge: Anthropic-shaped errors even where no core answers."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import anthropic
import pytest

from edge.app import start
from edge.settings import EdgeSettings
from tests.procs import free_port


@pytest.fixture
def edge_without_core(loop_thread):
    runner, port = loop_thread.run(start(EdgeSettings(listen="127.0.0.1:0", core=f"127.0.0.1:{free_port()}")))
    yield f"http://127.0.0.1:{port}"
    loop_thread.run(runner.cleanup())


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
