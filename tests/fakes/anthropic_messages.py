"""Anthropic's native Messages API, faked: POST /v1/messages (JSON or SSE) and
/v1/messages/count_tokens, `x-api-key` and `anthropic-version` checked, requests recorded.

The stream is the event sequence Anthropic documents: message_start, content_block_start, ping,
content_block_delta (thinking_delta and signature_delta for a thinking block when `thinking` is
enabled, then text_delta), content_block_stop, message_delta (cumulative usage), message_stop;
a `stream_error` behaviour ends it with `event: error` (overloaded) instead. Prompt caching is
simulated: a prefix ending in a `cache_control` block is written to the cache the first time it is
seen (cache_creation_input_tokens) and read from it afterwards (cache_read_input_tokens).
"""
from __future__ import annotations

import hashlib
import json

from aiohttp import web

from tests.fakes.openai_provider import example_of

THINKING = "Let me think about that."
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                403: "permission_error", 404: "not_found_error", 429: "rate_limit_error",
                500: "api_error", 529: "overloaded_error"}


def anthropic_error(kind: str, message: str) -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011fake"}


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    return " ".join(b.get("text", "") for b in content or () if isinstance(b, dict) and b.get("type") == "text")


def _tokens(obj: object) -> int:
    return max(1, len(json.dumps(obj)) // 4)


def _sse(event: str, data: dict) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class MessagesAPI:
    """Mixed into the fake Anthropic provider (tests/fakes/providers.py), beside its OpenAI-compatible route."""

    def messages_handlers(self) -> dict:
        self.cache: set[str] = set()
        return {"messages": self._messages, "messages/count_tokens": self._count_tokens}

    def _version_error(self, request: web.Request) -> web.Response | None:
        if request.headers.get("anthropic-version"):
            return None
        return web.json_response(anthropic_error("invalid_request_error", "anthropic-version: header is required"),
                                 status=400)

    def _cache_usage(self, body: dict) -> tuple[int, int]:
        """(written, read) cache tokens: the prefix up to the last cache_control block."""
        blocks: list = []
        system = body.get("system")
        blocks += system if isinstance(system, list) else ([{"type": "text", "text": system}] if system else [])
        for m in body.get("messages") or ():
            content = m.get("content") if isinstance(m, dict) else None
            blocks += content if isinstance(content, list) else [{"type": "text", "text": content}]
        marks = [i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")]
        if not marks:
            return 0, 0
        prefix = blocks[:marks[-1] + 1]
        key = hashlib.sha256(json.dumps(prefix, sort_keys=True).encode()).hexdigest()
        if key in self.cache:
            return 0, _tokens(prefix)
        self.cache.add(key)
        return _tokens(prefix), 0

    def _usage(self, body: dict, output_tokens: int, override: dict | None) -> dict:
        written, read = self._cache_usage(body)
        whole = _tokens([body.get("system"), body.get("messages")])
        usage = {"input_tokens": max(1, whole - written - read), "cache_creation_input_tokens": written,
                 "cache_read_input_tokens": read, "output_tokens": output_tokens}
        return {**usage, **(override or {})}

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        early = early or self._version_error(request)
        if early is not None:
            return early
        body = got.body or {}
        return web.json_response({"input_tokens": _tokens([body.get("system"), body.get("messages"),
                                                           body.get("tools")])})

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        early = early or self._version_error(request)
        if early is not None:
            return early
        body = got.body or {}
        messages = [m for m in body.get("messages") or () if isinstance(m, dict) and m.get("role") == "user"]
        self.images += message_images(messages)
        text = _text_of(messages[-1].get("content")) if messages else ""
        thinking = isinstance(body.get("thinking"), dict) and body["thinking"].get("type") == "enabled"
        call = tool_use_for(body, messages) if getattr(self, "agentic", False) else None
        result = tool_result_text(messages) if getattr(self, "agentic", False) else None
        if result is not None:
            text = f"The tool said: {result}"
        output_tokens = len(text.split(" ")) + (len(THINKING.split(" ")) if thinking else 0)
        usage = self._usage(body, output_tokens, b.usage)
        message = {"id": "msg_01fake", "type": "message", "role": "assistant", "model": body.get("model"),
                   "content": [], "stop_reason": None, "stop_sequence": None}
        blocks = ([{"type": "thinking", "thinking": THINKING, "signature": "sig-fake"}] if thinking else [])
        blocks.append(call or {"type": "text", "text": text})
        stop_reason = "tool_use" if call else "end_turn"
        if not body.get("stream"):
            reply = {**message, "content": blocks, "stop_reason": stop_reason}
            if b.kind != "no_usage":
                reply["usage"] = usage
            return web.json_response(reply)
        start_usage = {**usage, "output_tokens": 1}
        events = [_sse("message_start", {"type": "message_start", "message": {**message, "usage": start_usage}})]
        for index, block in enumerate(blocks):
            empty = {"type": "thinking", "thinking": "", "signature": ""} if block["type"] == "thinking" \
                else {**block, "input": {}} if block["type"] == "tool_use" else {"type": "text", "text": ""}
            events.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": empty}))
            if index == 0:
                events.append(_sse("ping", {"type": "ping"}))
            if block["type"] == "thinking":
                deltas = [{"type": "thinking_delta", "thinking": w} for w in _spaced(THINKING)]
                deltas.append({"type": "signature_delta", "signature": "sig-fake"})
            elif block["type"] == "tool_use":
                args = json.dumps(block["input"])
                deltas = [{"type": "input_json_delta", "partial_json": args[i:i + 8]} for i in range(0, len(args), 8)]
            else:
                deltas = [{"type": "text_delta", "text": w} for w in _spaced(text)]
            events += [_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                       for d in deltas]
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
            if b.kind == "stream_error":
                events.append(_sse("error", anthropic_error("overloaded_error", "Overloaded")))
                return await self._stream(request, b, events)
        final = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}}
        if b.kind != "no_usage":
            final["usage"] = {"output_tokens": usage["output_tokens"]}
        events.append(_sse("message_delta", final))
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return await self._stream(request, b, events)

    def messages_error_payload(self, status: int, message: str) -> dict:
        return anthropic_error(_ERROR_TYPES.get(status, "api_error"), message)


def message_images(messages: list[dict]) -> list[str]:
    """The media type (or "url") of each image block in the user turns of a Messages request."""
    found = []
    for m in messages:
        content = m.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "image" and isinstance(block.get("source"), dict):
                source = block["source"]
                found.append(str(source.get("media_type")) if source.get("type") == "base64" else "url")
    return found


def tool_result_text(messages: list[dict]) -> str | None:
    """The text of the tool_result in the last user turn, if it carries one."""
    content = messages[-1].get("content") if messages else None
    for block in content if isinstance(content, list) else ():
        if isinstance(block, dict) and block.get("type") == "tool_result":
            inner = block.get("content")
            return inner if isinstance(inner, str) else _text_of(inner)
    return None


def tool_use_for(body: dict, messages: list[dict]) -> dict | None:
    """A tool_use block calling the first offered tool, unless the last turn is a tool's result."""
    tools = [t for t in body.get("tools") or () if isinstance(t, dict) and "input_schema" in t]
    if not tools or tool_result_text(messages) is not None:
        return None
    return {"type": "tool_use", "id": f"toolu_{hashlib.sha256(json.dumps(body).encode()).hexdigest()[:20]}",
            "name": tools[0].get("name"), "input": example_of(tools[0]["input_schema"])}


def _spaced(text: str) -> list[str]:
    """Words with their trailing space, so the deltas join back into the text."""
    words = text.split(" ")
    return [w + " " for w in words[:-1]] + [words[-1]]
