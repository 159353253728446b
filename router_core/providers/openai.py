"""OpenAI itself: `chat/completions` and `responses` at https://api.openai.com/v1, Bearer auth.

Bodies go as the client sent them: OpenAI is the reference the others imitate, and its error
body is the reference shape, `{"error": {"message", "type", "param", "code"}}`.
"""
from __future__ import annotations

from router_core.providers.base import UpstreamFailure
from router_core.providers.openai_compat import OpenAICompatible, provider_credit_exhausted

BASE_URL = "https://api.openai.com/v1"


class OpenAIProvider(OpenAICompatible):
    """OpenAI: chat completions and the Responses API."""

    name = "openai"
    endpoints = frozenset({"chat/completions", "responses"})

    def classify(self, status: int, error: dict, message: str) -> UpstreamFailure:
        # OpenAI says "your org's quota is spent" as 429 insufficient_quota: that is the
        # channel's account, never the OneKey client's balance.
        if status == 429 and error.get("code") == "insufficient_quota":
            return provider_credit_exhausted("OpenAI")
        return super().classify(status, error, message)
