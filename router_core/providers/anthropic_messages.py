"""Anthropic's native Messages API, passed through: POST {base_url}/messages and
{base_url}/messages/count_tokens (base_url `https://api.anthropic.com/v1`, as for the
OpenAI-compatible route), the channel's key in `x-api-key`.

Wire quirks owned here (the client API × backend pair, as the OpenAI-compatible route has its own):
- The body goes on as the client sent it (only `model` becomes the upstream id); the stream comes
  back byte for byte, `event:` lines and `ping` events included. Nothing is added or dropped.
- `anthropic-version` is required upstream: the client's passes through, else the provider's
  API_VERSION (anthropic.py).
- Usage: `message_start` carries `message.usage` (input side, and output so far); `message_delta`
  carries cumulative counts that override it. `input_tokens` excludes cache traffic: the whole
  input is input_tokens + cache_creation_input_tokens + cache_read_input_tokens, cache reads are
  billed at the cached rate and cache writes at the cache-write rate.
- Errors are `{"type": "error", "error": {"type", "message"}}` with Anthropic's statuses (402
  billing_error, 529 overloaded_error, ...), also mid-stream as `event: error`. OneKey's own
  failures on this route take that shape too.
- count_tokens is free at Anthropic: it reserves and costs nothing here either.
"""
from __future__ import annotations

import json
from dataclasses import replace

from router_core.providers.base import UpstreamFailure
from router_core.usage import Usage, token_count

MESSAGES = "messages"
COUNT_TOKENS = "messages/count_tokens"
ENDPOINTS = frozenset({MESSAGES, COUNT_TOKENS})

# The error `type` Anthropic gives each status it uses.
ERROR_TYPES = {
    400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
    403: "permission_error", 404: "not_found_error", 413: "request_too_large",
    429: "rate_limit_error", 500: "api_error", 504: "timeout_error", 529: "overloaded_error",
}
_KNOWN_TYPES = frozenset(ERROR_TYPES.values())


def error_body(type_: str, message: str) -> bytes:
    """An Anthropic-shaped error body."""
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def parse_usage(obj: object) -> Usage | None:
    """A Usage from a Messages API usage object; None when missing or unbelievable."""
    if not isinstance(obj, dict) or ("input_tokens" not in obj and "output_tokens" not in obj):
        return None
    counts = [token_count(obj.get(k) or 0) for k in
              ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")]
    if any(c is None for c in counts):
        return None
    fresh, output, read, written = counts
    return Usage(input_tokens=fresh + read + written, output_tokens=output, cached_input_tokens=read,
                 cache_write_tokens=written)


class MessagesStreamReader:
    """Passes a Messages stream on as it arrives and reads its usage on the way."""

    __slots__ = ("_tail", "_start", "_delta", "_error_next", "failure_status")

    def __init__(self) -> None:
        self._tail = b""              # an unfinished line, kept until its end arrives
        self._start: dict | None = None
        self._delta: dict | None = None
        self._error_next = False      # an `event: error` line was read; its data line comes next
        # Set when the provider ended the stream with `event: error` (e.g. overloaded mid-answer):
        # the status Anthropic gives that error, for the usage event and the breaker.
        self.failure_status: int | None = None

    def feed(self, data: bytes) -> bytes:
        buf = self._tail + data if self._tail else data
        cut = buf.rfind(b"\n")
        if cut < 0:
            self._tail = buf
            return data
        lines, self._tail = buf[:cut], buf[cut + 1:]
        if self._error_next or b'"usage"' in lines or b"event: error" in lines:
            self._read(lines)
        return data

    def finish(self) -> bytes:
        tail, self._tail = self._tail, b""
        if self._error_next or b'"usage"' in tail or b"event: error" in tail:
            self._read(tail)
        return b""

    @property
    def usage(self) -> Usage | None:
        """The final usage: message_start's, updated by message_delta's cumulative counts."""
        if self._start is None or self._delta is None:
            return None
        return parse_usage({**self._start, **{k: v for k, v in self._delta.items() if v is not None}})

    @property
    def partial(self) -> Usage | None:
        """The input side as message_start reported it, for a stream cut before its end."""
        usage = parse_usage(self._start) if self._start is not None else None
        return replace(usage, output_tokens=0, estimated=True) if usage is not None else None

    def _read(self, lines: bytes) -> None:
        for line in lines.splitlines():
            if line.startswith(b"event:"):
                self._error_next = line[6:].strip() == b"error"
                continue
            if self._error_next and line.startswith(b"data:"):
                self._error_next = False
                self.failure_status = _status_of_error_event(line[5:])
                continue
            if not line.startswith(b"data:") or b'"usage"' not in line:
                continue
            try:
                event = json.loads(line[5:])
            except (ValueError, UnicodeDecodeError):
                continue
            if not isinstance(event, dict):
                continue
            if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
                usage = event["message"].get("usage")
                if isinstance(usage, dict):
                    self._start = usage
            elif event.get("type") == "message_delta" and isinstance(event.get("usage"), dict):
                self._delta = event["usage"]


def _status_of_error_event(data: bytes) -> int:
    try:
        type_ = json.loads(data)["error"]["type"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        return 502
    return next((status for status, t in ERROR_TYPES.items() if t == type_ and status >= 500), 502)


class MessagesWire:
    """POST /v1/messages: Anthropic's answers and errors, as Anthropic's SDKs expect them."""

    billable = True
    last_event_lines = (b"event: message_stop",)

    def scanner(self, drop_usage_chunk: bool) -> MessagesStreamReader:
        return MessagesStreamReader()

    def usage_of_body(self, body: bytes) -> Usage | None:
        try:
            obj = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        return parse_usage(obj.get("usage")) if isinstance(obj, dict) else None

    def failure(self, failure: UpstreamFailure) -> UpstreamFailure:
        """Reshape a failure (OpenAI-shaped inside OneKey) as Anthropic's error and status."""
        try:
            error = json.loads(failure.body).get("error")
        except (ValueError, UnicodeDecodeError, AttributeError):
            error = None
        error = error if isinstance(error, dict) else {}
        status, type_ = failure.status, error.get("type")
        if error.get("code") == "provider_overloaded" or type_ == "overloaded_error":
            status = 529  # the provider's own overload: Anthropic's SDKs raise OverloadedError
        if type_ not in _KNOWN_TYPES or status >= 500:
            type_ = error_type(status)
        message = str(error.get("message") or f"The request failed (HTTP {status}).")
        return UpstreamFailure(status, error_body(type_, message), failure.retryable, failure.headers)

    def stream_error(self, message: str, code: str) -> bytes:
        # Anthropic's SDKs raise on an `error` event, as Anthropic sends one mid-stream.
        type_ = "timeout_error" if code == "upstream_timeout" else "api_error"
        return b"event: error\ndata: " + error_body(type_, message) + b"\n\n"

    def prompt_texts(self, body: dict) -> list[str]:
        texts = _block_texts(body.get("system"))
        for message in body.get("messages") or ():
            if isinstance(message, dict):
                texts += _block_texts(message.get("content"))
        for tool in body.get("tools") or ():
            if isinstance(tool, dict):
                texts.append(json.dumps(tool))
        return texts

    def output_texts(self, chunks: list[bytes], stream: bool) -> list[str]:
        if not stream:
            try:
                obj = json.loads(b"".join(chunks))
            except (ValueError, UnicodeDecodeError):
                return []
            return _block_texts(obj.get("content")) if isinstance(obj, dict) else []
        texts: list[str] = []
        for line in b"".join(chunks).splitlines():
            if not line.startswith(b"data:") or b"content_block_delta" not in line:
                continue
            try:
                delta = json.loads(line[5:]).get("delta")
            except (ValueError, UnicodeDecodeError, AttributeError):
                continue  # the line a cut stream ended in
            if isinstance(delta, dict):
                texts += [delta[k] for k in ("text", "thinking", "partial_json") if isinstance(delta.get(k), str)]
        return texts


class CountTokensWire(MessagesWire):
    """POST /v1/messages/count_tokens: Anthropic's errors, and free."""

    billable = False

    def usage_of_body(self, body: bytes) -> Usage | None:
        return Usage()


def _block_texts(content: object) -> list[str]:
    """The text of a string or of a list of content blocks (text, thinking, tool input/results)."""
    if isinstance(content, str):
        return [content]
    texts: list[str] = []
    for block in content if isinstance(content, list) else ():
        if not isinstance(block, dict):
            continue
        for key in ("text", "thinking"):
            if isinstance(block.get(key), str):
                texts.append(block[key])
        if isinstance(block.get("input"), dict):
            texts.append(json.dumps(block["input"]))
        if block.get("type") == "tool_result":
            texts += _block_texts(block.get("content"))
    return texts


MESSAGES_WIRE = MessagesWire()
COUNT_TOKENS_WIRE = CountTokensWire()
