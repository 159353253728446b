"""The built-in sandbox provider: free test models answered in-process, deterministically.

It exists so a newcomer (or a user's CI) can try the whole path — key, routing, streaming,
metering — without provider keys. It sits behind the same Provider interface as the real ones;
nothing upstream of it knows it is special. Token counts are real counts of its own simple
tokenizer (words and punctuation), so usage and cost figures flow exactly as a provider's do.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator

from router_core.catalog import ModelInfo
from router_core.providers.base import OPENAI_WIRE, UpstreamCall, UpstreamFailure, Wire
from router_core.settings import ChannelSettings

_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORDS = re.compile(r"\S+\s*")
_LOREM = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
          "incididunt ut labore et dolore magna aliqua").split()


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _text_of(content: object) -> str:
    """The text of a message's content: a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
        )
    return ""


def _messages(body: dict) -> list[tuple[str, str]]:
    """(role, text) pairs from a chat body's `messages` or a Responses body's `input`."""
    pairs: list[tuple[str, str]] = []
    if isinstance(body.get("instructions"), str):
        pairs.append(("system", body["instructions"]))
    source = body.get("messages", body.get("input"))
    if isinstance(source, str):
        return pairs + [("user", source)]
    for m in source if isinstance(source, list) else []:
        if isinstance(m, dict):
            pairs.append((str(m.get("role", "user")), _text_of(m.get("content"))))
    return pairs


class SandboxResponse:
    """An in-memory upstream response; streams one word per chunk."""

    def __init__(self, status: int, content_type: str, parts: list[bytes]) -> None:
        self.status = status
        self.headers = {"Content-Type": content_type}
        self._parts = parts
        self._closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        for part in self._parts:
            if self._closed:
                return
            yield part
            await asyncio.sleep(0)

    async def read(self) -> bytes:
        return b"".join(self._parts)

    def close(self) -> None:
        self._closed = True


class StoredSandboxResponses:
    """The Responses API objects the sandbox made, kept as a provider keeps them (store: true).

    Memory only, never a file or a table, and bounded: the oldest go first past max_count
    responses or max_bytes in all, and after max_age seconds. A restart forgets them all, and
    each core replica knows only its own: the sandbox is for trying things out.
    """

    def __init__(self, max_count: int = 1000, max_bytes: int = 32 * 1024 * 1024, max_age: float = 3600.0) -> None:
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._bytes = 0
        self._max_count, self._max_bytes, self._max_age = max_count, max_bytes, max_age

    def put(self, response_id: str, body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        self.pop(response_id)
        self._items[response_id] = (time.monotonic(), body)
        self._bytes += len(body)
        while len(self._items) > self._max_count or self._bytes > self._max_bytes:
            self.pop(next(iter(self._items)))

    def get(self, response_id: str) -> bytes | None:
        found = self._items.get(response_id)
        if found is None:
            return None
        if time.monotonic() - found[0] > self._max_age:
            self.pop(response_id)
            return None
        return found[1]

    def pop(self, response_id: str) -> bytes | None:
        found = self._items.pop(response_id, None)
        if found is None:
            return None
        self._bytes -= len(found[1])
        return found[1]


class SandboxProvider:
    """`sandbox/echo` repeats the last user message; `sandbox/lorem` writes max_tokens words.

    Each instance keeps the Responses API objects it made, so make one per core (registry()).
    """

    name = "sandbox"
    endpoints = frozenset({"chat/completions", "responses"})

    def __init__(self) -> None:
        self.stored = StoredSandboxResponses()

    def prepare(self, body: dict, endpoint: str) -> dict:
        return body

    def wire(self, endpoint: str) -> Wire:
        return OPENAI_WIRE

    async def list_models(self, http: object, channel: ChannelSettings) -> list[str]:
        """The sandbox serves exactly its own two models."""
        return ["echo", "lorem"]

    async def send(self, http: object, channel: ChannelSettings, call: UpstreamCall) -> SandboxResponse:
        if call.method != "POST":
            return self._stored_call(call)
        body = call.parsed if call.parsed is not None else json.loads(call.body)
        pairs = _messages(body)
        reply = self._reply(call.model.upstream_id, body, pairs)
        prompt_tokens = sum(count_tokens(text) + 3 for _, text in pairs)
        usage = (prompt_tokens, count_tokens(reply))
        model = call.model.id  # the id the client asked for ("sandbox/echo"), not the upstream "echo"
        if call.endpoint == "responses":
            # A fresh id per response, as a provider gives: equal bodies from two projects
            # must not make one id that both would own.
            response = _response_object(secrets.token_hex(12), model, reply, usage)
            if body.get("store") is not False:
                self.stored.put(response["id"], json.dumps(response).encode())
            return _responses(response, call.stream)
        rid = hashlib.sha256(call.body).hexdigest()[:24]
        return _chat(rid, model, reply, usage, call.stream, body)

    def _stored_call(self, call: UpstreamCall) -> SandboxResponse:
        """GET or DELETE responses/{id}: what the store holds, or the provider's own 404."""
        response_id = call.endpoint.partition("/")[2]
        found = self.stored.pop(response_id) if call.method == "DELETE" else self.stored.get(response_id)
        if found is None:
            error = {"error": {"message": f"Response with id '{response_id}' not found.",
                               "type": "invalid_request_error", "param": None, "code": None}}
            return SandboxResponse(404, "application/json", [json.dumps(error).encode()])
        if call.method == "DELETE":
            found = json.dumps({"id": response_id, "object": "response", "deleted": True}).encode()
        return SandboxResponse(200, "application/json", [found])

    def error(self, status: int, raw: bytes, channel: ChannelSettings, model: ModelInfo) -> UpstreamFailure:
        return UpstreamFailure(status, raw, False)

    @staticmethod
    def _reply(model: str, body: dict, pairs: list[tuple[str, str]]) -> str:
        if model == "lorem":
            limit = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens") or 32
            n = max(1, min(int(limit) if isinstance(limit, int) else 32, 4096))
            return " ".join(_LOREM[i % len(_LOREM)] for i in range(n))
        users = [text for role, text in pairs if role == "user"]
        return users[-1] if users else ""


def _sse(obj: dict, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chat(rid: str, model: str, reply: str, usage: tuple[int, int], stream: bool, body: dict) -> SandboxResponse:
    created = int(time.time())
    usage_obj = {
        "prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage),
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    base = {"id": f"chatcmpl-{rid}", "created": created, "model": model, "system_fingerprint": None}
    if not stream:
        payload = {
            **base, "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": reply, "refusal": None},
                         "logprobs": None, "finish_reason": "stop"}],
            "usage": usage_obj,
        }
        return SandboxResponse(200, "application/json", [json.dumps(payload).encode()])
    opts = body.get("stream_options")
    with_usage = isinstance(opts, dict) and opts.get("include_usage") is True
    extra = {"usage": None} if with_usage else {}

    def chunk(delta: dict, finish: str | None) -> bytes:
        return _sse({**base, "object": "chat.completion.chunk", **extra, "choices": [
            {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]})

    parts = [chunk({"role": "assistant", "content": ""}, None)]
    parts += [chunk({"content": word}, None) for word in _WORDS.findall(reply)]
    parts.append(chunk({}, "stop"))
    if with_usage:
        parts.append(_sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage_obj}))
    parts.append(b"data: [DONE]\n\n")
    return SandboxResponse(200, "text/event-stream", parts)


def _response_object(rid: str, model: str, reply: str, usage: tuple[int, int]) -> dict:
    text_part = {"type": "output_text", "text": reply, "annotations": [], "logprobs": []}
    item = {"type": "message", "id": f"msg_{rid}", "status": "completed", "role": "assistant", "content": [text_part]}
    return {
        "id": f"resp_{rid}", "object": "response", "created_at": int(time.time()), "status": "completed",
        "model": model, "output": [item], "error": None, "incomplete_details": None,
        "instructions": None, "metadata": {}, "parallel_tool_calls": True, "temperature": 1.0,
        "tool_choice": "auto", "tools": [], "top_p": 1.0,
        "usage": {"input_tokens": usage[0], "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                  "output_tokens": usage[1], "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": sum(usage)},
    }


def _responses(response: dict, stream: bool) -> SandboxResponse:
    if not stream:
        return SandboxResponse(200, "application/json", [json.dumps(response).encode()])
    pending = {k: v for k, v in response.items() if k != "usage"} | {"status": "in_progress", "output": []}
    item = response["output"][0]
    text_part, msg_id = item["content"][0], item["id"]
    reply = text_part["text"]
    seq = iter(range(1_000_000))
    parts = [
        _sse({"type": "response.created", "sequence_number": next(seq), "response": pending}, "response.created"),
        _sse({"type": "response.in_progress", "sequence_number": next(seq), "response": pending}, "response.in_progress"),
        _sse({"type": "response.output_item.added", "sequence_number": next(seq), "output_index": 0,
              "item": {**item, "status": "in_progress", "content": []}}, "response.output_item.added"),
        _sse({"type": "response.content_part.added", "sequence_number": next(seq), "item_id": msg_id,
              "output_index": 0, "content_index": 0, "part": {**text_part, "text": ""}}, "response.content_part.added"),
    ]
    for word in _WORDS.findall(reply):
        parts.append(_sse({"type": "response.output_text.delta", "sequence_number": next(seq), "item_id": msg_id,
                           "output_index": 0, "content_index": 0, "delta": word, "logprobs": []},
                          "response.output_text.delta"))
    parts += [
        _sse({"type": "response.output_text.done", "sequence_number": next(seq), "item_id": msg_id,
              "output_index": 0, "content_index": 0, "text": reply, "logprobs": []}, "response.output_text.done"),
        _sse({"type": "response.content_part.done", "sequence_number": next(seq), "item_id": msg_id,
              "output_index": 0, "content_index": 0, "part": text_part}, "response.content_part.done"),
        _sse({"type": "response.output_item.done", "sequence_number": next(seq), "output_index": 0, "item": item},
             "response.output_item.done"),
        _sse({"type": "response.completed", "sequence_number": next(seq), "response": response}, "response.completed"),
    ]
    return SandboxResponse(200, "text/event-stream", parts)


__all__ = ["SandboxProvider", "StoredSandboxResponses", "count_tokens"]
