"""Anthropic through its OpenAI-compatible endpoint: https://api.anthropic.com/v1/chat/completions,
and its native Messages API on the same channels (its wire in anthropic_messages.py).

Wire quirks owned here:
- Auth: Anthropic's own `x-api-key` header (the compatibility layer also takes a Bearer token).
- It ignores many OpenAI fields (response_format, logprobs, seed, penalties, store, user,
  reasoning_effort, ...) silently; it caps temperature at 1 and wants `n` == 1. We cap
  temperature ourselves (same result, visible in our code) and refuse `n` > 1 with a clear
  400 instead of a provider error.
- Errors come as `{"type": "error", "error": {"type", "message"}, "request_id"}`; overload is 529.
- An Anthropic account out of credit answers 400 invalid_request_error ("Your credit balance is
  too low ..."). That is the channel's account, not the client's request: we turn it into a 503
  `provider_credit_exhausted` and try the next channel. Anthropic gives no code for it, so the
  stable phrase of its message is the only signal; it is matched here and nowhere else.
- Its model list is Anthropic's own API, not the compatibility layer: `GET /v1/models` with
  `x-api-key` and `anthropic-version`, paged by `after_id` while `has_more` (at most 1000 a page).
"""
from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlencode

from router_core.errors import InvalidRequest
from router_core.providers import anthropic_messages
from router_core.providers.base import OPENAI_WIRE, UpstreamCall, UpstreamFailure, Wire
from router_core.providers.http import HttpClient, HttpResponse
from router_core.providers.openai_compat import OpenAICompatible, provider_credit_exhausted
from router_core.settings import ChannelSettings

BASE_URL = "https://api.anthropic.com/v1"
API_VERSION = "2023-06-01"  # the Messages API's one stable version: sent when the client names none
_CREDIT_PHRASE = "credit balance is too low"
_MAX_PAGES = 20


class AnthropicProvider(OpenAICompatible):
    name = "anthropic"
    endpoints = frozenset({"chat/completions"}) | anthropic_messages.ENDPOINTS

    def wire(self, endpoint: str) -> Wire:
        if endpoint == anthropic_messages.COUNT_TOKENS:
            return anthropic_messages.COUNT_TOKENS_WIRE
        return anthropic_messages.MESSAGES_WIRE if endpoint == anthropic_messages.MESSAGES else OPENAI_WIRE

    async def send(self, http: HttpClient, channel: ChannelSettings, call: UpstreamCall) -> HttpResponse:
        if call.endpoint in anthropic_messages.ENDPOINTS and not any(
                k.lower() == "anthropic-version" for k in call.headers):
            call = replace(call, headers={**call.headers, "anthropic-version": API_VERSION})
        return await super().send(http, channel, call)

    def prepare(self, body: dict, endpoint: str) -> dict:
        if endpoint in anthropic_messages.ENDPOINTS:
            return body  # the native API: the client's body as it is
        n = body.get("n")
        if n is not None and n != 1:
            raise InvalidRequest("Anthropic models return one choice: `n` must be 1.", param="n",
                                 code="unsupported_value")
        temperature = body.get("temperature")
        if isinstance(temperature, (int, float)) and not isinstance(temperature, bool) and temperature > 1:
            body["temperature"] = 1
        return body

    def auth_headers(self, channel: ChannelSettings) -> dict[str, str]:
        return {"x-api-key": channel.api_key.reveal()}

    async def list_models(self, http: HttpClient, channel: ChannelSettings) -> list[str]:
        headers = {**self.auth_headers(channel), "anthropic-version": API_VERSION}
        ids: list[str] = []
        query = {"limit": "1000"}
        for _ in range(_MAX_PAGES):
            page = await self.get_json(http, channel, f"{channel.base_url}/models?{urlencode(query)}", headers)
            ids += self.model_ids(page)
            if not (isinstance(page, dict) and page.get("has_more") and isinstance(page.get("last_id"), str)):
                break
            query["after_id"] = page["last_id"]
        return ids

    def classify(self, status: int, error: dict, message: str) -> UpstreamFailure:
        if status == 400 and _CREDIT_PHRASE in message.lower():
            return provider_credit_exhausted("Anthropic")
        if error.get("type") == "overloaded_error":
            error = {**error, "type": "api_error", "code": "provider_overloaded"}
        return super().classify(status, error, message)
