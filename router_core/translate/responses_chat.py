"""OpenAI Responses clients served by an OpenAI chat completions upstream.

Codex CLI, the Vercel AI SDK's `openai(model)` and the openai SDK's `client.responses` speak
/v1/responses; Anthropic's and Google's OpenAI-compatible endpoints speak only chat completions.
Translated models keep nothing between requests: `store` is accepted and ignored (the answer is
not retrievable), and what needs server-side state (`previous_response_id`, `conversation`,
`background`, prompt templates, references to stored items other than reasoning) is refused
with the field named.

The Response object echoes the request's own settings (instructions, tools, tool_choice,
temperature, metadata…) as OpenAI's does: one ResponsesToChat serves one request (translator_for
makes a new one each time) and keeps them from request() for the answer; defaults without it.

Namespace tools (`{"type": "namespace", "name": ns, "tools": [functions]}`; Codex offers its
multi-agent tools so) are flattened: each inner function is a chat function named
`<ns>__<name>` (Codex's own flat spelling), and a call of it comes back as OpenAI returns one, a
function_call item with `name` the inner name and `namespace` the namespace's; a call sent back
in `input` with its `namespace` is flattened again. `reasoning.effort` goes on as
`reasoning_effort` only to models that take it (`takes_reasoning_effort`).
"""
from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

from router_core.translate.base import TranslationError
from router_core.translate.models import takes_reasoning_effort
from router_core.translate.sse import SseEvents
from router_core.usage import Usage, json_object, parse_usage

# Output that `include` may ask for and this translator can honour without producing anything:
# encrypted reasoning is for sending reasoning back, and reasoning items are dropped on the way
# in anyway (Codex CLI always asks for it with store=false); input image URLs are about stored
# input items, of which there are none.
_HARMLESS_INCLUDES = frozenset({"reasoning.encrypted_content", "message.input_image.image_url"})
# What the openai SDK accepts as a Response's error code; anything else reads as server_error.
_RESPONSE_ERROR_CODES = frozenset({
    "server_error", "rate_limit_exceeded", "invalid_prompt", "vector_store_timeout", "invalid_image",
    "invalid_image_format", "invalid_base64_image", "invalid_image_url", "image_too_large",
    "image_too_small", "image_parse_error", "image_content_policy_violation", "invalid_image_mode",
    "image_file_too_large", "unsupported_image_media_type", "empty_image_file",
    "failed_to_download_image", "image_file_not_found",
})
# Gemini 3 signs its function calls (`extra_content.google.thought_signature` on a chat tool call)
# and answers 400 to a later request whose history holds the call without its signature.
# Responses items have no field for it and nothing is kept here between requests, so the
# signature rides in the call_id, which every client sends back verbatim with the call and its
# output: `<upstream id>~sig~<signature>`, split again on the way in.
_SIGNATURE_SEP = "~sig~"
# Between a namespace and a tool's name in the flat chat name (Codex's `canonical_flat_name`).
_NAMESPACE_SEP = "__"
_INCOMPLETE_REASONS = {"length": "max_output_tokens", "content_filter": "content_filter"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 409: "conflict_error", 422: "invalid_request_error",
                429: "rate_limit_error"}


def _new_id(prefix: str) -> str:
    """A fresh item id in OpenAI's shape (`resp_…`, `msg_…`, `fc_…`, `rs_…`)."""
    return f"{prefix}_{uuid.uuid4().hex}"


def _dumps(obj: dict) -> bytes:
    # ASCII escapes: an upstream's lone surrogate (JSON allows it) would not encode as UTF-8.
    return json.dumps(obj, separators=(",", ":")).encode()


def _obj(value: object) -> dict:
    """`value` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def _text_or(value: object, default: str) -> str:
    """`value` if it is a string, else `default`."""
    return value if isinstance(value, str) else default


def _list(value: object) -> list:
    """`value` if it is a JSON array, else an empty one."""
    return value if isinstance(value, list) else []


# ---- request: Responses -> chat ---------------------------------------------------------------

def _text_of_parts(parts: list, where: str, allow_images: bool) -> list[dict]:
    """Responses content parts as chat content parts (text and, where allowed, images)."""
    out: list[dict] = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise TranslationError("a content part must be an object", f"{where}[{j}]")
        kind = part.get("type")
        if kind in ("input_text", "output_text"):
            out.append({"type": "text", "text": _string(part.get("text"), f"{where}[{j}].text")})
        elif kind == "refusal":
            # The upstreams know no refusal field: the refusal's words are what the model said.
            out.append({"type": "text", "text": _string(part.get("refusal"), f"{where}[{j}].refusal")})
        elif kind == "input_image" and allow_images:
            out.append(_image_part(part, f"{where}[{j}]"))
        else:
            raise TranslationError(f"content part type {kind!r} cannot be sent to this model", f"{where}[{j}].type")
    return out


def _string(value: object, param: str) -> str:
    if not isinstance(value, str):
        raise TranslationError(f"{param} must be a string", param)
    return value


def _image_part(part: dict, where: str) -> dict:
    """An input_image part as a chat image_url part (URLs and data: URLs; no file ids)."""
    url = part.get("image_url")
    if not isinstance(url, str) or not url:
        # file_id refers to the Files API of the provider that holds it; the upstream has none.
        raise TranslationError("input_image needs an image_url (a URL or a data: URL); file_id cannot be used "
                               "with this model", f"{where}.image_url")
    image: dict = {"url": url}
    if part.get("detail") in ("auto", "low", "high"):  # chat takes these three only
        image["detail"] = part["detail"]
    return {"type": "image_url", "image_url": image}


def _joined(parts: list[dict]) -> str:
    return "".join(p["text"] for p in parts)


def _message(item: dict, where: str) -> dict:
    """A Responses message item as a chat message."""
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise TranslationError(f"message role {role!r} is not one of user, assistant, system, developer",
                               f"{where}.role")
    chat_role = "system" if role == "developer" else role
    content = item.get("content")
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise TranslationError("message content must be a string or a list of parts", f"{where}.content")
    parts = _text_of_parts(content, f"{where}.content", allow_images=role == "user")
    if role != "user":
        # System and assistant messages carry text only; an answer's parts are one text in pieces.
        sep = "" if role == "assistant" else "\n\n"
        return {"role": chat_role, "content": sep.join(p["text"] for p in parts)}
    if len(parts) == 1 and parts[0]["type"] == "text":
        return {"role": "user", "content": parts[0]["text"]}
    return {"role": "user", "content": parts}


def _tool_call(item: dict, where: str) -> dict:
    """A function_call item as a chat tool call (with the signature its call_id carries)."""
    arguments = item.get("arguments")
    call_id, signature = _split_call_id(_string(item.get("call_id"), f"{where}.call_id"))
    name = _string(item.get("name"), f"{where}.name")
    if isinstance(item.get("namespace"), str) and item["namespace"]:
        name = flat_name(item["namespace"], name)
    call: dict = {"id": call_id, "type": "function",
                  "function": {"name": name,
                               "arguments": arguments if isinstance(arguments, str) else "{}"}}
    if signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def _split_call_id(call_id: str) -> tuple[str, str]:
    """The upstream's call id and the signature riding with it ("" when none)."""
    upstream_id, _, signature = call_id.partition(_SIGNATURE_SEP)
    return upstream_id, signature


def _client_call_id(call: dict, upstream_id: str) -> str:
    """The call_id a client sees: the upstream's id, and its signature if it sent one."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return f"{upstream_id}{_SIGNATURE_SEP}{signature}" if isinstance(signature, str) and signature else upstream_id


def _tool_output(item: dict, where: str) -> dict:
    """A function_call_output item as a chat tool message."""
    output = item.get("output")
    if isinstance(output, list):
        # Chat tool messages carry text only: an image or file in a tool's output has no place.
        output = _joined(_text_of_parts(output, f"{where}.output", allow_images=False))
    call_id, _ = _split_call_id(_string(item.get("call_id"), f"{where}.call_id"))
    return {"role": "tool", "tool_call_id": call_id, "content": _string(output, f"{where}.output")}


def _attach_call(messages: list[dict], call: dict) -> None:
    """Consecutive calls share one assistant message, as do a message and the calls after it."""
    last = messages[-1] if messages else None
    if last is not None and last["role"] == "assistant":
        last.setdefault("tool_calls", []).append(call)
        if last.get("content") == "":
            last["content"] = None
    else:
        messages.append({"role": "assistant", "content": None, "tool_calls": [call]})


def _input_messages(items: list) -> list[dict]:
    """The `input` item list as chat messages."""
    messages: list[dict] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise TranslationError("an input item must be an object", where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            _attach_call(messages, _tool_call(item, where))
        elif kind == "function_call_output":
            messages.append(_tool_output(item, where))
        elif kind == "reasoning":
            # Chat upstreams take no reasoning in their input (and the encrypted content belongs
            # to the provider that wrote it): the conversation goes on without it.
            continue
        elif kind == "item_reference" and str(item.get("id")).startswith("rs_"):
            # A reasoning item, which would be dropped if sent whole: the AI SDK (store on by
            # default) refers to earlier reasoning this way, and nothing is lost by skipping it.
            continue
        elif kind == "item_reference":
            raise TranslationError("item_reference needs stored items; translated models keep none: send "
                                   "the items themselves with store=false (the AI SDK: "
                                   "providerOptions.openai.store = false)", f"{where}.type")
        else:
            raise TranslationError(f"input item type {kind!r} cannot be sent to this model", f"{where}.type")
    return messages


def flat_name(namespace: str, name: str) -> str:
    """A namespaced tool's chat name: `<namespace>__<name>`, as Codex flattens one."""
    return f"{namespace.rstrip('_')}{_NAMESPACE_SEP}{name.lstrip('_')}"


def _tools(tools: object) -> tuple[list[dict], dict[str, tuple[str, str]]]:
    """Function tools (those in namespaces flattened) as chat tools, and each flat name's
    (namespace, name); built-in tools have no chat equivalent."""
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list", "tools")
    out: list[dict] = []
    namespaced: dict[str, tuple[str, str]] = {}
    for i, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            out.append(_function(tool, f"tools[{i}]"))
        elif kind == "namespace":
            namespace = _string(tool.get("name"), f"tools[{i}].name")
            inner = tool.get("tools")
            if not isinstance(inner, list):
                raise TranslationError("a namespace's tools must be a list", f"tools[{i}].tools")
            for j, fn in enumerate(inner):
                where = f"tools[{i}].tools[{j}]"
                if not isinstance(fn, dict) or fn.get("type") != "function":
                    raise TranslationError("only function tools can be used in a namespace with this model",
                                           f"{where}.type")
                function = _function(fn, where)
                name = function["function"]["name"]
                function["function"]["name"] = flat_name(namespace, name)
                namespaced[function["function"]["name"]] = (namespace, name)
                out.append(function)
        else:
            raise TranslationError(_builtin_tool_message(kind), f"tools[{i}].type")
    names = [t["function"]["name"] for t in out]
    for i, name in enumerate(names):
        if name in names[:i]:  # a call of it could not be told apart
            raise TranslationError(f"two tools are named {name!r} once namespaces are flattened", "tools")
    return out, namespaced


def _function(tool: dict, where: str) -> dict:
    """A function tool as a chat tool."""
    fn = {"name": _string(tool.get("name"), f"{where}.name")}
    for key in ("description", "parameters", "strict"):
        if tool.get(key) is not None:
            fn[key] = tool[key]
    return {"type": "function", "function": fn}


def _builtin_tool_message(kind: object) -> str:
    """Why a built-in (hosted) tool is refused, and what the client can do."""
    message = (f"tool type {kind!r} is a built-in tool hosted by OpenAI; it cannot run on this model's provider. "
               "Only function tools can be used: remove it from `tools`")
    if kind in ("web_search", "web_search_preview"):
        message += ' (Codex CLI: set `web_search = "disabled"` in ~/.codex/config.toml)'
    return message


def _tool_choice(choice: object) -> object:
    """tool_choice in chat's shape: the three modes, or one function by name."""
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = _string(choice.get("name"), "tool_choice.name")
        if isinstance(choice.get("namespace"), str) and choice["namespace"]:
            name = flat_name(choice["namespace"], name)
        return {"type": "function", "function": {"name": name}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise TranslationError(f"tool_choice {kind!r} cannot be used with this model", "tool_choice")


def _response_format(text: object) -> dict | None:
    """`text.format` as chat's response_format (None for plain text)."""
    fmt = text.get("format") if isinstance(text, dict) else None
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "json_object"}
    if kind == "json_schema":
        schema = {"name": _string(fmt.get("name"), "text.format.name"), "schema": fmt.get("schema")}
        for key in ("description", "strict"):
            if fmt.get(key) is not None:
                schema[key] = fmt[key]
        return {"type": "json_schema", "json_schema": schema}
    raise TranslationError(f"text.format type {kind!r} is not text, json_object or json_schema", "text.format.type")


def _refuse_stateful(body: dict) -> None:
    """What needs state or features at OpenAI that a translated model does not have."""
    if body.get("previous_response_id") is not None:
        raise TranslationError("previous_response_id cannot be used with this model: translated models keep no "
                               "server-side state; send the whole conversation as `input`",
                               "previous_response_id")
    if body.get("conversation") is not None:
        raise TranslationError("conversation cannot be used with this model: translated models keep no "
                               "server-side state; send the whole conversation as `input`", "conversation")
    if body.get("background"):
        raise TranslationError("background responses cannot be used with this model: nothing is kept to poll",
                               "background")
    if body.get("prompt") is not None:
        raise TranslationError("prompt templates are stored at OpenAI and cannot be used with this model", "prompt")
    if body.get("context_management"):
        raise TranslationError("context_management cannot be used with this model", "context_management")
    if body.get("top_logprobs"):
        raise TranslationError("top_logprobs cannot be used with this model", "top_logprobs")
    include = body.get("include") or []
    for i, name in enumerate(include if isinstance(include, list) else [include]):
        if not isinstance(name, str) or name not in _HARMLESS_INCLUDES:
            raise TranslationError(f"include {name!r} cannot be produced by this model", f"include[{i}]")


def _messages(body: dict) -> list[dict]:
    """instructions first, then `input` (a string or a list of items)."""
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        messages.append({"role": "system", "content": _string(instructions, "instructions")})
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        messages.extend(_input_messages(given))
    elif given is not None:
        raise TranslationError("input must be a string or a list of items", "input")
    if not messages:
        raise TranslationError("input is required", "input")
    return messages


def _sampling(body: dict, out: dict) -> None:
    """Settings that map one to one (metadata, store, prompt_cache_key and hints are dropped)."""
    if body.get("max_output_tokens") is not None:
        out["max_tokens"] = body["max_output_tokens"]
    for key in ("temperature", "top_p"):
        if body.get(key) is not None:
            out[key] = body[key]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and reasoning.get("effort") is not None \
            and takes_reasoning_effort(out["model"]):
        out["reasoning_effort"] = reasoning["effort"]
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str):
        out["user"] = user


def chat_request(body: dict, upstream_model: str) -> dict:
    """The chat completions request for a Responses request body."""
    return chat_request_and_names(body, upstream_model)[0]


def chat_request_and_names(body: dict, upstream_model: str) -> tuple[dict, dict[str, tuple[str, str]]]:
    """The chat completions request, and the (namespace, name) of each flattened tool's chat name."""
    _refuse_stateful(body)
    out: dict = {"model": upstream_model, "messages": _messages(body)}
    namespaced: dict[str, tuple[str, str]] = {}
    if body.get("tools"):
        # tool_choice and parallel_tool_calls only with tools: chat refuses them on their own.
        out["tools"], namespaced = _tools(body["tools"])
        if body.get("tool_choice") is not None:
            out["tool_choice"] = _tool_choice(body["tool_choice"])
        if body.get("parallel_tool_calls") is False:
            # Only the restriction goes: true is chat's default too, and Gemini's endpoint has
            # answered an explicit true with 400 "Parallel tool calls are not supported".
            out["parallel_tool_calls"] = False
    response_format = _response_format(body.get("text"))
    if response_format is not None:
        out["response_format"] = response_format
    _sampling(body, out)
    if body.get("stream"):
        # Responses streams always end with usage; chat ones only when asked.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out, namespaced


# ---- answers: chat -> Responses -----------------------------------------------------------------

def _usage_object(usage: Usage | None) -> dict | None:
    """A Usage in the Responses API's shape."""
    if usage is None:
        return None
    return {"input_tokens": usage.input_tokens,
            "input_tokens_details": {"cached_tokens": usage.cached_input_tokens,
                                     "cache_write_tokens": usage.cache_write_tokens},
            "output_tokens": usage.output_tokens,
            "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
            "total_tokens": usage.input_tokens + usage.output_tokens}


# The request's settings a Response repeats, as the client sent them, with the JSON types they have.
_ECHOED: dict[str, type | tuple[type, ...]] = {
    "instructions": str, "max_output_tokens": int, "metadata": dict, "parallel_tool_calls": bool,
    "prompt_cache_key": str, "reasoning": dict, "safety_identifier": str, "temperature": (int, float),
    "text": dict, "tool_choice": (str, dict), "tools": list, "top_p": (int, float), "user": str}


def echoed_settings(body: dict) -> dict:
    """What of a request its Response repeats (those given, of their type: never a client's oddity)."""
    return {key: body[key] for key, kind in _ECHOED.items()
            if isinstance(body.get(key), kind) and (kind is bool or not isinstance(body[key], bool))}


def _response_object(resp_id: str, created: int, model: str, status: str, output: list,
                     usage: Usage | None, finish_reason: object = None, echo: dict | None = None) -> dict:
    """A whole Response object, repeating the request's settings (`echo`) over their defaults."""
    reason = _INCOMPLETE_REASONS.get(finish_reason) if isinstance(finish_reason, str) else None
    if status == "completed" and reason:
        status = "incomplete"
    if status != "in_progress" and usage is None:
        # A finished Response always has usage (the AI SDK refuses one without): zero when the
        # upstream sent none; metering estimates on its own then.
        usage = Usage()
    return {
        "id": resp_id, "object": "response", "created_at": created, "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "background": False, "error": None,
        # Clients read a reason as a string when the object is there (the AI SDK insists): an
        # answer cut for no known reason says nothing rather than null.
        "incomplete_details": {"reason": reason} if status == "incomplete" and reason else None,
        "instructions": None, "max_output_tokens": None, "model": model, "output": output,
        "parallel_tool_calls": True, "previous_response_id": None, "reasoning": None,
        "store": False,  # nothing is kept: the answer cannot be retrieved later
        "temperature": None, "text": {"format": {"type": "text"}}, "tool_choice": "auto",
        "tools": [], "top_p": None, "truncation": "disabled", "usage": _usage_object(usage),
        "user": None, "metadata": {}, **(echo or {}),
    }


def _reasoning_item(text: str, status: str = "completed") -> dict:
    return {"id": _new_id("rs"), "type": "reasoning", "status": status,
            "summary": [{"type": "summary_text", "text": text}]}


def _message_item(item_id: str, parts: list[dict], status: str = "completed") -> dict:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def _text_part(text: str) -> dict:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _call_item(item_id: str, call_id: str, name: str, arguments: str, status: str = "completed",
               namespaced: dict[str, tuple[str, str]] | None = None) -> dict:
    """A function_call item; a flattened namespace tool's call by its own name, with its `namespace`."""
    item = {"id": item_id, "type": "function_call", "status": status, "call_id": call_id,
            "name": name, "arguments": arguments}
    if namespaced and name in namespaced:
        item["namespace"], item["name"] = namespaced[name]
    return item


def _reasoning_text(message: dict) -> str | None:
    """The reasoning a chat upstream returned (`reasoning_content`, or `reasoning` on some)."""
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str) and message[key]:
            return message[key]
    return None


def _content_text(content: object) -> str:
    """A chat message's content as one text (some upstreams send a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def _output_items(message: dict, namespaced: dict[str, tuple[str, str]] | None = None) -> list[dict]:
    """A chat answer's message as Responses output items: reasoning, message, function calls."""
    output: list[dict] = []
    reasoning = _reasoning_text(message)
    if reasoning:
        output.append(_reasoning_item(reasoning))
    parts = []
    text = _content_text(message.get("content"))
    if text:
        parts.append(_text_part(text))
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(_message_item(_new_id("msg"), parts))
    for call in _list(message.get("tool_calls")):
        if not isinstance(call, dict):
            continue
        fn = _obj(call.get("function"))
        call_id = _client_call_id(call, call.get("id") or _new_id("call"))
        output.append(_call_item(_new_id("fc"), call_id, fn.get("name") or "", fn.get("arguments") or "",
                                 namespaced=namespaced))
    if not output:  # an empty answer is still an answer: clients read output[0]
        output.append(_message_item(_new_id("msg"), [_text_part("")]))
    return output


def responses_answer(body: bytes, client_model: str, echo: dict | None = None,
                     namespaced: dict[str, tuple[str, str]] | None = None) -> bytes:
    """A whole chat completion as a whole Response."""
    obj = json_object(body) or {}
    choices = obj.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices and isinstance(choices[0], dict) else {}
    message = _obj(choice.get("message"))
    created = obj["created"] if type(obj.get("created")) is int else int(time.time())
    response = _response_object(_new_id("resp"), created, client_model, "completed",
                                _output_items(message, namespaced), parse_usage(obj.get("usage")),
                                choice.get("finish_reason"), echo)
    return _dumps(response)


def error_answer(status: int, body: bytes) -> tuple[int, bytes]:
    """An upstream error as a well-formed OpenAI error body, same status."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        obj = None
    if isinstance(obj, list) and obj and isinstance(obj[0], dict):
        obj = obj[0]  # Gemini's compatible endpoint wraps its error in a one-element list
    error = obj.get("error") if isinstance(obj, dict) else None
    if not isinstance(error, dict):
        error = {"message": body.decode("utf-8", "replace")[:2000] or "the upstream failed"}
    message = error.get("message")
    out = {"message": message if isinstance(message, str) and message else "the upstream failed",
           "type": error.get("type") if isinstance(error.get("type"), str) else _error_type(status),
           "param": error.get("param") if isinstance(error.get("param"), str) else None,
           "code": _error_code(error)}
    return status, _dumps({"error": out})


def _error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def _error_code(error: dict) -> str | None:
    code = error.get("code")
    if isinstance(code, str):
        return code
    status = error.get("status")  # Google's name for the kind of error ("INVALID_ARGUMENT")
    return status if isinstance(status, str) else None


# ---- stream: chat SSE -> Responses SSE -----------------------------------------------------------

@dataclass
class _Item:
    """One output item being streamed: its place in `output`, its id, and what it holds so far."""

    index: int
    item_id: str
    kind: str  # "message", "reasoning" or "function_call"
    text: list[str] = field(default_factory=list)
    call_id: str = ""
    name: str = ""
    open: bool = False  # output_item.added sent (a call waits for its name)
    done: bool = False


class ResponsesStream:
    """Chat completion chunks in, Responses stream events out, one upstream event at a time."""

    def __init__(self, client_model: str, echo: dict | None = None,
                 namespaced: dict[str, tuple[str, str]] | None = None) -> None:
        self.usage: Usage | None = None
        self._echo = echo
        self._namespaced = namespaced or {}
        self.failure_status: int | None = None
        self._model = client_model
        self._id = _new_id("resp")
        self._created = int(time.time())
        self._events = SseEvents()
        self._seq = 0
        self._started = False
        self._ended = False
        self._items: list[_Item] = []
        self._text: _Item | None = None  # the message item text goes to now
        self._reasoning: _Item | None = None
        self._calls: list[_Item] = []  # the function calls, in the order they began
        self._call_ids: dict[str, _Item] = {}
        self._call_indexes: dict[int, _Item] = {}  # by the upstream's tool call index
        self._finish_reason: str | None = None

    def feed(self, data: bytes) -> bytes:
        """Upstream bytes (split anywhere) in; the Responses events they complete, out."""
        if self._ended:
            return b""  # after [DONE] or an error nothing more goes to the client
        out = [self._start()]
        for event in self._events.cut(data):
            if self._ended:
                break
            out.append(self._event(event))
        return b"".join(out)

    def finish(self) -> bytes:
        """The closing events when the upstream ended without `[DONE]`."""
        if self._ended:
            return b""
        out = [self._start()]
        rest = self._events.rest()
        if rest.strip():
            out.append(self._event(rest))  # a last event the upstream did not terminate
        if not self._ended:
            out.append(self._end())
        return b"".join(out)

    def error(self, message: str, code: str) -> bytes:
        """response.failed, then an `error` event (the openai SDK raises APIError on it)."""
        if self._ended:
            return b""
        self._ended = True
        out = [self._start()]
        failed = self._response("failed")
        failed["error"] = {"code": code if code in _RESPONSE_ERROR_CODES else "server_error", "message": message}
        out.append(self._emit("response.failed", {"response": failed}))
        # The flat fields are the Responses grammar's error event; the nested `error` is what
        # openai-python looks for in any event's data to raise APIError instead of yielding it.
        out.append(self._emit("error", {"code": code, "message": message, "param": None,
                                         "error": {"type": "api_error", "code": code, "message": message,
                                                   "param": None}}))
        return b"".join(out)

    def _upstream_error(self, error: object) -> bytes:
        """An upstream's mid-stream `{"error": ...}`: the client's stream fails with its message."""
        error = error if isinstance(error, dict) else {"message": str(error)}
        # The status the failure stands for, for the usage event and the breaker (as the native
        # readers report it): 529 for an overload, else 502.
        overloaded = error.get("type") == "overloaded_error" or error.get("code") == "provider_overloaded"
        self.failure_status = 529 if overloaded else 502
        code = _text_or(error.get("code"), "server_error")
        return self.error(str(error.get("message") or "The upstream failed mid-answer."), code)

    # -- events

    def _emit(self, name: str, payload: dict) -> bytes:
        event = {"type": name, "sequence_number": self._seq, **payload}
        self._seq += 1
        return b"event: " + name.encode() + b"\ndata: " + _dumps(event) + b"\n\n"

    def _response(self, status: str) -> dict:
        opened = sorted((item for item in self._items if item.open), key=lambda item: item.index)
        output = [self._item_object(item) for item in opened]
        return _response_object(self._id, self._created, self._model, status, output, self.usage,
                                self._finish_reason if status == "completed" else None, self._echo)

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        created = self._response("in_progress")
        return (self._emit("response.created", {"response": created})
                + self._emit("response.in_progress", {"response": created}))

    def _event(self, raw: bytes) -> bytes:
        """One upstream SSE event: its data lines joined, as JSON."""
        lines = [line[5:].lstrip(b" ") for line in raw.splitlines() if line.startswith(b"data:")]
        if not lines:
            return b""  # a comment or keep-alive
        data = b"\n".join(lines)
        if data.strip() == b"[DONE]":
            return self._end()
        chunk = json_object(data)
        if chunk is None:
            return b""
        if chunk.get("error"):
            return self._upstream_error(chunk["error"])
        return self._chunk(chunk)

    def _chunk(self, chunk: dict) -> bytes:
        """One chat completion chunk: its usage, and the deltas of its first choice."""
        if isinstance(chunk.get("usage"), dict):
            self.usage = parse_usage(chunk["usage"]) or self.usage  # keep the last believable one
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return b""
        choice = choices[0]
        out = []
        delta = _obj(choice.get("delta"))
        reasoning = _reasoning_text(delta)
        if reasoning:
            out.append(self._reasoning_delta(reasoning))
        text = _content_text(delta.get("content"))
        if text:
            out.append(self._text_delta(text))
        for call in _list(delta.get("tool_calls")):
            if isinstance(call, dict):
                out.append(self._call_delta(call))
        if isinstance(choice.get("finish_reason"), str) and choice["finish_reason"]:
            self._finish_reason = choice["finish_reason"]
        return b"".join(out)

    def _add(self, kind: str, prefix: str) -> _Item:
        item = _Item(index=-1, item_id=_new_id(prefix), kind=kind)  # its index once it opens
        self._items.append(item)
        return item

    def _reasoning_delta(self, text: str) -> bytes:
        out = [self._close_text()]
        if self._reasoning is None:
            self._reasoning = self._add("reasoning", "rs")
            out.append(self._open(self._reasoning))
        item = self._reasoning
        item.text.append(text)
        out.append(self._emit("response.reasoning_summary_text.delta", {
            "item_id": item.item_id, "output_index": item.index, "summary_index": 0, "delta": text}))
        return b"".join(out)

    def _text_delta(self, text: str) -> bytes:
        out = [self._close_reasoning()]
        if self._text is None:
            self._text = self._add("message", "msg")
            out.append(self._open(self._text))
        item = self._text
        item.text.append(text)
        out.append(self._emit("response.output_text.delta", {
            "item_id": item.item_id, "output_index": item.index, "content_index": 0, "delta": text,
            "logprobs": []}))
        return b"".join(out)

    def _call_delta(self, call: dict) -> bytes:
        """A tool call fragment: a new function_call item for a new call, else more arguments."""
        out = [self._close_reasoning(), self._close_text()]
        call_id, index = call.get("id"), call.get("index")
        item = self._known_call(call_id, index)
        if item is None:
            item = self._add("function_call", "fc")
            item.call_id = call_id if isinstance(call_id, str) and call_id else _new_id("call")
            self._calls.append(item)
            self._call_ids[item.call_id] = item
        if type(index) is int:
            self._call_indexes[index] = item
        if _SIGNATURE_SEP not in item.call_id:
            item.call_id = _client_call_id(call, item.call_id)
        fn = _obj(call.get("function"))
        if isinstance(fn.get("name"), str) and fn["name"] and not item.name:
            item.name = fn["name"]
        args = _text_or(fn.get("arguments"), "")
        item.text.append(args)
        if not item.open and item.name:
            # The arguments that came before the name went nowhere yet: they go out with it.
            out.append(self._open(item))
            args = "".join(item.text)
        if item.open and args:
            out.append(self._emit("response.function_call_arguments.delta", {
                "item_id": item.item_id, "output_index": item.index, "delta": args}))
        return b"".join(out)

    def _known_call(self, call_id: object, index: object) -> _Item | None:
        """A call already seen, known by its id first, by its index second.

        OpenAI sends a call's id once, then fragments by `index`; Gemini sends each call whole,
        without `index` or all at index 0, each with its own id: a new id is a new call.
        """
        if isinstance(call_id, str) and call_id:
            return self._call_ids.get(call_id)
        if type(index) is int:
            return self._call_indexes.get(index)
        return self._calls[-1] if self._calls else None

    def _open(self, item: _Item) -> bytes:
        """output_item.added (and, for a message or reasoning, its first part)."""
        item.index = len([i for i in self._items if i.open])
        item.open = True
        out = [self._emit("response.output_item.added", {
            "output_index": item.index, "item": self._item_object(item, "in_progress")})]
        if item.kind == "message":
            out.append(self._emit("response.content_part.added", {
                "item_id": item.item_id, "output_index": item.index, "content_index": 0,
                "part": _text_part("")}))
        elif item.kind == "reasoning":
            out.append(self._emit("response.reasoning_summary_part.added", {
                "item_id": item.item_id, "output_index": item.index, "summary_index": 0,
                "part": {"type": "summary_text", "text": ""}}))
        return b"".join(out)

    def _item_object(self, item: _Item, status: str | None = None) -> dict:
        status = status or ("completed" if item.done else "in_progress")
        text = "".join(item.text)
        if item.kind == "message":
            return _message_item(item.item_id, [_text_part(text)] if status != "in_progress" or text else [], status)
        if item.kind == "reasoning":
            summary = [{"type": "summary_text", "text": text}] if status != "in_progress" or text else []
            return {"id": item.item_id, "type": "reasoning", "status": status, "summary": summary}
        return _call_item(item.item_id, item.call_id, item.name, text if status != "in_progress" or text else "",
                          status, self._namespaced)

    def _close_text(self) -> bytes:
        item, self._text = self._text, None
        if item is None:
            return b""
        text = "".join(item.text)
        item.done = True
        where = {"item_id": item.item_id, "output_index": item.index, "content_index": 0}
        return (self._emit("response.output_text.done", {**where, "text": text, "logprobs": []})
                + self._emit("response.content_part.done", {**where, "part": _text_part(text)})
                + self._emit("response.output_item.done", {"output_index": item.index,
                                                           "item": self._item_object(item)}))

    def _close_reasoning(self) -> bytes:
        item, self._reasoning = self._reasoning, None
        if item is None:
            return b""
        text = "".join(item.text)
        item.done = True
        where = {"item_id": item.item_id, "output_index": item.index, "summary_index": 0}
        return (self._emit("response.reasoning_summary_text.done", {**where, "text": text})
                + self._emit("response.reasoning_summary_part.done",
                             {**where, "part": {"type": "summary_text", "text": text}})
                + self._emit("response.output_item.done", {"output_index": item.index,
                                                           "item": self._item_object(item)}))

    def _close_calls(self) -> bytes:
        out = []
        for item in self._calls:
            if not item.open or item.done:
                continue  # a call whose name never came cannot be called: it is left out
            item.done = True
            args = "".join(item.text)
            name = self._namespaced.get(item.name, ("", item.name))[1]  # the inner name, as in the item
            out.append(self._emit("response.function_call_arguments.done", {
                "item_id": item.item_id, "output_index": item.index, "name": name, "arguments": args}))
            out.append(self._emit("response.output_item.done", {
                "output_index": item.index, "item": self._item_object(item)}))
        return b"".join(out)

    def _end(self) -> bytes:
        """Close every open item, then response.completed (or .incomplete, as OpenAI sends it)."""
        if self._ended:
            return b""
        out = [self._close_reasoning(), self._close_text(), self._close_calls()]
        self._ended = True
        status = "completed" if self._finish_reason else "incomplete"
        response = self._response(status)
        name = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._emit(name, {"response": response}))
        return b"".join(out)


class ResponsesToChat:
    """Responses clients on a chat completions upstream."""

    client = "responses"
    upstream = "chat/completions"

    def __init__(self) -> None:
        self._echo: dict = {}  # the request's settings its Response repeats
        self._namespaced: dict[str, tuple[str, str]] = {}  # a flattened tool's chat name -> (namespace, name)

    def request(self, body: dict, upstream_model: str) -> dict:
        """The chat completions request; TranslationError for what can't go."""
        out, self._namespaced = chat_request_and_names(body, upstream_model)
        self._echo = echoed_settings(body)
        return out

    def response(self, body: bytes, client_model: str) -> bytes:
        """A whole chat completion as a Response object."""
        return responses_answer(body, client_model, self._echo, self._namespaced)

    def stream(self, client_model: str) -> ResponsesStream:
        """A translator for one streamed answer."""
        return ResponsesStream(client_model, self._echo, self._namespaced)

    def error(self, status: int, body: bytes) -> tuple[int, bytes]:
        """An upstream error, OpenAI-shaped, same status."""
        return error_answer(status, body)
