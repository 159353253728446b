from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from router_core.catalog import Catalog
from router_core.usage import StreamScanner, Usage, cost_micro_usd, parse_usage, usage_of_body


def test_parse_chat_and_responses_usage():
    assert parse_usage({"prompt_tokens": 10, "completion_tokens": 5,
                        "prompt_tokens_details": {"cached_tokens": 4},
                        "completion_tokens_details": {"reasoning_tokens": 2}}) == Usage(10, 5, 4, 2)
    assert parse_usage({"input_tokens": 7, "output_tokens": 3, "input_tokens_details": {"cached_tokens": 1},
                        "output_tokens_details": {"reasoning_tokens": 0}}) == Usage(7, 3, 1, 0)
    assert parse_usage({"prompt_tokens": 3, "completion_tokens": 1, "prompt_tokens_details": None}) == Usage(3, 1)


def test_unbelievable_usage_is_refused():
    assert parse_usage(None) is None
    assert parse_usage({"prompt_tokens": -1, "completion_tokens": 5}) is None
    assert parse_usage({"prompt_tokens": 10**12, "completion_tokens": 5}) is None
    assert parse_usage({"prompt_tokens": "10", "completion_tokens": 5}) is None
    assert parse_usage({"prompt_tokens": True, "completion_tokens": 5}) is None
    assert usage_of_body(b"<html>") is None


def test_cost_is_integer_micro_usd_with_cached_rate_and_rounds_up():
    model = Catalog.load().resolve("openai/gpt-4.1")  # $2 in, $8 out, $0.50 cached per 1M
    assert cost_micro_usd(model, Usage(1_000_000, 0)) == 2_000_000
    assert cost_micro_usd(model, Usage(1_000_000, 1_000_000, cached_input_tokens=1_000_000)) == 8_500_000
    assert cost_micro_usd(model, Usage(1, 0)) == 2  # 2 micro-USD exactly
    assert cost_micro_usd(model, Usage(0, 1)) == 8
    cost = cost_micro_usd(Catalog.load().resolve("openai/gpt-5-nano"), Usage(1, 0))  # 0.05 micro-USD
    assert cost == 1 and isinstance(cost, int)


def _events(objs: list[dict]) -> bytes:
    return b"".join(b"data: " + json.dumps(o).encode() + b"\n\n" for o in objs) + b"data: [DONE]\n\n"


STREAM = _events([
    {"choices": [{"delta": {"content": "a"}}], "usage": None},
    {"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": None},
    {"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2}},
])


def test_scanner_takes_usage_and_drops_usage_chunk_across_any_split():
    for size in (1, 3, 7, 64, len(STREAM)):
        scanner = StreamScanner(drop_usage_chunk=True)
        out = b"".join(scanner.feed(STREAM[i:i + size]) for i in range(0, len(STREAM), size)) + scanner.finish()
        assert scanner.usage == Usage(9, 2)
        assert b'"choices": []' not in out
        assert out.endswith(b"data: [DONE]\n\n") and out.count(b"data: ") == 3


def test_scanner_passes_bytes_unchanged_when_client_asked_for_usage():
    scanner = StreamScanner(drop_usage_chunk=False)
    out = scanner.feed(STREAM[:50]) + scanner.feed(STREAM[50:]) + scanner.finish()
    assert out == STREAM and scanner.usage == Usage(9, 2)


def test_scanner_reads_usage_before_a_trailing_empty_chunk_and_from_responses():
    stream = _events([{"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 1}},
                      {"choices": [{"delta": {}}], "usage": None}])
    scanner = StreamScanner(drop_usage_chunk=False)
    scanner.feed(stream)
    assert scanner.usage == Usage(4, 1)
    responses = (b'event: response.completed\ndata: {"type": "response.completed", "response": '
                 b'{"usage": {"input_tokens": 5, "output_tokens": 6}}}\n\n')
    scanner = StreamScanner(drop_usage_chunk=False)
    assert scanner.feed(responses) == responses
    assert scanner.usage == Usage(5, 6)


MIXED = [  # (event, is the usage-only chunk): compact and spaced nulls, CRLF endings, comments
    (b'data: {"choices":[{"delta":{"content":"a"}}],"usage":null}\n\n', False),
    (b'data: {"choices": [{"delta": {"content": "b"}}], "usage" : null}\r\n\r\n', False),
    (b': keep-alive\n\n', False),
    (b'data: {"choices":[{"delta":{},"finish_reason":"stop"}],"usage":null}\n\n', False),
    (b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}\r\n\r\n', True),
    (b'data: [DONE]\n\n', False),
]


@given(cuts=st.lists(st.integers(0, sum(len(e) for e, _ in MIXED)), max_size=12), drop=st.booleans())
def test_scanner_output_is_the_same_however_the_stream_is_cut(cuts, drop):
    stream = b"".join(e for e, _ in MIXED)
    bounds = sorted({0, len(stream), *cuts})
    scanner = StreamScanner(drop_usage_chunk=drop)
    out = b"".join(scanner.feed(stream[a:b]) for a, b in zip(bounds, bounds[1:])) + scanner.finish()
    assert out == b"".join(e for e, usage_only in MIXED if not (drop and usage_only))
    assert scanner.usage == Usage(7, 3)


def test_a_read_holding_a_whole_long_stream_keeps_every_event_and_takes_the_usage():
    content = [b'data: {"choices":[{"delta":{"content":"w%d"}}],"usage":null}\n\n' % i for i in range(50)]
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":19,"completion_tokens":50}}\n\n'
    stream = b"".join(content) + usage + b"data: [DONE]\n\n"
    for drop in (False, True):
        scanner = StreamScanner(drop_usage_chunk=drop)
        out = scanner.feed(stream) + scanner.finish()
        assert out == (stream.replace(usage, b"") if drop else stream)
        assert scanner.usage == Usage(19, 50)
