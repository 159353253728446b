"""Decoding and checking a client's request body before anything is sent upstream."""
from __future__ import annotations

import json
from dataclasses import dataclass

from router_core.errors import InvalidRequest

ENDPOINTS = frozenset({"chat/completions", "responses"})


@dataclass(slots=True)
class ClientRequest:
    body: dict
    model_name: str
    stream: bool
    wants_usage: bool  # the client itself asked for the usage chunk of a stream


def decode(endpoint: str, raw: bytes) -> ClientRequest:
    """The decoded body; raises InvalidRequest naming what is wrong."""
    if endpoint not in ENDPOINTS:
        raise InvalidRequest(f"Unknown endpoint /v1/{endpoint}.", code="unknown_url")
    if not raw.strip():
        raise InvalidRequest("The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        # The position is safe to show; the text around it is not (it is content).
        pos = getattr(exc, "pos", None)
        where = f" (at character {pos})" if isinstance(pos, int) else ""
        raise InvalidRequest(f"We could not parse the JSON body of your request{where}.", code="invalid_json") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", code="invalid_json")
    model = body.get("model")
    if model is None:
        raise InvalidRequest("You must provide a model parameter.", param="model", code="missing_required_parameter")
    if not isinstance(model, str):
        raise InvalidRequest("`model` must be a string.", param="model", code="invalid_type")
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("`stream` must be a boolean.", param="stream", code="invalid_type")
    if endpoint == "chat/completions":
        messages = body.get("messages")
        if messages is None:
            raise InvalidRequest("Missing required parameter: 'messages'.", param="messages",
                                 code="missing_required_parameter")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest("`messages` must be a non-empty array.", param="messages", code="invalid_type")
        if not all(isinstance(m, dict) for m in messages):
            raise InvalidRequest("Each item of `messages` must be an object.", param="messages", code="invalid_type")
    opts = body.get("stream_options")
    if opts is not None and not isinstance(opts, dict):
        raise InvalidRequest("`stream_options` must be an object.", param="stream_options", code="invalid_type")
    wants_usage = bool(opts and opts.get("include_usage") is True)
    return ClientRequest(body=body, model_name=model, stream=stream, wants_usage=wants_usage)
