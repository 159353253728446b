"""Each provider module: its auth header, its request quirks, and its error dialect mapped to
OpenAI-shaped errors with a verdict (retry another channel, or the client's fault)."""
from __future__ import annotations

import json

import pytest

from router_core.catalog import Catalog
from router_core.errors import InvalidRequest
from router_core.providers import REGISTRY
from router_core.settings import ChannelSettings, Secret

CATALOG = Catalog.load()
KEY = "sk-live-secret-0123456789abcdef"


def channel(provider: str) -> ChannelSettings:
    return ChannelSettings(name=f"{provider}-a", provider=provider, base_url="https://internal.example:8443/v1",
                           api_key=Secret(KEY))


def error_of(provider: str, status: int, body: object, model: str = "openai/gpt-4.1"):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    failure = REGISTRY[provider].error(status, raw, channel(provider), CATALOG.resolve(model))
    payload = json.loads(failure.body)
    assert set(payload) == {"error"} and {"message", "type", "code", "param"} <= set(payload["error"])
    return failure, payload["error"]


def test_every_catalog_model_has_a_provider_that_serves_its_endpoints():
    for model in CATALOG.all():
        assert model.endpoints <= REGISTRY[model.provider].endpoints, model.id


def test_auth_headers_are_each_providers_own():
    assert REGISTRY["openai"].auth_headers(channel("openai")) == {"Authorization": f"Bearer {KEY}"}
    assert REGISTRY["anthropic"].auth_headers(channel("anthropic")) == {"x-api-key": KEY}
    assert REGISTRY["google"].auth_headers(channel("google")) == {"Authorization": f"Bearer {KEY}"}
    assert REGISTRY["xai"].auth_headers(channel("xai")) == {"Authorization": f"Bearer {KEY}"}


def test_openai_client_errors_pass_through_and_are_not_retried():
    failure, err = error_of("openai", 400, {"error": {"message": "Bad temperature", "type": "invalid_request_error",
                                                      "param": "temperature", "code": "invalid_value"}})
    assert (failure.status, failure.retryable) == (400, False)
    assert err == {"message": "Bad temperature", "type": "invalid_request_error", "param": "temperature",
                   "code": "invalid_value"}


@pytest.mark.parametrize("status, shown", [(429, 429), (500, 502), (502, 502), (503, 503), (504, 504), (529, 503)])
def test_provider_trouble_is_retried_and_shown_as_gateway_trouble(status, shown):
    failure, _ = error_of("openai", status, {"error": {"message": "busy", "type": "server_error"}})
    assert failure.retryable and failure.status == shown


def test_a_refused_channel_key_is_never_shown_as_the_clients_401():
    failure, err = error_of("openai", 401, {"error": {"message": f"Incorrect API key provided: {KEY}",
                                                      "type": "invalid_request_error", "code": "invalid_api_key"}})
    assert failure.retryable and failure.status == 502 and err["code"] == "provider_auth_failed"
    assert KEY not in failure.body.decode()


def test_openai_org_quota_is_provider_credit_not_the_clients():
    failure, err = error_of("openai", 429, {"error": {"message": "You exceeded your current quota",
                                                      "type": "insufficient_quota", "code": "insufficient_quota"}})
    assert failure.retryable and failure.status == 503 and err["code"] == "provider_credit_exhausted"


def test_keys_and_internal_addresses_are_scrubbed():
    failure, err = error_of("openai", 400, {"error": {
        "message": f"key {KEY} at https://internal.example:8443/v1/x and internal.example:8443 and AIzaSyAAAAAAAAAAAAAAAAAAAAAAAAA",
        "type": "invalid_request_error"}})
    text = failure.body.decode()
    assert KEY not in text and "internal.example" not in text and "AIza" not in text


def test_unreadable_answers_are_retried():
    failure, err = error_of("openai", 502, b"<html><body>502 Bad Gateway</body></html>")
    assert failure.retryable and failure.status == 502 and err["code"] == "bad_upstream_response"
    failure, _ = error_of("openai", 403, b"<html>Forbidden by proxy</html>")
    assert failure.retryable


def test_anthropic_out_of_credit_400_becomes_a_retryable_503():
    from tests.fakes.providers import ANTHROPIC_NO_CREDIT

    failure, err = error_of("anthropic", 400, ANTHROPIC_NO_CREDIT, "anthropic/claude-opus-4-6")
    assert failure.retryable and failure.status == 503
    assert err["code"] == "provider_credit_exhausted" and err["type"] == "api_error"


def test_anthropic_errors_keep_their_type_and_overload_is_retried():
    failure, err = error_of("anthropic", 400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "max_tokens: too large"}}, "anthropic/claude-opus-4-6")
    assert (failure.status, failure.retryable, err["type"], err["message"]) == (
        400, False, "invalid_request_error", "max_tokens: too large")
    failure, err = error_of("anthropic", 529, {"type": "error", "error": {
        "type": "overloaded_error", "message": "Overloaded"}}, "anthropic/claude-opus-4-6")
    assert failure.retryable and failure.status == 503 and err["code"] == "provider_overloaded"


def test_anthropic_request_quirks():
    anthropic = REGISTRY["anthropic"]
    assert anthropic.prepare({"model": "m", "temperature": 1.7, "n": 1}, "chat/completions")["temperature"] == 1
    assert anthropic.prepare({"model": "m", "temperature": 0.2}, "chat/completions")["temperature"] == 0.2
    with pytest.raises(InvalidRequest) as info:
        anthropic.prepare({"model": "m", "n": 3}, "chat/completions")
    assert info.value.param == "n"


def test_google_errors_in_a_list_and_its_bad_key_reason():
    failure, err = error_of("google", 400, [{"error": {"code": 400, "message": "Request contains an invalid argument.",
                                                       "status": "INVALID_ARGUMENT"}}], "google/gemini-2.5-pro")
    assert (failure.status, failure.retryable) == (400, False)
    assert err["code"] == "invalid_argument" and err["type"] == "invalid_request_error"
    failure, err = error_of("google", 400, {"error": {
        "code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}},
        "google/gemini-2.5-pro")
    assert failure.retryable and err["code"] == "provider_auth_failed"
    failure, err = error_of("google", 429, [{"error": {"code": 429, "message": "Quota", "status": "RESOURCE_EXHAUSTED"}}],
                            "google/gemini-2.5-pro")
    assert failure.retryable and failure.status == 429 and err["type"] == "rate_limit_error"


def test_xai_string_errors_bad_key_and_preview_note():
    failure, err = error_of("xai", 400, {"code": "Client specified an invalid argument",
                                         "error": "Incorrect API key provided: xa***ef. You can obtain an API key "
                                                  "from https://console.x.ai."}, "xai/grok-4")
    assert failure.retryable and err["code"] == "provider_auth_failed"
    failure, err = error_of("xai", 400, {"code": "Client specified an invalid argument",
                                         "error": "max_tokens is too large"}, "xai/grok-4")
    assert (failure.status, failure.retryable, err["message"]) == (400, False, "max_tokens is too large")
    failure, err = error_of("xai", 404, {"code": "Some requested entity was not found",
                                         "error": "The model grok-4 does not exist"}, "xai/grok-4")
    assert failure.status == 404 and "preview" in err["message"]
