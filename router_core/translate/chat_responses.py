"""OpenAI chat completions clients served by an OpenAI Responses upstream.

Some OpenAI models (the gpt-5.x codex and pro models) are served only on /v1/responses; this lets
every chat client use them. The upstream request always goes with `store: false`: the provider
keeps nothing (behind a shared key a stored response would be readable by anyone holding its id),
and a chat client never refers to a stored response anyway.

One instance serves one request (translator_for makes a new one each time): the stream needs to
know whether the client asked for the usage chunk, which only the request says.
"""
from __future__ import annotations

import json
import time
import uuid

from router_core.translate.base import TranslationError
from router_core.translate.responses_chat import error_answer
from router_core.translate.sse import SseEvents
from router_core.usage import Usage, json_object, parse_usage

# Chat fields Responses has no counterpart for: refused when they would change the answer.
_REFUSED_WHEN_SET = ("stop", "logit_bias", "audio", "prediction", "web_search_options", "functions",
                     "function_call", "logprobs", "top_logprobs")
_REFUSED_WHEN_NONZERO = ("frequency_penalty", "presence_penalty")
_PARAGRAPH = "\n\n"  # between the texts of two message items
_FINISH_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}


def _dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _obj(value: object) -> dict:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _list(value: object) -> list:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


def _string(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise TranslationError(f"{param} must be a string", param)
    return value


# ---- request: chat -> Responses ---------------------------------------------------------------

def _text(content: object, where: str) -> str:
    """A system, developer, assistant or tool message's content as one text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError("content must be a string or a list of parts", where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(_string(part.get("text"), f"{where}[{j}].text"))
        elif kind == "refusal":
            texts.append(_string(part.get("refusal"), f"{where}[{j}].refusal"))
        else:
            raise TranslationError(f"content part type {kind!r} cannot be used in this message", f"{where}[{j}].type")
    return "".join(texts)


def _user_part(part: object, where: str) -> dict:
    """A user content part as a Responses input part."""
    if not isinstance(part, dict):
        raise TranslationError("a content part must be an object", where)
    kind = part.get("type")
    if kind == "text":
        return {"type": "input_text", "text": _string(part.get("text"), f"{where}.text")}
    if kind == "image_url":
        image = part.get("image_url")
        image = image if isinstance(image, dict) else {"url": image}
        detail = image.get("detail") if image.get("detail") in ("auto", "low", "high") else "auto"
        return {"type": "input_image", "image_url": _string(image.get("url"), f"{where}.image_url.url"),
                "detail": detail}
    if kind == "file" and isinstance(part.get("file"), dict) and isinstance(part["file"].get("file_data"), str):
        file = part["file"]
        out = {"type": "input_file", "file_data": file["file_data"]}
        if isinstance(file.get("filename"), str):
            out["filename"] = file["filename"]
        return out
    if kind == "file":
        # A file_id names a file in some account's Files API; the gateway's provider account holds none.
        raise TranslationError("file parts need file_data; file_id cannot be used with this model",
                               f"{where}.file.file_data")
    raise TranslationError(f"content part type {kind!r} cannot be sent to this model", f"{where}.type")


def _user(message: dict, where: str) -> dict:
    content = message.get("content")
    if isinstance(content, str):
        return {"role": "user", "content": content}
    if not isinstance(content, list):
        raise TranslationError("content must be a string or a list of parts", f"{where}.content")
    return {"role": "user", "content": [_user_part(p, f"{where}.content[{j}]") for j, p in enumerate(content)]}


def _assistant(message: dict, where: str) -> list[dict]:
    """An assistant message as a message item and one function_call item per tool call."""
    items: list[dict] = []
    text = _text(message.get("content"), f"{where}.content")
    if text:
        items.append({"role": "assistant", "content": text})
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError("tool_calls must be a list", f"{where}.tool_calls")
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(fn, dict) or call.get("type", "function") != "function":
            raise TranslationError("only function tool calls can be sent to this model", f"{at}.type")
        items.append({"type": "function_call", "call_id": _string(call.get("id"), f"{at}.id"),
                      "name": _string(fn.get("name"), f"{at}.function.name"),
                      "arguments": fn.get("arguments") if isinstance(fn.get("arguments"), str) else "{}"})
    return items


def _input(messages: object) -> list[dict]:
    """Chat messages as Responses input items."""
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list", "messages")
    items: list[dict] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role in ("system", "developer"):
            items.append({"role": role, "content": _text(message.get("content"), f"{where}.content")})
        elif role == "user":
            items.append(_user(message, where))
        elif role == "assistant":
            items.extend(_assistant(message, where))
        elif role == "tool":
            items.append({"type": "function_call_output",
                          "call_id": _string(message.get("tool_call_id"), f"{where}.tool_call_id"),
                          "output": _text(message.get("content"), f"{where}.content")})
        else:
            raise TranslationError(f"message role {role!r} cannot be sent to this model", f"{where}.role")
    return items


def _tool(tool: object, i: int) -> dict:
    """A chat function tool as a Responses function tool."""
    fn = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
    if not isinstance(fn, dict):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise TranslationError(f"tool type {kind!r} cannot be sent to this model", f"tools[{i}].type")
    # Responses makes function tools strict unless told otherwise; chat does the opposite.
    out = {"type": "function", "name": _string(fn.get("name"), f"tools[{i}].function.name"),
           "strict": fn.get("strict") is True}
    for key in ("description", "parameters"):
        if fn.get(key) is not None:
            out[key] = fn[key]
    return out


def _tool_choice(choice: object) -> object:
    if choice in ("auto", "none", "required"):
        return choice
    fn = choice.get("function") if isinstance(choice, dict) and choice.get("type") == "function" else None
    if isinstance(fn, dict):
        return {"type": "function", "name": _string(fn.get("name"), "tool_choice.function.name")}
    raise TranslationError("tool_choice must be auto, none, required or one function", "tool_choice")


def _text_param(body: dict) -> dict | None:
    """response_format and verbosity as the Responses `text` parameter."""
    text: dict = {}
    fmt = body.get("response_format")
    kind = _obj(fmt).get("type")
    if kind == "json_schema" and isinstance(_obj(fmt).get("json_schema"), dict):
        schema = _obj(fmt)["json_schema"]
        name = _string(schema.get("name"), "response_format.json_schema.name")
        text["format"] = {"type": "json_schema", "name": name, "schema": schema.get("schema") or {}}
        for key in ("description", "strict"):
            if schema.get(key) is not None:
                text["format"][key] = schema[key]
    elif kind == "json_object":
        text["format"] = {"type": "json_object"}
    elif fmt is not None and kind != "text":
        raise TranslationError(f"response_format type {kind!r} cannot be sent to this model", "response_format.type")
    if body.get("verbosity") is not None:
        text["verbosity"] = body["verbosity"]
    return text or None


def _refuse_untranslatable(body: dict) -> None:
    """Chat settings with no Responses counterpart, refused by name when they would matter."""
    for key in _REFUSED_WHEN_SET:
        if body.get(key):
            raise TranslationError(f"{key} cannot be used with this model (served through the Responses API)", key)
    for key in _REFUSED_WHEN_NONZERO:
        if body.get(key):
            raise TranslationError(f"{key} cannot be used with this model (served through the Responses API)", key)
    if body.get("n") not in (None, 1):
        raise TranslationError("n must be 1 for this model", "n")
    if body.get("modalities") not in (None, ["text"]):
        raise TranslationError("only text output can be produced by this model", "modalities")


def responses_request(body: dict, upstream_model: str) -> dict:
    """The Responses request for a chat completions request body."""
    _refuse_untranslatable(body)
    out: dict = {"model": upstream_model, "input": _input(body.get("messages")), "store": False}
    if body.get("tools"):
        if not isinstance(body["tools"], list):
            raise TranslationError("tools must be a list", "tools")
        out["tools"] = [_tool(tool, i) for i, tool in enumerate(body["tools"])]
        if body.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice(body["tool_choice"])
        if isinstance(body.get("parallel_tool_calls"), bool):
            out["parallel_tool_calls"] = body["parallel_tool_calls"]
    # seed is dropped: Responses has none, and chat promises only best-effort determinism with it.
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    if limit is not None:
        out["max_output_tokens"] = limit
    for key in ("temperature", "top_p", "metadata", "service_tier", "prompt_cache_key", "safety_identifier", "user"):
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("reasoning_effort") is not None:
        out["reasoning"] = {"effort": body["reasoning_effort"]}
    text = _text_param(body)
    if text:
        out["text"] = text
    if body.get("stream"):
        out["stream"] = True  # Responses streams end with usage unasked; stream_options is chat's
    return out


# ---- answers: Responses -> chat -------------------------------------------------------------------

def chat_usage(usage: Usage | None) -> dict | None:
    """A Usage in chat completions' shape."""
    if usage is None:
        return None
    return {"prompt_tokens": usage.input_tokens, "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens}}


def _finish_reason(response: dict, has_calls: bool) -> str:
    details = response.get("incomplete_details")
    reason = details.get("reason") if isinstance(details, dict) else None
    if response.get("status") == "incomplete" and isinstance(reason, str) and reason in _FINISH_REASONS:
        return _FINISH_REASONS[reason]
    return "tool_calls" if has_calls else "stop"


def _message(output: object) -> dict:
    """The output items as one chat message (reasoning has no place in chat: it is left out)."""
    texts, refusals, calls = [], [], []
    for item in output if isinstance(output, list) else []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            parts = [p for p in _list(item.get("content")) if isinstance(p, dict)]
            text = "".join(str(p.get("text") or "") for p in parts if p.get("type") == "output_text")
            if text:
                texts.append(text)
            for part in parts:
                if part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            calls.append({"id": item.get("call_id") or f"call_{uuid.uuid4().hex}", "type": "function",
                          "function": {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}})
    # Separate message items (a preamble, then the answer) read as paragraphs in one chat message.
    message: dict = {"role": "assistant", "content": _PARAGRAPH.join(texts) if texts or not calls else None,
                     "refusal": "".join(refusals) or None, "annotations": []}
    if calls:
        message["tool_calls"] = calls
    return message


def chat_answer(body: bytes, client_model: str) -> bytes:
    """A whole Response as a whole chat completion."""
    response = json_object(body) or {}
    message = _message(response.get("output"))
    created = response["created_at"] if type(response.get("created_at")) is int else int(time.time())
    return _dumps({
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": created,
        "model": client_model, "choices": [{"index": 0, "message": message, "logprobs": None,
                                            "finish_reason": _finish_reason(response, "tool_calls" in message)}],
        "usage": chat_usage(parse_usage(response.get("usage"))), "system_fingerprint": None})


# ---- stream: Responses SSE -> chat SSE ------------------------------------------------------------

class ChatStream:
    """Responses stream events in, chat completion chunks out, one upstream event at a time."""

    def __init__(self, client_model: str, include_usage: bool) -> None:
        self.usage: Usage | None = None
        self.failure_status: int | None = None
        self._model = client_model
        self._include_usage = include_usage
        self._id = f"chatcmpl-{uuid.uuid4().hex}"
        self._created = int(time.time())
        self._events = SseEvents()
        self._started = False
        self._ended = False
        self._calls: dict[str, int] = {}  # a function_call item's id -> its chat tool call index
        self._streamed: set[str] = set()  # function_call items whose arguments went out
        self._text_item: str | None = None  # the message item text last came from

    def feed(self, data: bytes) -> bytes:
        """Upstream bytes (split anywhere) in; the chat chunks they complete, out."""
        if self._ended:
            return b""
        out = []
        for event in self._events.cut(data):
            if self._ended:
                break
            out.append(self._event(event))
        return b"".join(out)

    def finish(self) -> bytes:
        """At the upstream's end without response.completed: an error chunk, as the answer is cut."""
        if self._ended:
            return b""
        rest = self._events.rest()
        out = self._event(rest) if rest.strip() else b""
        if self._ended:
            return out
        self.failure_status = 502
        return out + self.error("The upstream ended the answer before it was complete.", "upstream_incomplete")

    def error(self, message: str, code: str) -> bytes:
        """A chunk whose `error` the openai SDKs raise on, then the stream's end."""
        if self._ended:
            return b""
        self._ended = True
        error = {"message": message, "type": "api_error", "param": None, "code": code}
        return b"data: " + _dumps({"error": error}) + b"\n\n"

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        chunk = {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model,
                 "system_fingerprint": None,
                 "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]}
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI sends it: null on every chunk but the last
        return b"data: " + _dumps(chunk) + b"\n\n"

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        return self._chunk({"role": "assistant", "content": "", "refusal": None})

    def _event(self, raw: bytes) -> bytes:
        """One upstream SSE event (its `event:` line is repeated as the data's `type`)."""
        lines = [line[5:].lstrip(b" ") for line in raw.splitlines() if line.startswith(b"data:")]
        event = json_object(b"\n".join(lines)) if lines else None
        if event is None:
            return b""  # a comment, a keep-alive, or not JSON
        kind = event.get("type")
        if kind == "response.output_text.delta":
            return self._start() + self._text_delta(str(event.get("item_id")), str(event.get("delta") or ""))
        if kind == "response.refusal.delta":
            return self._start() + self._chunk({"refusal": str(event.get("delta") or "")})
        if kind == "response.output_item.added":
            return self._call_added(event.get("item"))
        if kind == "response.function_call_arguments.delta":
            return self._arguments(event, str(event.get("delta") or ""))
        if kind == "response.function_call_arguments.done" and str(event.get("item_id")) not in self._streamed:
            return self._arguments(event, str(event.get("arguments") or ""))  # arguments sent whole
        if kind in ("response.completed", "response.incomplete"):
            return self._start() + self._end(event.get("response"))
        if kind in ("response.failed", "error"):
            return self._failed(event)
        return self._start() if kind == "response.created" else b""

    def _text_delta(self, item_id: str, delta: str) -> bytes:
        """A text delta; the first of a new message item after another's text opens a paragraph."""
        if not delta:
            return b""
        if self._text_item is not None and item_id != self._text_item:
            delta = _PARAGRAPH + delta
        self._text_item = item_id
        return self._chunk({"content": delta})

    def _call_added(self, item: object) -> bytes:
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return b""
        index = self._calls[str(item.get("id"))] = len(self._calls)
        if item.get("arguments"):
            self._streamed.add(str(item.get("id")))
        call = {"index": index, "id": item.get("call_id") or f"call_{uuid.uuid4().hex}", "type": "function",
                "function": {"name": item.get("name") or "", "arguments": item.get("arguments") or ""}}
        return self._start() + self._chunk({"tool_calls": [call]})

    def _arguments(self, event: dict, arguments: str) -> bytes:
        item_id = str(event.get("item_id"))
        index = self._calls.get(item_id)
        if index is None or not arguments:
            return b""  # arguments of an item never announced: no call to add them to
        self._streamed.add(item_id)
        return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]})

    def _end(self, response: object) -> bytes:
        """The finish_reason chunk, the usage chunk if the client asked for it, and [DONE]."""
        response = response if isinstance(response, dict) else {}
        self.usage = parse_usage(response.get("usage")) or self.usage
        self._ended = True
        out = [self._chunk({}, _finish_reason(response, bool(self._calls)))]
        if self._include_usage:
            out.append(b"data: " + _dumps({"id": self._id, "object": "chat.completion.chunk", "created": self._created,
                                           "model": self._model, "system_fingerprint": None, "choices": [],
                                           "usage": chat_usage(self.usage)}) + b"\n\n")
        out.append(b"data: [DONE]\n\n")
        return b"".join(out)

    def _failed(self, event: dict) -> bytes:
        """response.failed or an error event: the client's stream ends with the error chunk."""
        response = _obj(event.get("response"))
        self.usage = parse_usage(response.get("usage")) or self.usage
        error: dict = _obj(response.get("error")) or event
        if isinstance(error.get("error"), dict):
            error = error["error"]
        code = error["code"] if isinstance(error.get("code"), str) else "upstream_error"
        self.failure_status = 429 if code == "rate_limit_exceeded" else 502
        return self.error(str(error.get("message") or "The upstream failed mid-answer."), code)


class ChatToResponses:
    """Chat completions clients on a Responses upstream (one instance per request)."""

    client = "chat/completions"
    upstream = "responses"

    def __init__(self) -> None:
        self._include_usage = False

    def request(self, body: dict, upstream_model: str) -> dict:
        """The Responses request; TranslationError for what can't go."""
        options = body.get("stream_options")
        self._include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return responses_request(body, upstream_model)

    def response(self, body: bytes, client_model: str) -> bytes:
        """A whole Response as a chat completion."""
        return chat_answer(body, client_model)

    def stream(self, client_model: str) -> ChatStream:
        """A translator for one streamed answer."""
        return ChatStream(client_model, self._include_usage)

    def error(self, status: int, body: bytes) -> tuple[int, bytes]:
        """An upstream error, OpenAI-shaped, same status."""
        return error_answer(status, body)
