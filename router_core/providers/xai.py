"""xAI: https://api.x.ai/v1, `chat/completions` and `responses`, Bearer auth.

Wire quirks owned here:
- Errors are `{"code": "<gRPC status text>", "error": "<message>"}`: the error is a string,
  not an object, and the code is prose, so the OpenAI `code` comes from the HTTP status.
- A wrong key is a 400 "Incorrect API key provided ...": the channel's fault, handled like a
  401 (next channel; the client never reads about a key it did not send).
- Usage may come one chunk before a trailing empty chunk and carries `cost_in_usd_ticks`
  (ignored: OneKey prices tokens from its catalog).
- xAI models are "preview" in the catalog: errors for them say they may be unavailable.
"""
from __future__ import annotations

from router_core.providers.base import UpstreamFailure
from router_core.providers.openai_compat import OpenAICompatible

BASE_URL = "https://api.x.ai/v1"
_BAD_KEY_PHRASE = "incorrect api key"


class XAIProvider(OpenAICompatible):
    name = "xai"
    endpoints = frozenset({"chat/completions", "responses"})

    def extract_error(self, parsed: object) -> dict | None:
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
            return {"message": parsed["error"], "type": None, "code": None, "param": None}
        return super().extract_error(parsed)

    def classify(self, status: int, error: dict, message: str) -> UpstreamFailure:
        if status == 400 and _BAD_KEY_PHRASE in message.lower():
            return super().classify(401, error, message)
        return super().classify(status, error, message)
