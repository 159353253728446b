"""Anthropic Messages clients (the Anthropic SDKs, Claude Code) served by a chat-completions upstream
(OpenAI, Google Gemini's and xAI's OpenAI-compatible endpoints).

Wire quirks owned here:
- The request's limit goes out as `max_completion_tokens` by default: OpenAI's reasoning models
  (o-series, GPT-5.x) reject `max_tokens` with 400 "Use 'max_completion_tokens' instead".
  `MessagesToChat(max_tokens_field="max_tokens")` serves an endpoint that knows only the old name.
- Extended thinking has no budget on chat: `budget_tokens` becomes `reasoning_effort` (low up to
  4,096, medium up to 16,384, high above); `output_config.effort` (Anthropic's own effort levels)
  wins over it. It goes only to models that take it (`takes_reasoning_effort`): OpenAI's gpt-4.1
  and xAI's grok-4 answer 400 to it, and Claude Code asks for effort on every request; effort on a
  model that does not reason changes nothing in Anthropic's own semantics.
- A `system` message among the turns (Anthropic takes them mid-conversation; Claude Code sends its
  environment block so to models it does not know) is a chat `system` message at the same place.
- Reasoning comes back (xAI, some compatible servers) as `reasoning_content`, shown as
  a `thinking` block whose `signature` is "": the block did not come from Anthropic, so there is no
  signature to give, and an Anthropic SDK keeps "" when no `signature_delta` arrives.
- Tool-call chunks: OpenAI sends a call's id and name once, then argument fragments by `index`;
  Gemini sends each call whole, without `index` (or every one at index 0), each with its own id.
  A call is therefore known by its id first, by its index second. Gemini also ends a tool-calling
  answer with `finish_reason: "stop"`: tool calls present always mean `stop_reason: "tool_use"`.
- Gemini 3 signs its tool calls (`extra_content.google.thought_signature`) and refuses a history
  whose calls lost their signature. An Anthropic client keeps nothing but what the Messages API
  has, so the signature rides in the tool_use id (`<call id>__thought__<base64url>`), which every
  client sends back unchanged, and goes back on the call when the upstream model is a Gemini one.
  Other upstreams get the bare call id.
- Usage: chat's `prompt_tokens` includes cached tokens, Anthropic's `input_tokens` does not, so
  input_tokens = prompt_tokens - cached_tokens and cache_read_input_tokens = cached_tokens. The
  usage-only chunk (`choices: []`) comes last; xAI may send it before a trailing empty chunk and
  Gemini may repeat it, so the last usage seen counts.
- `stop_sequence` is always null: chat says `stop` for a stop sequence and a natural end alike,
  so a stop sequence's end is reported as `end_turn`.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import uuid

from router_core.providers.anthropic_messages import MESSAGES_WIRE, error_body, error_type
from router_core.translate.base import TranslationError
from router_core.translate.models import takes_reasoning_effort
from router_core.translate.sse import SseEvents
from router_core.usage import Usage, json_object, parse_usage

# Chat's finish reasons as Anthropic's stop reasons (function_call: the legacy name of tool_calls).
STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                "function_call": "tool_use", "content_filter": "refusal"}
# Upper bounds of thinking.budget_tokens for each reasoning_effort; anything above is "high".
EFFORT_BUDGETS = ((4_096, "low"), (16_384, "medium"))
# Anthropic's effort levels beyond "high" have no chat equivalent that every provider takes.
EFFORT_LEVELS = {"low": "low", "medium": "medium", "high": "high", "xhigh": "high", "max": "high"}
# Request fields that change what is asked and that no chat upstream can carry.
REFUSED_FIELDS = ("container", "mcp_servers")
# Block types a chat message can carry from a user turn (tool_result handled on its own).
_USER_BLOCKS = frozenset({"text", "image", "document", "tool_result"})
# Between a tool call's id and its Gemini thought signature, in the tool_use id a client sees.
SIGNATURE_MARK = "__thought__"
_LINE_END = re.compile(rb"\r\n|\n|\r")


class MessagesToChat:
    """Anthropic Messages (`/v1/messages`) served through OpenAI chat completions."""

    client = "messages"
    upstream = "chat/completions"

    def __init__(self, max_tokens_field: str = "max_completion_tokens") -> None:
        self.max_tokens_field = max_tokens_field

    def request(self, body: dict, upstream_model: str) -> dict:
        """The chat request for a Messages request; TranslationError names what cannot go."""
        _refuse_untranslatable(body)
        signed = "gemini" in upstream_model.lower()  # extra_content is Gemini's own field
        out: dict = {"model": upstream_model, "messages": chat_messages(body, signed)}
        if body.get("max_tokens") is not None:
            out[self.max_tokens_field] = body["max_tokens"]
        for name in ("temperature", "top_p"):
            if body.get(name) is not None:
                out[name] = body[name]
        # top_k is dropped: it only narrows sampling to the k likeliest tokens (Anthropic calls it
        # an advanced option); the answer asked for stays the same, and chat has no such knob.
        if isinstance(body.get("stop_sequences"), list) and body["stop_sequences"]:
            out["stop"] = list(body["stop_sequences"])
        if body.get("stream"):
            out["stream"] = True
            out["stream_options"] = {"include_usage": True}  # usage to meter and to report
        metadata = body.get("metadata")
        user = metadata.get("user_id") if isinstance(metadata, dict) else None
        if isinstance(user, str) and user:
            out["user"] = _user_id(user)
        out.update(chat_tools(body))
        effort = reasoning_effort(body)  # validated whatever the model: a bad value is the client's fault
        if effort and takes_reasoning_effort(upstream_model):
            out["reasoning_effort"] = effort
        response_format = chat_response_format(body)
        if response_format:
            out["response_format"] = response_format
        return out

    def response(self, body: bytes, client_model: str) -> bytes:
        """A whole chat completion as a Messages `message` (ValueError if it is not JSON)."""
        obj = json_object(body)
        if obj is None:
            raise ValueError("the upstream's answer is not a JSON object")
        return _dumps(message_of_completion(obj, client_model))

    def stream(self, client_model: str) -> ChatToMessagesStream:
        """A translator for one streamed answer."""
        return ChatToMessagesStream(client_model)

    def error(self, status: int, body: bytes) -> tuple[int, bytes]:
        """An OpenAI-shaped error as Anthropic's, typed by status as the native Messages route types it."""
        obj = json_object(body)
        error = obj.get("error") if obj is not None else None
        error = error if isinstance(error, dict) else {}
        # The type comes from the status alone: OpenAI's words (OpenAI says invalid_request_error
        # with a 401) are not Anthropic's. An overload keeps Anthropic's own status, 529.
        if error.get("code") == "provider_overloaded" or error.get("type") == "overloaded_error":
            status = 529
        message = str(error.get("message") or f"The request failed (HTTP {status}).")
        return status, error_body(error_type(status), message)


# ---- request ----------------------------------------------------------------------------------

def _refuse_untranslatable(body: dict) -> None:
    """TranslationError for a top-level field that would change the answer and cannot go."""
    for name in REFUSED_FIELDS:
        if body.get(name):
            raise TranslationError(f"`{name}` is not supported by this model's provider.", name)
    # `cache_control` (top level or on blocks) is dropped everywhere: it is a caching hint, not
    # part of what is asked. `context_management` and `service_tier` likewise steer how the
    # provider handles the context and the queue, not the answer.


def _user_id(user: str) -> str:
    """`metadata.user_id` as chat's `user`: hashed when longer than OpenAI's 64 characters."""
    # Claude Code's user ids run past 100 characters; OpenAI advises hashed user ids anyway.
    return user if len(user) <= 64 else hashlib.sha256(user.encode()).hexdigest()


def chat_messages(body: dict, signed: bool = False) -> list[dict]:
    """The system prompt and the turns as chat messages (`signed`: tool calls keep Gemini's signatures)."""
    out: list[dict] = []
    system = _system_text(body.get("system"))
    if system:
        out.append({"role": "system", "content": system})
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise TranslationError("`messages` must be a list.", "messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TranslationError("Each message must be an object.", f"messages[{i}]")
        if message.get("role") == "assistant":
            out.extend(_assistant_messages(message.get("content"), f"messages[{i}]", signed))
        elif message.get("role") == "user":
            out.extend(_user_messages(message.get("content"), f"messages[{i}]"))
        elif message.get("role") == "system":
            text = _system_text(message.get("content"), f"messages[{i}].content")
            out.append({"role": "system", "content": text})
        else:
            raise TranslationError("A message's role must be user, assistant or system.", f"messages[{i}].role")
    if messages and isinstance(messages[-1], dict) and messages[-1].get("role") == "assistant":
        # Anthropic continues a final assistant message (a prefill); chat answers after it instead.
        raise TranslationError("A final assistant message (prefill) cannot be continued by this model's provider.",
                               f"messages[{len(messages) - 1}]")
    return out


def _system_text(system: object, where: str = "system") -> str:
    """A system prompt (a string or text blocks; `where` it is in the request) as one string."""
    if system is None or isinstance(system, str):
        return system or ""
    if not isinstance(system, list):
        raise TranslationError(f"`{where}` must be a string or a list of text blocks.", where)
    texts = []
    for j, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise TranslationError(f"Only text blocks can go in `{where}` here.", f"{where}[{j}].type")
        texts.append(str(block.get("text") or ""))
    return "\n\n".join(texts)


def _blocks(content: object, where: str) -> list[dict]:
    """A message's content as a list of blocks (a string is one text block)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(isinstance(b, dict) for b in content):
        raise TranslationError("A message's content must be a string or a list of blocks.", f"{where}.content")
    return content


def _user_messages(content: object, where: str) -> list[dict]:
    """A user turn: its tool results as `tool` messages first, then the rest as one user message."""
    tools: list[dict] = []
    parts: list[dict] = []
    for j, block in enumerate(_blocks(content, where)):
        at = f"{where}.content[{j}]"
        kind = block.get("type")
        if kind not in _USER_BLOCKS:
            raise TranslationError(f"`{kind}` blocks are not supported by this model's provider.", f"{at}.type")
        if kind == "tool_result":
            message, images = _tool_result(block, at)
            tools.append(message)
            parts.extend(images)
        elif kind == "text":  # citations on a text block are history, not a request: dropped
            parts.append({"type": "text", "text": str(block.get("text") or "")})
        elif kind == "document":
            parts.append({"type": "text", "text": _document_text(block, at)})
        else:
            parts.append(_image_part(block, at))
    if len(parts) == 1 and parts[0]["type"] == "text":
        return [*tools, {"role": "user", "content": parts[0]["text"]}]  # the plainest form: any server takes it
    return [*tools, {"role": "user", "content": parts}] if parts else tools


def _document_text(block: dict, where: str) -> str:
    """A plain-text document as text; PDFs, files and citation requests cannot go to chat."""
    citations = block.get("citations")
    if isinstance(citations, dict) and citations.get("enabled"):
        raise TranslationError("Citations are not supported by this model's provider.", f"{where}.citations")
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") != "text":
        raise TranslationError(f"`{source.get('type')}` document sources are not supported by this model's provider.",
                               f"{where}.source.type")
    title = block.get("title")
    return f"{title}\n\n{source.get('data') or ''}" if title else str(source.get("data") or "")


def _image_part(block: dict, where: str) -> dict:
    """An image block as chat's `image_url` part (base64 as a data: URL)."""
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = str(source.get("url"))
    else:  # file ids live at Anthropic; chat upstreams cannot read them
        raise TranslationError("Only base64 and url image sources are supported here.", f"{where}.source.type")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result(block: dict, where: str) -> tuple[dict, list[dict]]:
    """A tool_result as a `tool` message, and its images (chat's tool messages take only text)."""
    content = block.get("content")
    texts: list[str] = []
    images: list[dict] = []
    for k, part in enumerate(_blocks(content, where) if content is not None else []):
        if part.get("type") == "text":
            texts.append(str(part.get("text") or ""))
        elif part.get("type") == "image":
            # Images go in the user message that follows the tool messages, where chat takes them.
            images.append(_image_part(part, f"{where}.content[{k}]"))
        else:
            raise TranslationError(f"`{part.get('type')}` blocks in a tool result are not supported here.",
                                   f"{where}.content[{k}].type")
    text = "\n\n".join(texts)
    if block.get("is_error"):
        text = f"Error: {text}" if text else "Error"  # chat has no error flag: the model reads it
    call_id = split_tool_use_id(str(block.get("tool_use_id") or ""))[0]
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _assistant_messages(content: object, where: str, signed: bool) -> list[dict]:
    """An assistant turn as one chat message with its text and tool calls (none when empty)."""
    texts: list[str] = []
    calls: list[dict] = []
    for j, block in enumerate(_blocks(content, where)):
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            calls.append(_chat_tool_call(block, signed))
        elif kind in ("thinking", "redacted_thinking"):
            # Dropped: thinking is the model's own working, signed for Anthropic's models only;
            # chat providers take no such input, and the answer it led to stays in the history.
            continue
        else:
            raise TranslationError(f"`{kind}` blocks are not supported by this model's provider.",
                                   f"{where}.content[{j}].type")
    if not texts and not calls:
        return []
    message: dict = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return [message]


def _chat_tool_call(block: dict, signed: bool) -> dict:
    """A tool_use block as a chat tool call, with its Gemini signature when `signed`."""
    call_id, signature = split_tool_use_id(str(block.get("id") or ""))
    call: dict = {"id": call_id, "type": "function",
                  "function": {"name": str(block.get("name") or ""), "arguments": json.dumps(block.get("input") or {})}}
    if signed and signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def tool_use_id(call_id: str, call: dict) -> str:
    """The tool_use id for a chat tool call: its id, and its Gemini thought signature if it has one."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    if not isinstance(signature, str) or not signature:
        return call_id
    # base64url: the id stays within Anthropic's id alphabet ([A-Za-z0-9_-]) whatever the signature holds.
    return call_id + SIGNATURE_MARK + base64.urlsafe_b64encode(signature.encode()).rstrip(b"=").decode()


def split_tool_use_id(tool_use_id: str) -> tuple[str, str | None]:
    """A tool_use id as the chat call id and the Gemini signature it carries (None: none)."""
    call_id, mark, encoded = tool_use_id.partition(SIGNATURE_MARK)
    if not mark:
        return tool_use_id, None
    try:
        signature = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True).decode()
    except (binascii.Error, ValueError):  # not one this translator made: the id as it is
        return tool_use_id, None
    return (call_id, signature) if signature else (tool_use_id, None)


def chat_tools(body: dict) -> dict:
    """`tools`, `tool_choice` and `parallel_tool_calls` for the chat request."""
    tools = body.get("tools")
    if not tools:
        return {}  # OpenAI refuses tool_choice and parallel_tool_calls without tools
    if not isinstance(tools, list):
        raise TranslationError("`tools` must be a list.", "tools")
    out: dict = {"tools": [_chat_tool(tool, i) for i, tool in enumerate(tools)]}
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "auto":
            out["tool_choice"] = "auto"
        elif kind == "any":
            out["tool_choice"] = "required"
        elif kind == "none":
            out["tool_choice"] = "none"
        elif kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": str(choice.get("name"))}}
        else:
            raise TranslationError(f"tool_choice `{kind}` is not supported here.", "tool_choice.type")
        if choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    return out


def _chat_tool(tool: object, i: int) -> dict:
    """A client tool as a chat function; server tools (a `type` other than custom) are refused."""
    if not isinstance(tool, dict):
        raise TranslationError("Each tool must be an object.", f"tools[{i}]")
    kind = tool.get("type")
    if kind not in (None, "custom"):
        raise TranslationError(f"The server tool `{kind}` is not supported by this model's provider.",
                               f"tools[{i}].type")
    function: dict = {"name": tool.get("name"),
                      "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        function["description"] = tool["description"]
    # `strict` is not passed on: OpenAI's strict mode refuses schemas with optional properties,
    # which Anthropic's strict tool use accepts.
    return {"type": "function", "function": function}


def reasoning_effort(body: dict) -> str | None:
    """Chat's `reasoning_effort` for Anthropic's `output_config.effort` or thinking budget."""
    config = body.get("output_config")
    effort = config.get("effort") if isinstance(config, dict) else None
    if effort is not None:
        if effort not in EFFORT_LEVELS:
            raise TranslationError(f"Unknown effort `{effort}`.", "output_config.effort")
        return EFFORT_LEVELS[effort]
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return None  # disabled, or adaptive: the model's own default
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise TranslationError("`thinking.budget_tokens` must be an integer.", "thinking.budget_tokens")
    return next((name for limit, name in EFFORT_BUDGETS if budget <= limit), "high")


def chat_response_format(body: dict) -> dict | None:
    """Chat's json_schema `response_format` for `output_config.format` (or beta `output_format`)."""
    config = body.get("output_config")
    fmt, param = (config.get("format"), "output_config.format") if isinstance(config, dict) else (None, "")
    if fmt is None and body.get("output_format") is not None:
        fmt, param = body["output_format"], "output_format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise TranslationError("Only a json_schema format with a schema is supported.", param)
    # Not `strict`: OpenAI's strict mode refuses any schema with an optional property, which
    # Anthropic's structured outputs allow; the schema still steers the answer.
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": fmt["schema"]}}


# ---- whole answer -----------------------------------------------------------------------------

def message_of_completion(obj: dict, client_model: str) -> dict:
    """A chat completion (decoded) as a Messages `message`."""
    choices = obj.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = choice.get("message") if isinstance(choice.get("message"), dict) else {}
    content: list[dict] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    text = message.get("content")
    if isinstance(text, str) and text:
        content.append({"type": "text", "text": text})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        content.append({"type": "text", "text": refusal})
    calls = [c for c in message.get("tool_calls") or () if isinstance(c, dict)]
    content.extend(_tool_use_block(call) for call in calls)
    stop = stop_reason(choice.get("finish_reason"), bool(calls))
    if isinstance(refusal, str) and refusal:
        stop = "refusal"
    return {"id": message_id(obj.get("id")), "type": "message", "role": "assistant", "model": client_model,
            "content": content, "stop_reason": stop, "stop_sequence": None,
            "usage": anthropic_usage(parse_usage(obj.get("usage")))}


def _reasoning_text(message: dict) -> str:
    """The reasoning a chat message carries (`reasoning_content`, or `reasoning` on some servers)."""
    for name in ("reasoning_content", "reasoning"):
        value = message.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _tool_use_block(call: dict) -> dict:
    """A chat tool call as a tool_use block."""
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    return {"type": "tool_use", "id": tool_use_id(str(call.get("id") or _tool_id()), call),
            "name": str(function.get("name") or ""), "input": tool_input(function.get("arguments"))}


def tool_input(arguments: object) -> dict:
    """A tool call's arguments (a JSON string) as tool_use `input`: {} when not a JSON object.

    Anthropic's `input` must be an object; text that is not one cannot be carried faithfully, and
    an empty input lets the client's own validation of the tool's arguments report the fault.
    """
    if isinstance(arguments, dict):
        return arguments
    if not isinstance(arguments, str) or not arguments.strip():
        return {}
    try:
        value = json.loads(arguments)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def stop_reason(finish_reason: object, has_tool_calls: bool) -> str:
    """Anthropic's stop_reason for a chat finish_reason (tool calls mean tool_use, as Gemini says stop)."""
    if has_tool_calls and finish_reason in (None, "stop", "tool_calls", "function_call"):
        return "tool_use"
    return STOP_REASONS.get(finish_reason, "end_turn") if isinstance(finish_reason, str) else "end_turn"


def message_id(chat_id: object) -> str:
    """A `msg_` id from the chat completion's id (a fresh one when it has none)."""
    if isinstance(chat_id, str) and chat_id:
        return "msg_" + chat_id.removeprefix("chatcmpl-")
    return "msg_" + uuid.uuid4().hex


def _tool_id() -> str:
    return "toolu_" + uuid.uuid4().hex


def anthropic_usage(usage: Usage | None) -> dict:
    """Anthropic's usage object: input_tokens without the cache reads, which are counted apart."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0}
    return {"input_tokens": usage.input_tokens - usage.cached_input_tokens, "output_tokens": usage.output_tokens,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": usage.cached_input_tokens}


# ---- stream -----------------------------------------------------------------------------------

def sse(name: str, data: dict) -> bytes:
    """One Anthropic SSE event."""
    return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"


def _dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class ChatToMessagesStream:
    """Turns one chat-completions SSE stream into Anthropic's Messages SSE events, incrementally."""

    def __init__(self, client_model: str) -> None:
        self.client_model = client_model
        self.usage: Usage | None = None
        # Set when the upstream ended the stream with its own error chunk: the status it stands
        # for, for the usage event and the breaker (529 for an overload, else 502: the upstream's).
        self.failure_status: int | None = None
        self._events = SseEvents()
        self._started = False
        self._ended = False
        self._finish_reason: str | None = None
        self._blocks = 0  # content blocks opened so far
        self._open: tuple[str, int] | None = None  # (kind, index) of the open block
        self._tool_ids: dict[str, int] = {}  # a tool call's id -> its block index
        self._tool_indexes: dict[int, int] = {}  # a tool call's chat index -> its block index

    def feed(self, data: bytes) -> bytes:
        """Upstream bytes (split anywhere) in; the Anthropic events they complete, out."""
        if self._ended:
            return b""  # after [DONE] or an error event nothing more goes to the client
        out: list[bytes] = []
        for event in self._events.cut(data):
            if self._ended:
                break
            self._event(event, out)
        return b"".join(out)

    def finish(self) -> bytes:
        """The closing events not yet sent (also when the upstream ended without [DONE])."""
        out: list[bytes] = []
        event = self._events.rest()
        if event.strip() and not self._ended:  # a last event without its blank line
            self._event(event, out)
        self._close(out)
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        """Anthropic's `error` event, which ends the client's stream."""
        self._ended = True  # finish() then adds nothing: the SDKs raise on the error event
        return MESSAGES_WIRE.stream_error(message, code)

    def _event(self, event: bytes, out: list[bytes]) -> None:
        """One whole SSE event from the upstream."""
        data = [line[5:].removeprefix(b" ") for line in _LINE_END.split(event) if line.startswith(b"data:")]
        if not data:
            return  # a comment, or an event without data
        payload = b"\n".join(data)
        if payload.strip() == b"[DONE]":
            self._close(out)
            return
        obj = json_object(payload)
        if obj is None:
            return  # not JSON: nothing a client could be told
        if "error" in obj:
            out.append(self._upstream_error(obj["error"]))
            return
        self._chunk(obj, out)

    def _upstream_error(self, error: object) -> bytes:
        """An upstream's mid-stream `{"error": ...}` as Anthropic's error event."""
        error = error if isinstance(error, dict) else {"message": str(error)}
        overloaded = error.get("type") == "overloaded_error" or error.get("code") == "provider_overloaded"
        type_ = "overloaded_error" if overloaded else "api_error"
        self.failure_status = 529 if overloaded else 502
        self._ended = True
        message = str(error.get("message") or "The upstream failed mid-answer.")
        return b"event: error\ndata: " + error_body(type_, message) + b"\n\n"

    def _chunk(self, chunk: dict, out: list[bytes]) -> None:
        """One chat.completion.chunk."""
        if not self._started:
            out.append(self._message_start(chunk))
        usage = parse_usage(chunk.get("usage"))
        if usage is not None:
            self.usage = usage  # the last one seen: xAI and Gemini may send more than one
        for choice in chunk.get("choices") or ():
            if isinstance(choice, dict) and choice.get("index", 0) == 0:
                self._choice(choice, out)

    def _message_start(self, chunk: dict) -> bytes:
        self._started = True
        message = {"id": message_id(chunk.get("id")), "type": "message", "role": "assistant",
                   "model": self.client_model, "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": anthropic_usage(parse_usage(chunk.get("usage")))}
        return sse("message_start", {"type": "message_start", "message": message})

    def _choice(self, choice: dict, out: list[bytes]) -> None:
        """A choice's delta as block events; its finish_reason closes the open block."""
        delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
        reasoning = _reasoning_text(delta)
        if reasoning:
            self._delta("thinking", {"type": "thinking_delta", "thinking": reasoning}, out)
        for name in ("content", "refusal"):
            text = delta.get(name)
            if isinstance(text, str) and text:
                self._delta("text", {"type": "text_delta", "text": text}, out)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool_delta(call, out)
        if choice.get("finish_reason"):
            self._finish_reason = str(choice["finish_reason"])
            self._close_block(out)

    def _delta(self, kind: str, delta: dict, out: list[bytes]) -> None:
        """A text or thinking delta, in the open block of its kind or a new one."""
        if self._open is not None and self._open[0] == kind:
            index = self._open[1]
        else:
            block = {"type": "text", "text": ""} if kind == "text" else {"type": "thinking", "thinking": "", "signature": ""}
            index = self._open_block(kind, block, out)
        out.append(sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))

    def _tool_delta(self, call: dict, out: list[bytes]) -> None:
        """A tool call fragment: a new tool_use block when its id (or index) is new, else its arguments."""
        call_id, index = call.get("id"), call.get("index")
        function = call.get("function") if isinstance(call.get("function"), dict) else {}
        block = self._tool_block(call_id, index)
        if block is None:
            call_id = str(call_id or _tool_id())
            block = self._open_block("tool", {"type": "tool_use", "id": tool_use_id(call_id, call),
                                              "name": str(function.get("name") or ""), "input": {}}, out)
            self._tool_ids[call_id] = block
            if isinstance(index, int):
                self._tool_indexes[index] = block
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # A fragment of a call whose block is closed (a provider interleaving calls) still goes
            # to that call's index: the SDKs accumulate deltas by index.
            out.append(sse("content_block_delta", {"type": "content_block_delta", "index": block,
                                                   "delta": {"type": "input_json_delta", "partial_json": arguments}}))

    def _tool_block(self, call_id: object, index: object) -> int | None:
        """The block of a tool call already seen, known by its id first, by its index second."""
        if isinstance(call_id, str) and call_id:
            return self._tool_ids.get(call_id)
        if isinstance(index, int) and index in self._tool_indexes:
            return self._tool_indexes[index]
        if index is None and self._open is not None and self._open[0] == "tool":
            return self._open[1]  # Gemini's fragments without id or index: the open call's
        return None

    def _open_block(self, kind: str, block: dict, out: list[bytes]) -> int:
        """Close the open block, open the next one; its index."""
        self._close_block(out)
        index, self._blocks = self._blocks, self._blocks + 1
        self._open = (kind, index)
        out.append(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        return index

    def _close_block(self, out: list[bytes]) -> None:
        if self._open is not None:
            out.append(sse("content_block_stop", {"type": "content_block_stop", "index": self._open[1]}))
            self._open = None

    def _close(self, out: list[bytes]) -> None:
        """The closing events: the open block's stop, message_delta with usage, message_stop."""
        if self._ended:
            return
        if not self._started:
            out.append(self._message_start({}))
        self._close_block(out)
        self._ended = True
        usage = anthropic_usage(self.usage)
        delta = {"stop_reason": stop_reason(self._finish_reason, bool(self._tool_ids)), "stop_sequence": None}
        out.append(sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage}))
        out.append(sse("message_stop", {"type": "message_stop"}))
