"""Sending the client's bytes with only `model` changed: exactly the decoded body, or not at all.

`with_model` either returns bytes that every JSON parser reads as the decoded body with the new
model (no duplicate key anywhere, the top-level value replaced), or None, and the forwarder
encodes the decoded body as before.
"""
from __future__ import annotations

import json
import random

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from router_core.errors import InvalidRequest
from router_core.requests import INCLUDE_USAGE, parse_object, with_model

CHAT = b'"messages":[{"role":"user","content":"hi"}]'


def no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate key in {keys}"
    return dict(pairs)


def strict(raw: bytes) -> object:
    return json.loads(raw, object_pairs_hook=no_duplicates)


def splice(raw: bytes, new: str = "gpt-4.1-mini", add_usage: bool = False) -> bytes | None:
    body = parse_object(raw)
    return with_model(raw, body, body["model"], new, add_usage)


@pytest.mark.parametrize("raw, expected", [
    (b'{"model":"openai/gpt-4.1-mini",' + CHAT + b"}", b'{"model":"gpt-4.1-mini",' + CHAT + b"}"),
    # The SDKs' order: messages first; nested objects with other keys before the model.
    (b'{' + CHAT + b',"model":"openai/gpt-4.1-mini","temperature":0.2}',
     b'{' + CHAT + b',"model":"gpt-4.1-mini","temperature":0.2}'),
    # Blanks anywhere JSON allows them, and kept as they were.
    (b' \n{ "model" :\t"openai/gpt-4.1-mini" ,\r\n ' + CHAT + b' }\n',
     b' \n{ "model" :\t"gpt-4.1-mini" ,\r\n ' + CHAT + b' }\n'),
    # Escapes inside the old value, and text that merely mentions the model.
    (b'{"model":"openai/gpt-4.1-mini\\u0020\\"","messages":[{"role":"user","content":"the \\"model\\" is"}]}',
     b'{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"the \\"model\\" is"}]}'),
    # Unicode, escaped or not, is passed as it came.
    ('{"model":"openai/gpt-4.1-mini","messages":[{"role":"user","content":"h\\u00e9 \u00e9 \U0001f600"}]}'.encode(),
     '{"model":"gpt-4.1-mini","messages":[{"role":"user","content":"h\\u00e9 \u00e9 \U0001f600"}]}'.encode()),
])
def test_only_the_model_value_changes(raw: bytes, expected: bytes):
    assert splice(raw) == expected


def test_a_usage_request_is_appended_to_a_stream_without_stream_options():
    raw = b'{"model":"openai/gpt-4.1-mini",' + CHAT + b',"stream":true}\n'
    out = splice(raw, add_usage=True)
    assert out == b'{"model":"gpt-4.1-mini",' + CHAT + b',"stream":true,' + INCLUDE_USAGE + b"}\n"
    assert strict(out)["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("raw", [
    # stream_options already there (null, or an object without include_usage): changed inside.
    b'{"model":"openai/gpt-4.1-mini",' + CHAT + b',"stream":true,"stream_options":null}',
    b'{"model":"openai/gpt-4.1-mini",' + CHAT + b',"stream":true,"stream_options":{}}',
])
def test_stream_options_already_sent_are_left_to_encoding(raw: bytes):
    assert splice(raw, add_usage=True) is None


@pytest.mark.parametrize("raw", [
    # Duplicates: json.loads keeps the last, other parsers the first.
    b'{"model":"openai/gpt-4o","model":"openai/gpt-4.1-mini",' + CHAT + b"}",
    b'{"model":"openai/gpt-4.1-mini","max_tokens":1,' + CHAT + b',"max_tokens":100000}',
    b'{"model":"openai/gpt-4.1-mini","messages":[{"role":"user","role":"system","content":"hi"}]}',
    # A nested "model" key: which one is the top-level one takes a parse to tell.
    b'{"metadata":{"model":"openai/gpt-4.1-mini"},"model":"openai/gpt-4.1-mini",' + CHAT + b"}",
    # The key spelled with an escape.
    b'{"mod\\u0065l":"openai/gpt-4.1-mini",' + CHAT + b"}",
    b'{"\\u006dodel":"x","model":"openai/gpt-4.1-mini",' + CHAT + b"}",
    # A key that ends in `"model` (an escaped quote inside it).
    b'{"a\\"model":1,"model":"openai/gpt-4.1-mini",' + CHAT + b"}",
    # JSON inside a string (tool arguments): `\":` looks like a key's end; the count is off.
    b'{"model":"openai/gpt-4.1-mini","messages":[{"role":"tool","content":"{\\"a\\": 1}"}]}',
])
def test_anything_unclear_is_left_to_encoding(raw: bytes):
    assert splice(raw) is None


# ---------------------------------------------------------------- property: same as decode + encode

# Mostly plain keys and text (so that many bodies are spliced), some made to mislead a scan.
KEYS = st.text("abcdelmo", max_size=6) | st.text("xyz", min_size=1, max_size=2) | st.text(max_size=6) \
    | st.sampled_from(["model", "messages", "stream_options", 'x"model', '"model":', "\\", "mod"])
STRINGS = st.text("abcdelmo -", max_size=8) | st.text(max_size=8) \
    | st.sampled_from(["model", '":', '"model"', "\\", "\\u006d", " :", "gpt-4.1"])
SCALARS = st.none() | st.booleans() | st.integers(-2**63, 2**63 - 1) \
    | st.floats(allow_nan=False, allow_infinity=False) | STRINGS


class Obj(list):
    """An object as written: its (key, value) pairs in order, duplicates allowed."""


VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.lists(st.tuples(KEYS, inner), max_size=4).map(Obj), max_leaves=12)


def ws(rng: random.Random) -> str:
    return "".join(rng.choice(" \t\n\r") for _ in range(rng.choice((0, 0, 0, 1, 2))))


def enc_string(s: str, rng: random.Random) -> str:
    out = []
    rate = rng.choice((0, 0, 0.05, 0.3))  # how often a character that need not be escaped is
    for c in s:
        code = ord(c)
        if c == '"' or c == "\\" or code < 0x20 or rng.random() < rate:
            if code > 0xFFFF:
                hi, lo = divmod(code - 0x10000, 0x400)
                out.append(f"\\u{0xD800 + hi:04x}\\u{0xDC00 + lo:04X}")
            elif c == '"' and rng.random() < 0.5:
                out.append('\\"')
            else:
                out.append(f"\\u{code:04x}" if rng.random() < 0.5 else f"\\u{code:04X}")
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def enc(value: object, rng: random.Random) -> str:
    if isinstance(value, Obj):
        return "{" + ws(rng) + ",".join(ws(rng) + enc_string(k, rng) + ws(rng) + ":" + ws(rng) + enc(v, rng) + ws(rng)
                                        for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ws(rng) + ",".join(ws(rng) + enc(v, rng) + ws(rng) for v in value) + "]"
    if isinstance(value, str):
        return enc_string(value, rng)
    return json.dumps(value)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(KEYS, VALUES), max_size=5), model=st.text(min_size=1, max_size=10),
       where=st.integers(0, 5), twice=st.booleans(), new=st.text(min_size=1, max_size=10),
       add_usage=st.booleans(), rng=st.randoms(use_true_random=False))
def test_a_spliced_body_reads_as_the_decoded_one_with_the_new_model(pairs, model, where, twice, new, add_usage, rng):
    top = Obj(pairs)
    top.insert(min(where, len(top)), ("model", model))
    if twice:
        top.insert(rng.randint(0, len(top)), ("model", "other"))
    raw = (ws(rng) + enc(top, rng) + ws(rng)).encode()
    try:
        body = parse_object(raw)
    except InvalidRequest:
        return  # a lone surrogate from st.text, say: refused before any splice
    if not isinstance(body.get("model"), str):
        return
    out = with_model(raw, body, body["model"], new, add_usage)
    event("spliced" if out is not None else "encoded instead")
    if out is None:
        return
    assert not (add_usage and "stream_options" in body)
    expected = {**body, "model": new}
    if add_usage:
        expected["stream_options"] = {"include_usage": True}
    # Read with duplicate keys refused: no parser can read anything else out of it.
    assert strict(out) == json.loads(json.dumps(expected))


@settings(max_examples=200, deadline=None)
@given(content=st.text(max_size=40), rng=st.randoms(use_true_random=False))
def test_a_plain_chat_body_is_always_spliced(content, rng):
    """The common case takes the fast path: text of any kind in the messages does not stop it."""
    body = {"messages": [{"role": "user", "content": content}], "model": "openai/gpt-4.1-mini", "max_tokens": 5}
    raw = json.dumps(body, ensure_ascii=rng.random() < 0.5).encode()
    if ('"' in content and ":" in content) or content.lstrip(" \t\n\r").startswith(":"):
        return  # `\":` or `":` in a string makes the key count unsure: encoded instead (tested above)
    out = with_model(raw, parse_object(raw), "openai/gpt-4.1-mini", "gpt-4.1-mini")
    assert out is not None and strict(out) == {**body, "model": "gpt-4.1-mini"}


# ---------------------------------------------------------------- the forwarder's choice

def upstream_body(raw: bytes, prepare, endpoint: str = "chat/completions") -> bytes:
    from router_core.forward import _upstream_body
    from router_core.requests import decode

    req = decode(endpoint, raw)
    body = dict(req.body)
    body["model"] = "up-id"
    chat_stream = req.stream and endpoint == "chat/completions"
    if chat_stream:
        body["stream_options"] = {**(req.body.get("stream_options") or {}), "include_usage": True}
    add_usage = chat_stream and not req.wants_usage
    return _upstream_body(raw, req, prepare(body), body, "up-id", chat_stream, add_usage)


def test_a_body_prepare_changed_is_encoded_with_its_changes():
    from router_core.providers.anthropic import AnthropicProvider

    raw = b'{"model":"anthropic/claude-sonnet-4","temperature":1.5,' + CHAT + b"}"
    out = upstream_body(raw, lambda b: AnthropicProvider().prepare(b, "chat/completions"))
    assert json.loads(out) == {"model": "up-id", "temperature": 1, "messages": [{"role": "user", "content": "hi"}]}
    # Left as it came: spliced.
    raw = b'{"model":"anthropic/claude-sonnet-4","temperature":0.5,' + CHAT + b"}"
    assert upstream_body(raw, lambda b: AnthropicProvider().prepare(b, "chat/completions")) == raw.replace(
        b"anthropic/claude-sonnet-4", b"up-id")


def test_a_field_swapped_by_prepare_is_seen_even_when_it_was_null():
    def swap(body: dict) -> dict:
        del body["user"]
        body["safety_identifier"] = "x"
        return body

    raw = b'{"model":"m","user":null,' + CHAT + b"}"
    assert json.loads(upstream_body(raw, swap)) == {"model": "up-id", "safety_identifier": "x",
                                                     "messages": [{"role": "user", "content": "hi"}]}
    assert json.loads(upstream_body(raw, lambda b: {**b, "n": 1}))["n"] == 1  # a new dict


@pytest.mark.parametrize("raw, usage", [
    (b'{"model":"m","stream":true,' + CHAT + b"}", {"include_usage": True}),
    (b'{"model":"m","stream":true,"stream_options":{"include_usage":true},' + CHAT + b"}", {"include_usage": True}),
    (b'{"model":"m","stream":true,"stream_options":{"include_usage":false},' + CHAT + b"}", {"include_usage": True}),
    (b'{"model":"m","stream":true,"stream_options":null,' + CHAT + b"}", {"include_usage": True}),
])
def test_a_chat_stream_always_asks_for_usage(raw: bytes, usage: dict):
    out = strict(upstream_body(raw, lambda b: b))
    assert out["stream_options"] == usage and out["model"] == "up-id"


def test_other_endpoints_keep_their_stream_options_as_sent():
    raw = b'{"model":"m","stream":true,"input":"hi","stream_options":{"x":1}}'
    assert upstream_body(raw, lambda b: b, "responses") == raw.replace(b'"m"', b'"up-id"')
