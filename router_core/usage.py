"""Reading token usage out of provider answers, and pricing it in integer micro-USD."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

from router_core.catalog import ModelInfo

# Counts above this are not believed (no model has a context this large): estimate instead.
MAX_BELIEVABLE_TOKENS = 50_000_000
_NULL_USAGE = re.compile(rb'"usage"\s*:\s*null')
_EVENT_END = re.compile(rb"(?<=\n\n)|(?<=\r\n\r\n)")  # splits after each SSE event


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    estimated: bool = False
    # Input tokens written to a prompt cache (Anthropic's cache_creation_input_tokens), part of
    # input_tokens like cached_input_tokens, and priced at the model's cache-write rate.
    cache_write_tokens: int = 0


def token_count(value: object) -> int | None:
    """A provider's token count if believable (a non-negative int below the cap), else None."""
    if type(value) is int:  # what JSON decodes to: the usual case, in one test
        return value if 0 <= value <= MAX_BELIEVABLE_TOKENS else None
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    if value < 0 or value > MAX_BELIEVABLE_TOKENS:
        return None
    return value


def parse_usage(obj: object) -> Usage | None:
    """A Usage from a chat (`prompt_tokens`…) or Responses (`input_tokens`…) usage object.

    None when it is missing or not believable (negative, absurd, wrong types).
    """
    if not isinstance(obj, dict):
        return None
    if "prompt_tokens" in obj or "completion_tokens" in obj:
        inp, out = token_count(obj.get("prompt_tokens", 0)), token_count(obj.get("completion_tokens", 0))
        in_details, out_details = obj.get("prompt_tokens_details"), obj.get("completion_tokens_details")
    elif "input_tokens" in obj or "output_tokens" in obj:
        inp, out = token_count(obj.get("input_tokens", 0)), token_count(obj.get("output_tokens", 0))
        in_details, out_details = obj.get("input_tokens_details"), obj.get("output_tokens_details")
    else:
        return None
    if inp is None or out is None:
        return None
    cached = token_count((in_details or {}).get("cached_tokens") or 0) if isinstance(in_details or {}, dict) else None
    reasoning = token_count((out_details or {}).get("reasoning_tokens") or 0) if isinstance(out_details or {}, dict) else None
    if cached is None or reasoning is None:
        return None
    return Usage(inp, out, min(cached, inp), min(reasoning, out))


# json.loads' own decoder's scanner: the part of json.loads that does the work.
_SCAN_JSON = json.JSONDecoder().scan_once
_BLANKS = re.compile(rb"[ \t\n\r]*")  # JSON's whitespace


def json_object(body: bytes) -> dict | None:
    """`json.loads(body)` when that is an object, else None (never an error but RecursionError).

    A body whose first two bytes are not NUL is UTF-8 to json.loads (it detects UTF-16 and -32
    by their NULs): one that opens with `{` after JSON's blanks goes straight to the scanner
    json.loads ends in, without the detours that cost as much as the scan of a short answer.
    """
    start = _BLANKS.match(body).end()
    if body[start:start + 1] == b"{" and body[1:2] != b"\x00":
        try:
            text = body.decode("utf-8", "surrogatepass")
            obj, end = _SCAN_JSON(text, start)  # the blanks are one byte, one character each
        except (ValueError, StopIteration):  # not UTF-8, or not JSON
            return None
        # What json.loads allows after the value: JSON's blanks, nothing else.
        return obj if end == len(text) or not text[end:].lstrip(" \t\n\r") else None
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return obj if isinstance(obj, dict) else None


def usage_of_body(body: bytes) -> Usage | None:
    """Usage of a complete (non-stream) JSON answer."""
    obj = json_object(body)
    return None if obj is None else parse_usage(obj.get("usage"))


def cost_micro_usd(model: ModelInfo, usage: Usage) -> int:
    """The price of the tokens in micro-USD, rounded up to a whole micro-dollar.

    A model the price package prices is billed by the package's rules (tiers, cache writes,
    prices by date) times the operator's markup; one the operator priced, at its flat rates.
    """
    if model.priced_by is not None:
        return model.priced_by.cost_micro_usd(usage.input_tokens, usage.output_tokens, usage.cached_input_tokens,
                                              usage.cache_write_tokens, usage.reasoning_tokens, model.price_factor)
    cached_price = model.cached_input_price or model.input_price
    write_price = model.cache_write_input_price or model.input_price
    uncached = usage.input_tokens - usage.cached_input_tokens - usage.cache_write_tokens
    scaled = (uncached * model.input_price + usage.cached_input_tokens * cached_price
              + usage.cache_write_tokens * write_price + usage.output_tokens * model.output_price)
    return -(-scaled // 1_000_000)


def _first_real_usage_event(ready: bytes) -> int:
    """Where the first event with a `"usage"` that is not null starts (len(ready): none)."""
    at = ready.find(b'"usage"')
    while at >= 0 and _NULL_USAGE.match(ready, at):
        at = ready.find(b'"usage"', at + 7)
    if at < 0:
        return len(ready)
    end = max(ready.rfind(b"\n\n", 0, at), ready.rfind(b"\r\n\r\n", 0, at))
    return 0 if end < 0 else end + (4 if ready.startswith(b"\r\n\r\n", end) else 2)


def _events(data: bytes) -> list[bytes]:
    """`data` cut after each `\n\n` and `\r\n\r\n`, as _EVENT_END.split cuts it.

    Without a CR or three LFs in a row no two cuts overlap, and a plain split finds them all
    (a tenth of the regex's time, whose lookbehinds are tried at every byte).
    """
    if b"\r" in data or b"\n\n\n" in data:
        return _EVENT_END.split(data)
    events = [event + b"\n\n" for event in data.split(b"\n\n")]
    events[-1] = events[-1][:-2]  # what followed the last cut (empty when data ends with one)
    return events


class StreamScanner:
    """Splits an SSE stream into whole events, picks up usage, drops the usage-only chunk.

    Upstream reads can end anywhere, even inside a line; only whole events are passed on, so a
    dropped chunk never leaves half an event behind. Everything else passes byte for byte.
    """

    __slots__ = ("_buf", "_drop_usage_chunk", "usage")
    partial: Usage | None = None  # OpenAI streams report usage only at the end
    failure_status: int | None = None  # an OpenAI stream's own error chunks are not told apart

    def __init__(self, drop_usage_chunk: bool) -> None:
        self._buf = b""
        self._drop_usage_chunk = drop_usage_chunk
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> bytes:
        """The whole events completed by this read, to pass on (may be empty)."""
        buf = self._buf + data if self._buf else data
        if buf.endswith(b"\n\n"):  # the usual read: whole events, nothing left over
            ready, self._buf = buf, b""
        else:
            end = max(buf.rfind(b"\n\n"), buf.rfind(b"\r\n\r\n"))
            if end < 0:
                self._buf = buf
                return b""
            cut = end + (4 if buf.startswith(b"\r\n\r\n", end) else 2)
            ready, self._buf = buf[:cut], buf[cut:]
        # Every chunk of a stream asked for usage carries `"usage":null` until the last one:
        # counted without the regex when they are all written compactly, as providers do.
        total = ready.count(b'"usage"')
        if not total or total == ready.count(b'"usage":null') or total == len(_NULL_USAGE.findall(ready)):
            return ready
        if b"\r" not in ready and ready.find(b"\n\n") == len(ready) - 2:
            # One event (the usual read of the usage chunk): what _scan would split it into.
            return b"" if self._take_usage(ready) else ready
        return self._scan(ready)

    def finish(self) -> bytes:
        """Whatever is left when the stream ends (an unterminated last event)."""
        rest, self._buf = self._buf, b""
        if rest and b'"usage"' in rest:
            return self._scan(rest)
        return rest

    @staticmethod
    def _has_real_usage(ready: bytes) -> bool:
        total = ready.count(b'"usage"')
        # Every chunk of a stream asked for usage carries `"usage":null` until the last one:
        # counted without the regex when they are all written compactly, as providers do.
        if total == ready.count(b'"usage":null'):
            return False
        return total > len(_NULL_USAGE.findall(ready))

    def _scan(self, ready: bytes) -> bytes:
        # Only events from the first one whose usage is not null are split and parsed: a read
        # that holds a whole stream (fifty events, each with `"usage":null`) parses one or two.
        start = _first_real_usage_event(ready)
        kept: list[bytes] = [ready[:start]]
        for event in _events(ready[start:]):
            if not event:
                continue
            if b'"usage"' in event and self._has_real_usage(event) and self._take_usage(event):
                continue
            kept.append(event)
        return b"".join(kept)

    def _take_usage(self, event: bytes) -> bool:
        """Record the usage an event carries; True if the event should be dropped."""
        for line in event.splitlines():
            if not line.startswith(b"data:"):
                continue
            obj = json_object(line[5:])
            if obj is None:
                return False
            raw = obj.get("usage")
            if raw is None and isinstance(obj.get("response"), dict):
                raw = obj["response"].get("usage")
            usage = parse_usage(raw)
            if usage is not None:
                self.usage = usage
                return self._drop_usage_chunk and obj.get("choices") == []
        return False


# What a request is assumed to produce when it does not cap its output.
DEFAULT_OUTPUT_TOKENS = 1024
_OUTPUT_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens")


def reservation_usage(body: dict, body_bytes: int) -> Usage:
    """A generous guess of a request's usage before it runs, to reserve credit for.

    Input: a token per three bytes of body (real text averages about four). Output: the
    request's own cap, else DEFAULT_OUTPUT_TOKENS.
    """
    output = DEFAULT_OUTPUT_TOKENS
    for name in _OUTPUT_CAPS:
        cap = body.get(name)
        if isinstance(cap, int) and not isinstance(cap, bool):
            output = min(max(cap, 1), MAX_BELIEVABLE_TOKENS)
            break
    return Usage(body_bytes // 3 + 8, output)


def prompt_texts(body: dict) -> list[str]:
    """The text parts of a chat or Responses request (for a local token count)."""
    texts: list[str] = []
    if isinstance(body.get("instructions"), str):
        texts.append(body["instructions"])
    source = body.get("messages", body.get("input"))
    if isinstance(source, str):
        return texts + [source]
    for item in source if isinstance(source, list) else []:
        if not isinstance(item, dict):
            continue
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    return texts


def _texts_of_choice_or_event(obj: dict) -> list[str]:
    texts: list[str] = []
    for choice in obj.get("choices") or ():
        if not isinstance(choice, dict):
            continue
        part = choice.get("delta") or choice.get("message") or {}
        if isinstance(part, dict):
            for key in ("content", "reasoning_content", "refusal"):
                if isinstance(part.get(key), str):
                    texts.append(part[key])
            for call in part.get("tool_calls") or ():
                fn = call.get("function") if isinstance(call, dict) else None
                if isinstance(fn, dict) and isinstance(fn.get("arguments"), str):
                    texts.append(fn["arguments"])
    if isinstance(obj.get("delta"), str):  # Responses API *.delta events
        texts.append(obj["delta"])
    for item in obj.get("output") or ():  # a whole Responses object
        for part in (item.get("content") or ()) if isinstance(item, dict) else ():
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                texts.append(part["text"])
    return texts


def output_texts(chunks: list[bytes], stream: bool) -> list[str]:
    """The generated text in an answer, or as much of it as arrived."""
    texts: list[str] = []
    if not stream:
        try:
            obj = json.loads(b"".join(chunks))
        except (ValueError, UnicodeDecodeError):
            return texts
        return _texts_of_choice_or_event(obj) if isinstance(obj, dict) else texts
    for line in b"".join(chunks).splitlines():
        if not line.startswith(b"data:") or b"[DONE]" in line:
            continue
        try:
            obj = json.loads(line[5:])
        except (ValueError, UnicodeDecodeError):
            continue  # the line a cut stream ended in
        if isinstance(obj, dict):
            texts += _texts_of_choice_or_event(obj)
    return texts
