"""Google Gemini through its OpenAI-compatible endpoint:
https://generativelanguage.googleapis.com/v1beta/openai/chat/completions, Bearer auth with the
Gemini API key.

Wire quirks owned here:
- Errors are Google API errors, `{"error": {"code": 400, "message", "status": "INVALID_ARGUMENT",
  "details": [...]}}`, sometimes wrapped in a one-element list. `code` is the HTTP number, so
  the OpenAI `code` becomes the lower-cased Google `status`.
- A bad or revoked key is a 400 whose details carry `reason: API_KEY_INVALID`: the channel's
  fault, so it moves to the next channel like a 401 would.
- Streams may repeat `usage`; the stream scanner keeps the last non-null one.
- Its model list (`GET .../openai/models`) names models as Gemini's native API does,
  `models/gemini-2.5-pro`; the chat endpoint takes the bare id, so the prefix is dropped.
"""
from __future__ import annotations

from router_core.providers.base import UpstreamFailure
from router_core.providers.openai_compat import OpenAICompatible

BASE_URL = "https://generativelanguage.googleapis.com/v1beta/openai"
_STATUS_TYPE = {"INVALID_ARGUMENT": "invalid_request_error", "FAILED_PRECONDITION": "invalid_request_error",
                "NOT_FOUND": "not_found_error", "PERMISSION_DENIED": "permission_error",
                "UNAUTHENTICATED": "authentication_error", "RESOURCE_EXHAUSTED": "rate_limit_error"}


class GoogleProvider(OpenAICompatible):
    name = "google"
    endpoints = frozenset({"chat/completions"})

    def model_ids(self, listing: object) -> list[str]:
        return [i.removeprefix("models/") for i in super().model_ids(listing)]

    def extract_error(self, parsed: object) -> dict | None:
        error = super().extract_error(parsed)
        if error is None:
            return None
        status = error.get("status")
        if isinstance(status, str):
            details = error.get("details")
            reasons = [d.get("reason") for d in details if isinstance(d, dict)] if isinstance(details, list) else []
            return {"message": error.get("message"), "type": _STATUS_TYPE.get(status),
                    "code": status.lower(), "param": None, "reasons": reasons}
        return error

    def classify(self, status: int, error: dict, message: str) -> UpstreamFailure:
        if "API_KEY_INVALID" in (error.get("reasons") or ()):
            return super().classify(401, error, message)
        return super().classify(status, {k: v for k, v in error.items() if k != "reasons"}, message)
