"""Property-based: arbitrary bytes and arbitrary JSON through the real edge and core.

Every answer is either a 2xx from the (fake) provider or an OpenAI-shaped 4xx, and it comes
quickly; OneKey itself never answers 5xx. Example counts are kept modest so this runs in
seconds; the parse step alone is fuzzed harder in tests/router_core/test_requests.py.
"""
from __future__ import annotations

import http.client
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

PATHS = ("/v1/chat/completions", "/chat/completions", "/v1/responses", "/responses")
MODELS = ("openai/gpt-4.1-mini", "sandbox/echo", "gpt-4.1-mini", "no/such-model")
TIME_BOUND_S = 5.0  # generous for a shared machine; a hang would be the call's whole timeout

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(st.characters(exclude_categories=[]), max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=12,
)
FIELDS = ("model", "messages", "input", "stream", "stream_options", "max_tokens", "max_completion_tokens",
          "max_output_tokens", "n", "previous_response_id", "metadata", "temperature")


def _encode(doc: dict, ascii_only: bool) -> bytes | None:
    try:
        return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    except (ValueError, RecursionError):
        return None


# JSON values a parser may choke on, spliced in where a value goes.
HOSTILE_VALUES = st.sampled_from([
    b'"\\ud800"', b'"x\\udfff"', b'"\\udc00\\ud800"', b"NaN", b"-Infinity", b"1e999", b"9" * 400,
    b"18446744073709551616", b'"\xff\xfe"', b'"\xed\xa0\x80"', b"[" * 70 + b"]" * 70,
    b'{"a":' * 70 + b"1" + b"}" * 70, b"[" * 5000 + b"]" * 5000, b'{"\\ud800": 1}',
])


@st.composite
def bodies(draw) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "hostile"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "hostile":  # a valid request with one field's value replaced by a hostile one
        field = draw(st.sampled_from(FIELDS)).encode()
        return (b'{"model": "sandbox/echo", "messages": [{"role": "user", "content": "hi"}], "input": "hi", "'
                + field + b'": ' + draw(HOSTILE_VALUES) + b"}")
    doc = {"model": draw(st.sampled_from(MODELS)), "messages": [{"role": "user", "content": "hi"}], "input": "hi"}
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True)):
        doc[name] = draw(json_values)
    raw = _encode(doc, draw(st.booleans())) or b"{}"
    if kind == "mutated":  # valid JSON with a few bytes flipped or spliced in
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.binary(min_size=1, max_size=4)) + raw[at + draw(st.integers(0, 3)):]
    return raw


class Counter:
    cases = 0
    statuses: dict[int, int] = {}


@pytest.mark.slow
def test_any_body_gets_a_provider_answer_or_a_clear_4xx(stack, client_key):
    port = stack.edge_port
    key = client_key[1]

    @settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(PATHS), bodies(), st.sampled_from(["application/json", "text/plain", ""]))
    def check(path, body, content_type):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIME_BOUND_S * 2)
        headers = {"Authorization": f"Bearer {key}"}
        if content_type:
            headers["Content-Type"] = content_type
        started = time.monotonic()
        try:
            conn.request("POST", path, body=body, headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
        finally:
            conn.close()
        elapsed = time.monotonic() - started
        Counter.cases += 1
        Counter.statuses[resp.status] = Counter.statuses.get(resp.status, 0) + 1
        assert elapsed < TIME_BOUND_S, (path, body[:200], elapsed)
        assert resp.status < 500, (path, body[:200], resp.status, payload[:300])
        if resp.status >= 400:
            error = json.loads(payload)["error"]
            assert {"message", "type", "code", "param"} <= set(error)
            assert error["type"] == "invalid_request_error" or resp.status in (402, 429)

    check()
    print(f"fuzzed {Counter.cases} requests through the edge: statuses {sorted(Counter.statuses.items())}")
    assert Counter.cases >= 500
    assert any(200 <= s < 300 for s in Counter.statuses)  # the valid share really reached the provider
