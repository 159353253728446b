"""Fake providers whose answers a test scripts turn by turn — a tool call, then a text — for
real agent clients (tests/e2e/test_real_clients.py) that loop until the model stops calling tools.

`ScriptedOpenAI` and `ScriptedAnthropic` are the usual fakes (tests/fakes/providers.py) with one
difference: each request to chat/completions, responses or messages is first shown to
`fake.script(endpoint, body)`; a `Reply` it returns is answered in that endpoint's wire format,
streamed or not as asked; `None` gets the usual echo of the last user text. Every
request is recorded in `fake.received` as before; count_tokens and the model list are unchanged.
"""
from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.anthropic_messages import _sse, _text_of
from tests.fakes.openai_provider import FakeOpenAI, _words, last_user_text, response_object
from tests.fakes.providers import FakeAnthropic, FakeGemini, FakeXAI


@dataclass
class ToolCall:
    name: str
    arguments: dict
    call_id: str = field(default_factory=lambda: f"call_{uuid.uuid4().hex[:12]}")


@dataclass
class Reply:
    """One model turn: a text, or a call of one tool (with an optional text before it)."""

    text: str = ""
    tool_call: ToolCall | None = None


Script = Callable[[str, dict], "Reply | None"]


def offered_tools(endpoint: str, body: dict) -> dict[str, dict]:
    """The tools a request offers, by name (a chat `function`, a Responses tool of any type,
    a Messages tool), each as sent."""
    tools = {}
    for tool in body.get("tools") or ():
        if not isinstance(tool, dict):
            continue
        name = (tool.get("function") or {}).get("name") if tool.get("type") == "function" and endpoint == "chat" \
            else tool.get("name")
        tools[name or tool.get("type", "?")] = tool
    return tools


def tool_results(endpoint: str, body: dict) -> dict[str, str]:
    """The tool results a request carries, by call id, as text."""
    found: dict[str, str] = {}
    if endpoint == "chat":
        for m in body.get("messages") or ():
            if isinstance(m, dict) and m.get("role") == "tool":
                found[m.get("tool_call_id", "")] = _flatten(m.get("content"))
    elif endpoint == "responses":
        items = body.get("input")
        for item in items if isinstance(items, list) else ():
            if isinstance(item, dict) and str(item.get("type", "")).endswith("_call_output"):
                found[item.get("call_id", "")] = _flatten(item.get("output"))
    else:
        for m in body.get("messages") or ():
            content = m.get("content") if isinstance(m, dict) else None
            for block in content if isinstance(content, list) else ():
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    found[block.get("tool_use_id", "")] = _flatten(block.get("content"))
    return found


def _flatten(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(_flatten(p.get("text", p.get("output", "")) if isinstance(p, dict) else p) for p in content)
    if isinstance(content, dict):
        return _flatten(content.get("text", content.get("output", json.dumps(content))))
    return "" if content is None else json.dumps(content)


class ScriptedReplies:
    """Mixed in before a fake provider: its chat, responses and messages answers come from a script."""

    script: Script = staticmethod(lambda endpoint, body: None)
    tool_finish_reason = "tool_calls"  # a chat answer's finish_reason when it calls a tool
    # Models that are not reasoning models: their provider refuses `reasoning_effort` with a 400.
    without_reasoning: frozenset[str] = frozenset()

    def reasoning_refusal(self, model: str) -> web.Response:
        """OpenAI's 400 for `reasoning_effort` on a model that does not reason."""
        return web.json_response({"error": {
            "message": "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
            "type": "invalid_request_error", "param": "reasoning_effort", "code": "unsupported_parameter"}},
            status=400)

    def call_extra(self, call: ToolCall) -> dict:
        """Fields a dialect adds to a chat tool call (Gemini: its thought signature)."""
        return {}

    def scripted(self, endpoint: str, body: dict) -> Reply:
        """The script's reply, or an echo of the last user text where it has none."""
        reply = self.script(endpoint, body)
        if reply is not None:
            return reply
        if endpoint == "messages":
            users = [m for m in body.get("messages") or () if isinstance(m, dict) and m.get("role") == "user"]
            return Reply(text=_text_of(users[-1].get("content")) if users else "")
        return Reply(text=last_user_text(body))

    # -- chat/completions ----------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        if early is not None:
            return early
        body = got.body or {}
        if body.get("reasoning_effort") is not None and body.get("model") in self.without_reasoning:
            return self.reasoning_refusal(str(body.get("model")))
        reply = self.scripted("chat", body)
        usage = {"prompt_tokens": max(1, len(got.raw) // 4), "completion_tokens": 7, "total_tokens": 0,
                 "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        base = {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "created": int(time.time()), "model": body.get("model"),
                "system_fingerprint": "fp_fake"}
        call = reply.tool_call
        calls = [{"id": call.call_id, "type": "function", **self.call_extra(call),
                  "function": {"name": call.name, "arguments": json.dumps(call.arguments)}}] if call else None
        finish = self.tool_finish_reason if call else "stop"
        if not body.get("stream"):
            message = {"role": "assistant", "content": reply.text or None, "refusal": None}
            if calls:
                message["tool_calls"] = calls
            return web.json_response({**base, "object": "chat.completion", "usage": usage, "choices": [
                {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}]})
        with_usage = (body.get("stream_options") or {}).get("include_usage") is True
        extra = {"usage": None} if with_usage else {}
        deltas: list[dict] = [{"role": "assistant", "content": ""}]
        deltas += [{"content": w} for w in _words(reply.text)] if reply.text else []
        if call:
            arguments = json.dumps(call.arguments)
            deltas.append({"tool_calls": [{"index": 0, "id": call.call_id, "type": "function", **self.call_extra(call),
                                           "function": {"name": call.name, "arguments": ""}}]})
            deltas += [{"tool_calls": [{"index": 0, "function": {"arguments": arguments[i:i + 16]}}]}
                       for i in range(0, len(arguments), 16)]
        events = [{**base, "object": "chat.completion.chunk", **extra,
                   "choices": [{"index": 0, "delta": d, "finish_reason": None, "logprobs": None}]} for d in deltas]
        events.append({**base, "object": "chat.completion.chunk", **extra,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": finish, "logprobs": None}]})
        events += self.chat_usage_events(base, usage, with_usage)
        data = [f"data: {json.dumps(e)}\n\n".encode() for e in events] + [b"data: [DONE]\n\n"]
        return await self._stream(request, b, data)

    # -- responses -------------------------------------------------------------------------

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        if early is not None:
            return early
        body = got.body or {}
        reply = self.scripted("responses", body)
        items = []
        if reply.text:
            items.append({"type": "message", "id": f"msg_{uuid.uuid4().hex[:12]}", "status": "completed",
                          "role": "assistant", "content": [{"type": "output_text", "text": reply.text,
                                                            "annotations": [], "logprobs": []}]})
        if reply.tool_call:
            call = reply.tool_call
            items.append({"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:12]}", "call_id": call.call_id,
                          "name": call.name, "arguments": json.dumps(call.arguments), "status": "completed"})
        in_tokens = max(1, len(got.raw) // 4)
        usage = {"input_tokens": in_tokens, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": 7, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": in_tokens + 7}
        response = response_object(body, items, usage)
        if body.get("store") is not False:
            self.stored[response["id"]] = response
        if not body.get("stream"):
            return web.json_response(response)
        pending = {k: v for k, v in response.items() if k != "usage"} | {"status": "in_progress", "output": []}
        events: list[tuple[str, dict]] = [("response.created", {"response": pending}),
                                          ("response.in_progress", {"response": pending})]
        for index, item in enumerate(items):
            events += _item_events(index, item)
        events.append(("response.completed", {"response": response}))
        data = [f"event: {name}\ndata: {json.dumps({'type': name, 'sequence_number': i, **payload})}\n\n".encode()
                for i, (name, payload) in enumerate(events)]
        return await self._stream(request, b, data)


def _item_events(index: int, item: dict) -> list[tuple[str, dict]]:
    """The Responses stream events of one output item, as OpenAI sends them."""
    at = {"output_index": index}
    if item["type"] == "function_call":
        started = {**item, "arguments": "", "status": "in_progress"}
        arguments = item["arguments"]
        return [("response.output_item.added", {**at, "item": started}),
                *[("response.function_call_arguments.delta", {**at, "item_id": item["id"], "delta": arguments[i:i + 16]})
                  for i in range(0, len(arguments), 16)],
                ("response.function_call_arguments.done", {**at, "item_id": item["id"], "name": item["name"],
                                                           "arguments": arguments}),
                ("response.output_item.done", {**at, "item": item})]
    part = item["content"][0]
    text, where = part["text"], {**at, "item_id": item["id"], "content_index": 0}
    return [("response.output_item.added", {**at, "item": {**item, "content": [], "status": "in_progress"}}),
            ("response.content_part.added", {**where, "part": {**part, "text": ""}}),
            *[("response.output_text.delta", {**where, "delta": w, "logprobs": []}) for w in _words(text)],
            ("response.output_text.done", {**where, "text": text, "logprobs": []}),
            ("response.content_part.done", {**where, "part": part}),
            ("response.output_item.done", {**at, "item": item})]


class ScriptedMessages(ScriptedReplies):
    """The Messages API's answers scripted too (for the fake Anthropic)."""

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        got, b, early = await self._begin(request)
        early = early or self._version_error(request)
        if early is not None:
            return early
        body = got.body or {}
        reply = self.scripted("messages", body)
        blocks: list[dict] = [{"type": "text", "text": reply.text}] if reply.text else []
        if reply.tool_call:
            blocks.append({"type": "tool_use", "id": reply.tool_call.call_id.replace("call_", "toolu_"),
                           "name": reply.tool_call.name, "input": reply.tool_call.arguments})
        stop = "tool_use" if reply.tool_call else "end_turn"
        usage = {"input_tokens": max(1, len(got.raw) // 4), "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0, "output_tokens": 7}
        message = {"id": f"msg_{uuid.uuid4().hex[:20]}", "type": "message", "role": "assistant",
                   "model": body.get("model"), "content": [], "stop_reason": None, "stop_sequence": None}
        if not body.get("stream"):
            return web.json_response({**message, "content": blocks, "stop_reason": stop, "usage": usage})
        events = [_sse("message_start", {"type": "message_start", "message": {**message,
                                                                               "usage": {**usage, "output_tokens": 1}}})]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                empty, deltas = {"type": "text", "text": ""}, [{"type": "text_delta", "text": w}
                                                               for w in _words(block["text"])]
            else:
                raw = json.dumps(block["input"])
                empty = {**block, "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": raw[i:i + 16]} for i in range(0, len(raw), 16)]
            events.append(_sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": empty}))
            events += [_sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
                       for d in deltas]
            events.append(_sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        events.append(_sse("message_delta", {"type": "message_delta", "usage": {"output_tokens": 7},
                                             "delta": {"stop_reason": stop, "stop_sequence": None}}))
        events.append(_sse("message_stop", {"type": "message_stop"}))
        return await self._stream(request, b, events)


class ScriptedOpenAI(ScriptedReplies, FakeOpenAI):
    """The fake OpenAI, its chat and responses answers scripted."""

    without_reasoning = frozenset({"gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano"})


class ScriptedAnthropic(ScriptedMessages, FakeAnthropic):
    """The fake Anthropic, its Messages and OpenAI-compatible chat answers scripted."""


class ScriptedGemini(ScriptedReplies, FakeGemini):
    """The fake Gemini, scripted, with two of Gemini's tool-call quirks: a call ends with
    `finish_reason: "stop"`, and each call is signed (`extra_content.google.thought_signature`,
    which Gemini 3 wants back on the call in the next request's history)."""

    tool_finish_reason = "stop"

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.models = [*self.models, "gemini-3-flash-preview"]  # Gemini 3 signs its calls

    def call_extra(self, call: ToolCall) -> dict:
        return {"extra_content": {"google": {"thought_signature": self.signature(call.call_id)}}}

    @staticmethod
    def signature(call_id: str) -> str:
        return f"CiQB+/sig={call_id}"  # opaque to a client; base64 characters that need care in an id

    def unsigned_calls(self) -> list[str]:
        """Ids of the calls sent back in a history without the signature they were given."""
        lost = []
        for got in self.received:
            for m in (got.body or {}).get("messages") or ():
                for call in (m.get("tool_calls") or ()) if isinstance(m, dict) else ():
                    google = (call.get("extra_content") or {}).get("google") or {}
                    if google.get("thought_signature") != self.signature(call.get("id", "")):
                        lost.append(call.get("id", ""))
        return lost


class ScriptedXAI(ScriptedReplies, FakeXAI):
    """The fake xAI, its chat and responses answers scripted."""

    without_reasoning = frozenset({"grok-4", "grok-3", "grok-4-0709"})

    def reasoning_refusal(self, model: str) -> web.Response:
        return web.json_response({"code": "Client specified an invalid argument",
                                  "error": f"Model {model} does not support parameter reasoningEffort."}, status=400)
