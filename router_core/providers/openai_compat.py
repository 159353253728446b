"""The shared shape of providers that speak OpenAI's REST API: URL, bearer auth, error bodies."""
from __future__ import annotations

import json
import re
from urllib.parse import urlsplit

from router_core.providers.base import UpstreamCall, openai_error
from router_core.providers.http import HttpClient, HttpResponse
from router_core.settings import ChannelSettings

# Anything shaped like a provider secret, wherever a provider echoes one back.
_SECRET_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-*.]{6,}|AIza[0-9A-Za-z_\-]{20,}|xai-[A-Za-z0-9_\-]{10,}|ok-[A-Za-z0-9_\-]{10,})")
_URL_PATTERN = re.compile(r"https?://[^\s\"'<>]+")

# OpenAI error `type` by status, for provider bodies that carry none.
_TYPE_BY_STATUS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 409: "conflict_error", 422: "invalid_request_error",
    429: "rate_limit_error",
}


class OpenAICompatible:
    """A provider reached at `{base_url}/{endpoint}` with `Authorization: Bearer <key>`."""

    name = "openai"

    def prepare(self, body: dict, endpoint: str) -> dict:
        return body

    def url(self, channel: ChannelSettings, endpoint: str) -> str:
        return f"{channel.base_url}/{endpoint}"

    def auth_headers(self, channel: ChannelSettings) -> dict[str, str]:
        return {"Authorization": f"Bearer {channel.api_key.reveal()}"}

    async def send(self, http: HttpClient, channel: ChannelSettings, call: UpstreamCall) -> HttpResponse:
        headers = {**call.headers, "Content-Type": "application/json", **self.auth_headers(channel)}
        if call.stream:
            headers["Accept"] = "text/event-stream"
        return await http.post(self.url(channel, call.endpoint), call.body, headers)

    def error_body(self, status: int, raw: bytes, channel: ChannelSettings) -> tuple[int, bytes]:
        """The provider's error as OpenAI JSON, scrubbed of keys and internal addresses."""
        try:
            parsed = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        error = self.extract_error(parsed)
        if error is None:
            return (502 if status < 500 else status), openai_error(
                f"The provider returned an unreadable error (HTTP {status}).",
                "api_error", "bad_upstream_response")
        message = self.scrub(str(error.get("message") or f"The provider returned HTTP {status}."), channel)
        type_ = error.get("type") if isinstance(error.get("type"), str) else None
        code = error.get("code")
        param = error.get("param")
        return status, openai_error(
            message,
            type_ or _TYPE_BY_STATUS.get(status, "api_error"),
            str(code) if code is not None else None,
            str(param) if param is not None else None,
        )

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


class OpenAIProvider(OpenAICompatible):
    """OpenAI itself: chat/completions and responses, as sent."""

    name = "openai"
