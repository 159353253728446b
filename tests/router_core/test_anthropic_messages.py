"""The Messages API wire: usage from native answers and streams, errors in Anthropic's shape."""
from __future__ import annotations

import json

import pytest

from router_core.catalog import Catalog
from router_core.providers.anthropic_messages import (COUNT_TOKENS_WIRE, MESSAGES_WIRE, MessagesStreamReader,
                                                      parse_usage)
from router_core.providers.base import UpstreamFailure, openai_error
from router_core.usage import Usage, cost_micro_usd


def sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


START = sse("message_start", {"type": "message_start", "message": {
    "id": "msg_1", "type": "message", "role": "assistant", "content": [], "model": "claude-haiku-4-5",
    "usage": {"input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 40,
              "output_tokens": 1}}})
BODY = (START + sse("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}})
        + sse("ping", {"type": "ping"})
        + sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                      "delta": {"type": "text_delta", "text": "Hello there"}})
        + sse("content_block_stop", {"type": "content_block_stop", "index": 0}))
END = (sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
                             "usage": {"output_tokens": 25, "cache_read_input_tokens": 40}})
       + sse("message_stop", {"type": "message_stop"}))


def test_usage_counts_cache_traffic_as_part_of_the_input():
    usage = parse_usage({"input_tokens": 12, "cache_creation_input_tokens": 300, "cache_read_input_tokens": 40,
                         "output_tokens": 25})
    assert usage == Usage(input_tokens=352, output_tokens=25, cached_input_tokens=40, cache_write_tokens=300)
    assert parse_usage({"input_tokens": 5, "output_tokens": 2}) == Usage(5, 2)
    assert parse_usage({"input_tokens": 5, "cache_creation_input_tokens": None, "output_tokens": 2}) == Usage(5, 2)
    for bad in (None, {}, {"input_tokens": -1, "output_tokens": 2}, {"input_tokens": "9", "output_tokens": 1},
                {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": 10**12}):
        assert parse_usage(bad) is None


@pytest.mark.parametrize("size", [1, 7, 64, 10_000])
def test_a_stream_passes_byte_for_byte_and_its_usage_is_read_across_reads(size):
    whole = BODY + END
    reader = MESSAGES_WIRE.scanner(drop_usage_chunk=True)
    out = b"".join(reader.feed(whole[i:i + size]) for i in range(0, len(whole), size)) + reader.finish()
    assert out == whole, "nothing added, dropped or held back"
    assert reader.usage == Usage(input_tokens=352, output_tokens=25, cached_input_tokens=40, cache_write_tokens=300)


@pytest.mark.parametrize("size", [1, 5, 10_000])
@pytest.mark.parametrize("kind, status", [("overloaded_error", 529), ("api_error", 500), ("odd_error", 502)])
def test_the_providers_own_error_event_is_noticed_and_passed_on(size, kind, status):
    whole = BODY + sse("error", {"type": "error", "error": {"type": kind, "message": "Overloaded"}})
    reader = MessagesStreamReader()
    out = b"".join(reader.feed(whole[i:i + size]) for i in range(0, len(whole), size)) + reader.finish()
    assert out == whole and reader.failure_status == status
    fine = MessagesStreamReader()
    fine.feed(BODY + END)
    assert fine.failure_status is None


def test_a_cut_stream_keeps_the_reported_input_side_only():
    reader = MessagesStreamReader()
    reader.feed(BODY)
    assert reader.usage is None
    assert reader.partial == Usage(input_tokens=352, output_tokens=0, cached_input_tokens=40, estimated=True,
                                   cache_write_tokens=300)
    assert MessagesStreamReader().partial is None
    assert MESSAGES_WIRE.output_texts([BODY], stream=True) == ["Hello there"]


def test_whole_answers_and_prompts_give_usage_and_text():
    answer = json.dumps({"type": "message", "content": [
        {"type": "thinking", "thinking": "hmm", "signature": "s"}, {"type": "text", "text": "hi"},
        {"type": "tool_use", "id": "t", "name": "f", "input": {"q": 1}}],
        "usage": {"input_tokens": 3, "output_tokens": 4}}).encode()
    assert MESSAGES_WIRE.usage_of_body(answer) == Usage(3, 4)
    assert MESSAGES_WIRE.usage_of_body(b"not json") is None
    assert MESSAGES_WIRE.output_texts([answer], stream=False) == ["hmm", "hi", '{"q": 1}']
    body = {"system": [{"type": "text", "text": "be brief"}], "messages": [
        {"role": "user", "content": "a"},
        {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "tool_result", "tool_use_id": "t",
                                                                      "content": [{"type": "text", "text": "c"}]}]}]}
    assert MESSAGES_WIRE.prompt_texts(body) == ["be brief", "a", "b", "c"]


def test_counting_tokens_is_free():
    assert COUNT_TOKENS_WIRE.billable is False and MESSAGES_WIRE.billable is True
    assert COUNT_TOKENS_WIRE.usage_of_body(b'{"input_tokens": 900}') == Usage()


@pytest.mark.parametrize("status, type_, code, want_status, want_type", [
    (400, "invalid_request_error", None, 400, "invalid_request_error"),
    (404, "not_found_error", None, 404, "not_found_error"),
    (422, "weird_type", None, 422, "invalid_request_error"),
    (429, "rate_limit_error", None, 429, "rate_limit_error"),
    (503, "api_error", "provider_overloaded", 529, "overloaded_error"),
    (503, "api_error", "provider_unavailable", 503, "api_error"),
    (503, "api_error", "provider_credit_exhausted", 503, "api_error"),
    (502, "api_error", "provider_auth_failed", 502, "api_error"),
    (504, "api_error", "upstream_timeout", 504, "timeout_error"),
])
def test_failures_take_anthropics_shape_and_status(status, type_, code, want_status, want_type):
    headers = [("x-should-retry", "false")]
    got = MESSAGES_WIRE.failure(UpstreamFailure(status, openai_error("it failed", type_, code), True, headers))
    assert (got.status, got.retryable, got.headers) == (want_status, True, headers)
    assert json.loads(got.body) == {"type": "error", "error": {"type": want_type, "message": "it failed"}}


def test_a_broken_stream_ends_with_an_error_event():
    event = MESSAGES_WIRE.stream_error("The provider stopped sending data.", "upstream_timeout")
    name, data = event.decode().strip().split("\n")
    assert name == "event: error"
    assert json.loads(data[6:]) == {"type": "error", "error": {
        "type": "timeout_error", "message": "The provider stopped sending data."}}


def test_cache_writes_and_reads_are_priced_at_their_own_rates():
    model = Catalog.load().resolve("anthropic/claude-opus-4-6")
    assert (model.input_price, model.cached_input_price, model.cache_write_input_price) == (
        5_000_000, 500_000, 6_250_000)
    usage = Usage(input_tokens=1_000_000 + 2_000_000 + 4_000_000, output_tokens=1_000_000,
                  cached_input_tokens=2_000_000, cache_write_tokens=4_000_000)
    # $5 fresh + 2 x $0.50 read + 4 x $6.25 written + $25 output
    assert cost_micro_usd(model, usage) == 5_000_000 + 1_000_000 + 25_000_000 + 25_000_000
    assert all(m.cache_write_input_price == m.input_price * 5 // 4
               for m in Catalog.load().all() if m.provider == "anthropic")
