"""The one parse step of a request body: every hostile body is a clear InvalidRequest, fast."""
from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router_core.errors import InvalidRequest
from router_core.requests import MAX_DEPTH, decode, parse_object

CHAT = b'"messages": [{"role": "user", "content": "hi"}]'


def nested(depth: int, where: str = "metadata") -> bytes:
    return (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "' + where.encode() + b'": '
            + b"[" * depth + b"]" * depth + b"}")


@pytest.mark.parametrize("raw, code, param", [
    (b'{"model": "openai/gpt-4.1\xff", ' + CHAT + b"}", "invalid_encoding", None),
    (b'{"model": "openai/gpt-4.1-mini\\ud800", ' + CHAT + b"}", "invalid_encoding", None),
    (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "\\udc00key": 1}', "invalid_encoding", None),
    (b'{"model": "openai/gpt-4.1", "messages": [{"role": "user", "content": "\\ude00\\ud83d"}]}',
     "invalid_encoding", None),
    (nested(MAX_DEPTH), "nesting_too_deep", None),
    (nested(5000), "nesting_too_deep", None),
    (b'{"model": "x", "messages": ' + b"[" * 300 + b"]" * 300 + b"}", "nesting_too_deep", None),
    (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "temperature": NaN}', "invalid_number", None),
    (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "temperature": -Infinity}', "invalid_number", None),
    (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "temperature": 1e999}', "invalid_number", None),
    (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "seed": ' + b"9" * 5000 + b"}", "invalid_number", None),
    (b'{"model": "openai/gpt-4.1", ' + CHAT + b', "seed": 18446744073709551616}', "invalid_number", None),
    (b"[]", "invalid_json", None),
    (b"null", "invalid_json", None),
    (b'{"model": "a"', "invalid_json", None),
    (b'{"model": ["openai/gpt-4.1"], ' + CHAT + b"}", "invalid_type", "model"),
    (b'{"model": "", ' + CHAT + b"}", "invalid_type", "model"),
    (b'{"model": "m", "stream": 1, ' + CHAT + b"}", "invalid_type", "stream"),
    (b'{"model": "m", "stream_options": [], ' + CHAT + b"}", "invalid_type", "stream_options"),
    (b'{"model": "m", "stream_options": {"include_usage": "yes"}, ' + CHAT + b"}", "invalid_type",
     "stream_options.include_usage"),
    (b'{"model": "m", "max_tokens": "10", ' + CHAT + b"}", "invalid_type", "max_tokens"),
    (b'{"model": "m", "max_completion_tokens": 1.5, ' + CHAT + b"}", "invalid_type", "max_completion_tokens"),
    (b'{"model": "m", "max_tokens": true, ' + CHAT + b"}", "invalid_type", "max_tokens"),
    (b'{"model": "m", "n": -1, ' + CHAT + b"}", "invalid_type", "n"),
])
def test_hostile_bodies_are_clear_400s(raw, code, param):
    with pytest.raises(InvalidRequest) as err:
        decode("chat/completions", raw)
    assert (err.value.code, err.value.param) == (code, param)
    # The message can travel in a gRPC status (it used to quote a lone surrogate and hang).
    err.value.message.encode("utf-8")


@pytest.mark.parametrize("raw, param", [
    (b'{"model": "m", "input": "x", "max_output_tokens": "9"}', "max_output_tokens"),
    (b'{"model": "m", "input": "x", "previous_response_id": 12}', "previous_response_id"),
])
def test_responses_fields_are_typed(raw, param):
    with pytest.raises(InvalidRequest) as err:
        decode("responses", raw)
    assert err.value.param == param


def test_good_bodies_pass_whole():
    ok = decode("chat/completions", nested(MAX_DEPTH - 1)[:-1] + b', "x": "\\ud83d\\ude00 \\\\ud800"}')
    assert ok.model_name == "openai/gpt-4.1" and ok.body["x"] == "\U0001F600 \\ud800"
    assert decode("chat/completions", b'{"model": "m", "max_tokens": null, "n": 1, "seed": -9223372036854775808, '
                  + CHAT + b"}").body["seed"] == -(2**63)


def test_a_body_at_the_size_limit_is_parsed_in_well_under_a_second():
    body = json.dumps({"model": "m", "messages": [{"role": "user", "content": "a[{\"" * 8}] * 130_000}).encode()
    assert 9_000_000 < len(body) < 10 * 1024 * 1024
    started = time.perf_counter()
    decode("chat/completions", body)
    assert time.perf_counter() - started < 3.0  # generous: a shared 2-core machine


# Arbitrary JSON values, with strings that may hold lone surrogates and any code point.
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(exclude_categories=[])),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=25,
)


def _check(raw: bytes) -> None:
    started = time.perf_counter()
    try:
        decode("chat/completions", raw)
    except InvalidRequest as exc:
        exc.message.encode("utf-8")
    assert time.perf_counter() - started < 1.0


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_raise_anything_but_invalid_request(raw):
    _check(raw)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values, st.dictionaries(st.sampled_from(["model", "stream", "stream_options", "max_tokens",
                                                      "max_completion_tokens", "n", "messages", "metadata"]),
                                    json_values, max_size=5))
def test_arbitrary_json_never_raises_anything_but_invalid_request(value, fields):
    # allow_nan: Python's json writes NaN/Infinity, which the parser must refuse.
    for doc in (value, fields, {**fields, "model": "openai/gpt-4.1"}):
        try:
            raw = json.dumps(doc, ensure_ascii=True).encode()
        except (ValueError, RecursionError):
            continue
        _check(raw)
        try:
            _check(json.dumps(doc, ensure_ascii=False).encode("utf-8", "surrogatepass"))
        except ValueError:
            pass
