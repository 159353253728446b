"""Provider modules, registered in one table: provider name -> implementation."""
from __future__ import annotations

from router_core.providers.anthropic import AnthropicProvider
from router_core.providers.base import Provider, UpstreamCall, UpstreamError, UpstreamFailure, UpstreamResponse
from router_core.providers.google import GoogleProvider
from router_core.providers.openai import OpenAIProvider
from router_core.providers.sandbox import SandboxProvider
from router_core.providers.xai import XAIProvider


def registry() -> dict[str, Provider]:
    """A fresh set of providers for one core: the sandbox keeps the responses it made."""
    return {
        "openai": OpenAIProvider(),
        "anthropic": AnthropicProvider(),
        "google": GoogleProvider(),
        "xai": XAIProvider(),
        "sandbox": SandboxProvider(),
    }


# For lookups that hold no state (error mapping, auth headers, endpoints).
REGISTRY: dict[str, Provider] = registry()

__all__ = ["REGISTRY", "registry", "Provider", "UpstreamCall", "UpstreamError", "UpstreamFailure", "UpstreamResponse"]
