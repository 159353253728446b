"""Provider modules, registered in one table: provider name -> implementation."""
from __future__ import annotations

from router_core.providers.base import Provider, UpstreamCall, UpstreamError, UpstreamResponse
from router_core.providers.openai_compat import OpenAIProvider
from router_core.providers.sandbox import SandboxProvider

REGISTRY: dict[str, Provider] = {
    "openai": OpenAIProvider(),
    "sandbox": SandboxProvider(),
}

__all__ = ["REGISTRY", "Provider", "UpstreamCall", "UpstreamError", "UpstreamResponse"]
