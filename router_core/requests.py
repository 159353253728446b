"""Decoding and checking a client's request body before anything is sent upstream.

This is the one place where a body's bytes become a JSON object. It refuses, with an
InvalidRequest (400 `invalid_request_error`) and in time linear in the body's size, anything
a later step could choke on: bytes that are not UTF-8, strings (keys too) that hold a lone
surrogate, nesting deeper than MAX_DEPTH, NaN/Infinity, numbers too large for an integer or
a float, a top level that is not an object, and wrong types in the fields the core reads.
"""
from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import dataclass

from router_core.errors import InvalidRequest

ENDPOINTS = frozenset({"chat/completions", "responses", "messages", "messages/count_tokens"})
# Endpoints that carry a `messages` list (OpenAI's chat, Anthropic's Messages API).
_WITH_MESSAGES = frozenset({"chat/completions", "messages", "messages/count_tokens"})
# The catalog names a model's endpoints by API: counting tokens belongs to the Messages API.
_CATALOG_ENDPOINT = {"messages/count_tokens": "messages"}

# Arrays and objects may nest this deep; OpenAI's own bodies need well under ten levels.
MAX_DEPTH = 64
# An integer must fit in 64 bits (signed or unsigned), as every field of the API does.
MAX_INT = 2**64 - 1
MIN_INT = -(2**63)

# A \u escape of a surrogate: only then can a decoded string hold a lone one (raw surrogate
# bytes are not UTF-8 and fail decoding).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")

# Fields the core reads, and the JSON types each may hold (None: null allowed).
_INT_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens", "n")


@dataclass(slots=True)
class ClientRequest:
    body: dict
    model_name: str
    stream: bool
    wants_usage: bool  # the client itself asked for the usage chunk of a stream
    catalog_endpoint: str = ""  # the endpoint as the catalog lists it


def _bad_json(message: str, code: str = "invalid_json") -> InvalidRequest:
    return InvalidRequest(message, code=code)


def _too_deep() -> InvalidRequest:
    return _bad_json(f"The JSON body nests deeper than {MAX_DEPTH} levels.", code="nesting_too_deep")


def _depth_ok(body: dict, text: str, limit: int) -> bool:
    """True when no array/object nests deeper than limit; walked without recursion."""
    if text.count("[") + text.count("{") <= limit:  # too few brackets to nest that deep
        return True
    stack = [(body, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return False
        for value in (item.values() if type(item) is dict else item):
            if type(value) is dict or type(value) is list:
                stack.append((value, depth + 1))
    return True


def _reject_constant(name: str):
    raise _bad_json(f"`{name}` is not valid JSON: numbers must be finite.", code="invalid_number")


def _parse_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _bad_json("A number in the body is too large to be a float.", code="invalid_number")
    return value


def _parse_int(text: str) -> int | float:
    # Checked on the digits first: int() of a huge digit string is slow, then refused.
    if len(text) > 21:
        raise _bad_json("A number in the body is too large to be an integer.", code="invalid_number")
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise _bad_json("A number in the body is too large to be an integer.", code="invalid_number")
    return value


def _has_lone_surrogate(value: object) -> bool:
    """Walk the decoded value without recursion: any string or key holding a surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            for k, v in item.items():
                if _SURROGATE.search(k):
                    return True
                stack.append(v)
        elif isinstance(item, list):
            stack.extend(item)
    return False


# What json.loads(text, parse_constant=…, parse_float=…, parse_int=…) builds on every call: built
# once, it holds no state between calls.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_parse_float, parse_int=_parse_int)


def parse_object(raw: bytes) -> dict:
    """The body as a JSON object; raises InvalidRequest (never anything else) when it is not one."""
    if not raw or raw.isspace():  # as `not raw.strip()`, without copying the body
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad_json(f"The request body is not valid UTF-8 (at byte {exc.start}).", code="invalid_encoding") from None
    try:
        body = _DECODER.decode(text)
    except InvalidRequest:
        raise
    except RecursionError:
        raise _too_deep() from None
    except ValueError as exc:
        # The position is safe to show; the text around it is not (it is content).
        pos = getattr(exc, "pos", None)
        where = f" (at character {pos})" if isinstance(pos, int) else ""
        raise _bad_json(f"We could not parse the JSON body of your request{where}.") from None
    if not isinstance(body, dict):
        raise _bad_json("The request body must be a JSON object.")
    if not _depth_ok(body, text, MAX_DEPTH):
        raise _too_deep()
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(body):
        raise _bad_json("A string in the JSON body holds a lone UTF-16 surrogate (\\ud800-\\udfff escape "
                        "without its pair).", code="invalid_encoding")
    return body


def _check_fields(endpoint: str, body: dict) -> None:
    """Types of the fields the core itself reads (the provider checks the rest)."""
    for name in _INT_FIELDS:
        value = body.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
            raise InvalidRequest(f"`{name}` must be a non-negative integer.", param=name, code="invalid_type")
    opts = body.get("stream_options")
    if opts is not None:
        if not isinstance(opts, dict):
            raise InvalidRequest("`stream_options` must be an object.", param="stream_options", code="invalid_type")
        usage = opts.get("include_usage")
        if usage is not None and not isinstance(usage, bool):
            raise InvalidRequest("`stream_options.include_usage` must be a boolean.",
                                 param="stream_options.include_usage", code="invalid_type")
    previous = body.get("previous_response_id")
    if previous is not None and not isinstance(previous, str):
        raise InvalidRequest("`previous_response_id` must be a string.", param="previous_response_id",
                             code="invalid_type")
    if endpoint in _WITH_MESSAGES:
        messages = body.get("messages")
        if messages is None:
            raise InvalidRequest("Missing required parameter: 'messages'.", param="messages",
                                 code="missing_required_parameter")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("`messages` must be a non-empty array.", param="messages", code="invalid_type")
        if not all(isinstance(m, dict) for m in messages):
            raise InvalidRequest("Each item of `messages` must be an object.", param="messages", code="invalid_type")


def decode(endpoint: str, raw: bytes) -> ClientRequest:
    """The decoded body; raises InvalidRequest naming what is wrong."""
    if endpoint not in ENDPOINTS:
        raise InvalidRequest(f"Unknown endpoint /v1/{endpoint}.", code="unknown_url")
    body = parse_object(raw)
    model = body.get("model")
    if model is None:
        raise InvalidRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("`model` must be a non-empty string.", param="model", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("`stream` must be a boolean.", param="stream", code="invalid_type")
    if endpoint == "messages/count_tokens" and stream:
        raise InvalidRequest("Counting tokens does not stream: leave `stream` out.", param="stream",
                             code="invalid_type")
    _check_fields(endpoint, body)
    opts = body.get("stream_options")
    wants_usage = bool(opts and opts.get("include_usage") is True)
    return ClientRequest(body=body, model_name=model, stream=stream, wants_usage=wants_usage,
                         catalog_endpoint=_CATALOG_ENDPOINT.get(endpoint, endpoint))


# Rewriting the body for the provider without encoding it again (see `with_model`).
_KEY_END = re.compile(rb'"[ \t\n\r]*:')  # every key's closing quote (and some quotes of strings)
_MODEL_KEY = re.compile(rb'"model"[ \t\n\r]*:[ \t\n\r]*')
_STRING_END = re.compile(rb'["\\]')
INCLUDE_USAGE = b'"stream_options":{"include_usage":true}'


def _keys(body: dict) -> tuple[int, int]:
    """(keys of every object in a decoded body, objects with a `model` key); walked without recursion."""
    count = with_model_key = 0
    stack: list = [body]
    while stack:
        item = stack.pop()
        if type(item) is dict:
            count += len(item)
            if "model" in item:
                with_model_key += 1
            values = item.values()
        else:
            values = item
        for value in values:
            if type(value) is dict or type(value) is list:
                stack.append(value)
    return count, with_model_key


def _string_end(raw: bytes, start: int) -> int:
    """The index just past the JSON string that opens at raw[start] (a quote); -1 if none."""
    pos = start + 1
    while True:
        m = _STRING_END.search(raw, pos)
        if m is None:
            return -1
        if raw[m.start()] == 0x22:  # the closing quote
            return m.start() + 1
        pos = m.start() + 2  # a backslash and the character it escapes


@functools.lru_cache(maxsize=1024)
def _json_string(value: str) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def with_model(raw: bytes, body: dict, model: str, upstream_id: str, add_usage: bool = False) -> bytes | None:
    """The client's bytes with the top-level `model` value replaced by `upstream_id` and, with
    `add_usage`, a `stream_options` object asking for usage appended; None when this cannot be
    done exactly, and the caller encodes the decoded body instead.

    `raw` must be a body `parse_object` accepted, `body` its decoding and `model` its `model`.
    The result then decodes to `{**body, "model": upstream_id}` (plus the `stream_options`),
    for every JSON parser alike: a body with a duplicate key in any object is refused here,
    since parsers differ on which one wins (json.loads takes the last) and the provider must
    read what the core checked. The cost is two scans at C speed and a walk over the body's
    objects and arrays, instead of building the whole text again.
    """
    if add_usage and "stream_options" in body:
        return None  # present (null or an object): changed inside, which only encoding does right
    keys, model_keys = _keys(body)
    # Every key ends in `"`, blanks and `:`; strings may add more (`\":` inside, or a colon
    # first). As many of those as the decoded objects have keys: no object had a duplicate.
    # And no object but the top level has a `model` key.
    # Each match ends at a colon of its own, and each key of the text (duplicates too) ends a
    # match: colons >= matches >= keys of the text >= decoded keys. As many colons as decoded
    # keys makes them all equal without the regex (20 µs on an 8 kB conversation).
    if model_keys != 1 or (raw.count(b":") != keys and len(_KEY_END.findall(raw)) != keys):
        return None
    # So a plain "model" key (its quote not escaped: not inside a string) is the top-level one;
    # one spelled with \u escapes is not found and the body is encoded.
    found = _MODEL_KEY.search(raw)
    if found is None or raw[found.start() - 1] == 0x5C:
        return None
    start = found.end()
    if raw[start] != 0x22:
        return None
    end = _string_end(raw, start)
    if end < 0:
        return None
    old = raw[start + 1:end - 1]
    if (b"\\" in old and json.loads(raw[start:end]) != model) or (b"\\" not in old and old != model.encode()):
        return None
    value = _json_string(upstream_id)
    if not add_usage:
        return b"".join((raw[:start], value, raw[end:]))
    close = raw.rstrip().rfind(b"}")  # the top-level object's last byte
    return b"".join((raw[:start], value, raw[end:close], b",", INCLUDE_USAGE, raw[close:]))
