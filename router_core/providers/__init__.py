"""Provider modules, registered in one table: provider name -> implementation."""
from __future__ import annotations

from router_core.providers.anthropic import AnthropicProvider
from router_core.providers.base import Provider, UpstreamCall, UpstreamError, UpstreamFailure, UpstreamResponse
from router_core.providers.google import GoogleProvider
from router_core.providers.openai import OpenAIProvider
from router_core.providers.sandbox import SandboxProvider
from router_core.providers.xai import XAIProvider

REGISTRY: dict[str, Provider] = {
    "openai": OpenAIProvider(),
    "anthropic": AnthropicProvider(),
    "google": GoogleProvider(),
    "xai": XAIProvider(),
    "sandbox": SandboxProvider(),
}

__all__ = ["REGISTRY", "Provider", "UpstreamCall", "UpstreamError", "UpstreamFailure", "UpstreamResponse"]
