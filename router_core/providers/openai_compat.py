"""The shared shape of providers that speak OpenAI's REST API: URL, auth, error bodies.

A provider module subclasses OpenAICompatible and overrides only its quirks: the auth header,
the shape of its error body, and which of its answers mean "the provider's trouble" (worth
another channel) rather than "the client's request is wrong".
"""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from router_core import availability
from router_core.catalog import ModelInfo
from router_core.providers.base import OPENAI_WIRE, UpstreamCall, UpstreamError, UpstreamFailure, Wire, openai_error
from router_core.providers.http import HttpClient, HttpResponse
from router_core.settings import ChannelSettings

# Anything shaped like a provider secret, wherever a provider echoes one back.
_SECRET_PATTERN = re.compile(
    r"(sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{20,}|xai-[A-Za-z0-9_\-]{10,}|ok-[A-Za-z0-9_\-]{10,})")
_URL_PATTERN = re.compile(r"https?://[^\s\"'<>]+")

# OpenAI error `type` by status, for provider bodies that carry none.
_TYPE_BY_STATUS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 409: "conflict_error", 422: "invalid_request_error",
    429: "rate_limit_error",
}
# Provider statuses that are the provider's trouble, and what the client sees for each once
# no channel is left: 5xx stays a gateway-class status (a 500 would read as OneKey's own crash).
RETRY_STATUS = {408: 504, 429: 429, 500: 502, 502: 502, 503: 503, 504: 504,
                520: 502, 521: 502, 522: 504, 524: 504, 529: 503}
# Said after a preview model's error message, in the words of its /v1/models status note.
PREVIEW_NOTE = " " + availability.PREVIEW_NOTE


# Errors of a model-list call concern no model: their messages get no model's note.
_NO_MODEL = ModelInfo(id="", provider="", upstream_id="", display_name="", input_price=0, output_price=0,
                      cached_input_price=0, context_window=1, status="available", endpoints=frozenset(), created=0)


def provider_credit_exhausted(provider: str) -> UpstreamFailure:
    """The channel's account at the provider has no credit left: OneKey's problem, not the
    client's. Shown as 503 (not 402/429 insufficient_quota, which would tell the client that
    *their* OneKey balance is empty) and worth another channel, which may bill another account."""
    return UpstreamFailure(503, openai_error(
        f"The {provider} account behind this route is out of credit; OneKey is retrying elsewhere "
        "or the operator has been alerted. Try again later.", "api_error", "provider_credit_exhausted"), True)


class OpenAICompatible:
    """A provider reached at `{base_url}/{endpoint}` with `Authorization: Bearer <key>`."""

    name = "openai_compatible"
    endpoints = frozenset({"chat/completions"})

    def prepare(self, body: dict, endpoint: str) -> dict:
        return body

    def wire(self, endpoint: str) -> Wire:
        return OPENAI_WIRE

    def url(self, channel: ChannelSettings, endpoint: str) -> str:
        return f"{channel.base_url}/{endpoint}"

    def auth_headers(self, channel: ChannelSettings) -> dict[str, str]:
        return {"Authorization": f"Bearer {channel.api_key.reveal()}"}

    async def send(self, http: HttpClient, channel: ChannelSettings, call: UpstreamCall) -> HttpResponse:
        headers = {**call.headers, **self.auth_headers(channel)}
        if call.body:
            headers["Content-Type"] = "application/json"
        if call.stream:
            headers["Accept"] = "text/event-stream"
        return await http.request(call.method, self.url(channel, call.endpoint), call.body or None, headers)

    async def list_models(self, http: HttpClient, channel: ChannelSettings) -> list[str]:
        """The model ids the provider lists for this channel's key (`GET {base_url}/models`)."""
        return self.model_ids(await self.get_json(http, channel, f"{channel.base_url}/models", self.auth_headers(channel)))

    def model_ids(self, listing: object) -> list[str]:
        """The ids of an OpenAI-shaped model list, `{"data": [{"id": ...}, ...]}`."""
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            raise UpstreamError("The provider's model list is not an OpenAI-shaped list.", 502, "bad_upstream_response")
        return [d["id"] for d in data if isinstance(d, dict) and isinstance(d.get("id"), str)]

    async def get_json(self, http: HttpClient, channel: ChannelSettings, url: str, headers: dict[str, str]) -> object:
        """GET a JSON document from the provider; UpstreamError (scrubbed) on anything but a 200."""
        resp = await http.request("GET", url, None, headers)
        try:
            raw = await resp.read()
        finally:
            resp.close()
        if resp.status != 200:
            failure = self.error(resp.status, raw[:65536], channel, _NO_MODEL)
            message = json.loads(failure.body)["error"]["message"]
            raise UpstreamError(f"HTTP {resp.status}: {message}", resp.status, "model_list_failed")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise UpstreamError("The provider's model list is not JSON.", 502, "bad_upstream_response") from None

    def error(self, status: int, raw: bytes, channel: ChannelSettings, model: ModelInfo) -> UpstreamFailure:
        """The provider's error as OpenAI JSON, scrubbed of keys and internal addresses."""
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        error = self.extract_error(parsed)
        if error is None:
            # HTML from a proxy in front of the provider, an empty body, garbage: not the
            # provider's API judging the request, so another channel may do better.
            failure = UpstreamFailure(
                RETRY_STATUS.get(status, 502),
                openai_error(f"The provider returned an unreadable answer (HTTP {status}).",
                             "api_error", "bad_upstream_response"), True)
        else:
            message = self.scrub(str(error.get("message") or f"The provider returned HTTP {status}."), channel)
            failure = self.classify(status, error, message)
        if model.status == "preview" and (failure.retryable or failure.status == 404):
            failure.body = with_note(failure.body, PREVIEW_NOTE)
        return failure

    def classify(self, status: int, error: dict, message: str) -> UpstreamFailure:
        """Whose fault the error is, and what the client sees. Providers override quirks."""
        type_ = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code")
        param = error.get("param")
        code_s = str(code) if code is not None else None
        param_s = str(param) if param is not None else None
        if status in (401, 403):
            # The channel's provider key was refused: the operator's problem, not the client's
            # (a 401 would tell the SDK user their OneKey key is wrong). Try another channel.
            return UpstreamFailure(502, openai_error(
                "The provider refused this gateway's credentials for the model; try again later.",
                "api_error", "provider_auth_failed"), True)
        if status in RETRY_STATUS or status >= 500:
            return UpstreamFailure(RETRY_STATUS.get(status, 502), openai_error(
                message, type_ or _TYPE_BY_STATUS.get(status, "api_error"), code_s, param_s), True)
        return UpstreamFailure(status, openai_error(
            message, type_ or _TYPE_BY_STATUS.get(status, "invalid_request_error"), code_s, param_s), False)

    def extract_error(self, parsed: object) -> dict | None:
        """The error object of a decoded error body (OpenAI: {"error": {...}})."""
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            return parsed["error"]
        if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
            return self.extract_error(parsed[0])
        return None

    @staticmethod
    def scrub(text: str, channel: ChannelSettings) -> str:
        """Remove the channel's key, anything key-shaped and the provider's addresses."""
        key = channel.api_key.reveal()
        if key:
            text = text.replace(key, "[redacted]")
        text = _SECRET_PATTERN.sub("[redacted]", text)
        host = urlsplit(channel.base_url).netloc
        text = _URL_PATTERN.sub("[provider-url]", text)
        if host:
            text = text.replace(host, "[provider]")
        return text


def with_note(body: bytes, note: str) -> bytes:
    """An OpenAI error body with a sentence appended to its message."""
    obj = json.loads(body)
    obj["error"]["message"] = (obj["error"].get("message") or "") + note
    return json.dumps(obj).encode()

