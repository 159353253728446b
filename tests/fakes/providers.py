"""Fake Anthropic, Gemini and xAI on loopback, each speaking its provider's dialect of the
OpenAI-compatible API: its path, its auth header, its error bodies and its usage quirks.

They share FakeOpenAI's machinery (queued behaviours, recorded requests); only the dialect
differs, which is exactly what the provider modules under test must cope with.
"""
from __future__ import annotations

import socket

from aiohttp import web

from tests.fakes.anthropic_messages import MessagesAPI, anthropic_error
from tests.fakes.openai_provider import Behaviour, FakeOpenAI, listed_today

__all__ = ["Behaviour", "FakeAnthropic", "FakeGemini", "FakeOpenAI", "FakeXAI", "closed_port_url"]


class FakeAnthropic(MessagesAPI, FakeOpenAI):
    """api.anthropic.com/v1: `x-api-key`, Anthropic error envelopes; the OpenAI-compatible
    chat/completions and the native Messages API (tests/fakes/anthropic_messages.py)."""

    endpoints = ("chat/completions", "messages", "messages/count_tokens")

    def __init__(self, api_key: str = "sk-ant-fake-provider-key-0123456789", name: str = "anthropic") -> None:
        super().__init__(api_key, name)
        self.models = [m.replace("claude-haiku-4-5", "claude-haiku-4-5-20251001") for m in listed_today("anthropic")]
        self.page_size = 1000  # Anthropic's largest page; a test lowers it to see paging work

    def model_list(self, request: web.Request) -> web.Response:
        """Anthropic's own `GET /v1/models`: needs `anthropic-version`, pages by `after_id`."""
        if not request.headers.get("anthropic-version"):
            return web.json_response(anthropic_error("invalid_request_error",
                                                     "anthropic-version: header is required"), status=400)
        limit = min(int(request.query.get("limit", "20")), self.page_size)
        after = request.query.get("after_id")
        start = self.models.index(after) + 1 if after in self.models else 0
        page = self.models[start:start + limit]
        return web.json_response({
            "data": [{"type": "model", "id": m, "display_name": m, "created_at": "2026-01-01T00:00:00Z"} for m in page],
            "has_more": start + limit < len(self.models), "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None})

    def handlers(self) -> dict:
        return {**super().handlers(), **self.messages_handlers()}

    def authorized(self, request: web.Request) -> bool:
        return request.headers.get("x-api-key") == self.api_key

    def auth_failure(self, request: web.Request) -> web.Response:
        return web.json_response(anthropic_error("authentication_error", "invalid x-api-key"), status=401)

    def error_payload(self, status: int, message: str) -> object:
        return self.messages_error_payload(status, message)


ANTHROPIC_NO_CREDIT = anthropic_error(
    "invalid_request_error",
    "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade "
    "or purchase credits.")


class FakeGemini(FakeOpenAI):
    """generativelanguage.googleapis.com/v1beta/openai: Bearer Gemini key, Google API errors.

    Streams repeat usage (a partial count, then the real one), so a gateway must keep the last
    non-null usage it sees.
    """

    base_path = "/v1beta/openai"
    endpoints = ("chat/completions",)

    def __init__(self, api_key: str = "AIzaSyFakeGeminiKey0123456789abcdefghij", name: str = "gemini") -> None:
        super().__init__(api_key, name)
        self.models = listed_today("google")

    def model_list(self, request: web.Request) -> web.Response:
        """Gemini names its models as its native API does: `models/gemini-2.5-pro`."""
        return web.json_response({"object": "list", "data": [
            {"id": f"models/{m}", "object": "model", "owned_by": "google"} for m in self.models]})

    def auth_failure(self, request: web.Request) -> web.Response:
        return web.json_response([google_error(400, "API key not valid. Please pass a valid API key.",
                                               "INVALID_ARGUMENT", reason="API_KEY_INVALID")], status=400)

    def error_payload(self, status: int, message: str) -> object:
        google_status = {429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}.get(status, "UNKNOWN")
        return [google_error(status, message, google_status)]

    def chat_usage_events(self, base: dict, usage: dict, with_usage: bool) -> list[dict]:
        if not with_usage:
            return []
        partial = {**usage, "completion_tokens": 0, "total_tokens": usage["prompt_tokens"]}
        return [{**base, "object": "chat.completion.chunk", "choices": [], "usage": partial},
                {**base, "object": "chat.completion.chunk", "choices": [], "usage": usage}]


def google_error(code: int, message: str, status: str, reason: str | None = None) -> dict:
    error: dict = {"code": code, "message": message, "status": status}
    if reason:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason,
                             "domain": "googleapis.com"}]
    return {"error": error}


class FakeXAI(FakeOpenAI):
    """api.x.ai/v1: Bearer, chat and responses, `{"code", "error"}` errors, cost ticks in usage,
    and usage one chunk before a trailing empty chunk."""

    def __init__(self, api_key: str = "xai-fake-provider-key-0123456789abcdef", name: str = "xai") -> None:
        super().__init__(api_key, name)
        self.models = listed_today("xai")

    def auth_failure(self, request: web.Request) -> web.Response:
        return web.json_response({"code": "Client specified an invalid argument",
                                  "error": "Incorrect API key provided: xa***ef. You can obtain an API key "
                                           "from https://console.x.ai."}, status=400)

    def error_payload(self, status: int, message: str) -> object:
        return {"code": "Some requested entity was not found" if status == 404 else "Internal error",
                "error": message}

    def chat_usage_events(self, base: dict, usage: dict, with_usage: bool) -> list[dict]:
        if not with_usage:
            return []
        usage = {**usage, "num_sources_used": 0, "cost_in_usd_ticks": 123456}
        return [{**base, "object": "chat.completion.chunk", "choices": [], "usage": usage},
                {**base, "object": "chat.completion.chunk", "choices": [
                    {"index": 0, "delta": {"content": ""}, "finish_reason": None}], "usage": None}]


def closed_port_url(path: str = "/v1") -> str:
    """A loopback URL where nothing listens (connect refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
