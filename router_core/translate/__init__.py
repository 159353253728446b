"""Format translators, one module per (client format x upstream format), and the one table
that picks a pair for a request.

A model is served natively on the endpoints its catalog entry lists (`ModelInfo.endpoints`);
on any other client endpoint it is served through a translator to one of those. The modules
are imported on first use, so the native path never pays for them and a missing pair simply
leaves the route unserved (refused as before).
"""
from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from router_core.translate.base import StreamTranslator, TranslationError, Translator

if TYPE_CHECKING:
    from router_core.catalog import ModelInfo

logger = logging.getLogger(__name__)

# The client endpoints every servable model answers on.
CLIENT_ENDPOINTS = ("chat/completions", "responses", "messages")

# client endpoint -> the upstream endpoints it can be translated to, in order of preference,
# each with the module and class of its translator.
PAIRS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "messages": (("chat/completions", "router_core.translate.messages_chat", "MessagesToChat"),
                 ("responses", "router_core.translate.chain", "MessagesToResponses")),
    "responses": (("chat/completions", "router_core.translate.responses_chat", "ResponsesToChat"),),
    "chat/completions": (("responses", "router_core.translate.chat_responses", "ChatToResponses"),),
}

_loaded: dict[tuple[str, str], type | None] = {}  # (module, class) -> the class, or None if absent


def _translator_class(module: str, name: str) -> type | None:
    """The translator class, imported once; None while its module does not exist."""
    key = (module, name)
    if key not in _loaded:
        try:
            _loaded[key] = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            _loaded[key] = None
    return _loaded[key]


def upstream_for(client_endpoint: str, endpoints: frozenset[str] | set[str]) -> str | None:
    """The upstream endpoint a client endpoint is translated to for a model natively on
    `endpoints`; None when it is native there or no translator reaches one of them."""
    if client_endpoint in endpoints:
        return None
    for upstream, module, name in PAIRS.get(client_endpoint, ()):
        if upstream in endpoints and _translator_class(module, name) is not None:
            return upstream
    return None


def translator_for(client_endpoint: str, model: ModelInfo) -> Translator | None:
    """A translator serving `client_endpoint` on `model`, or None (native there, or no pair)."""
    if client_endpoint in model.endpoints:
        return None
    for upstream, module, name in PAIRS.get(client_endpoint, ()):
        if upstream in model.endpoints:
            cls = _translator_class(module, name)
            if cls is not None:
                return cls()
    return None


def translated_endpoints(endpoints: frozenset[str] | set[str]) -> list[str]:
    """The client endpoints served by translation for a model natively on `endpoints`."""
    return [e for e in CLIENT_ENDPOINTS if upstream_for(e, endpoints) is not None]


__all__ = ["CLIENT_ENDPOINTS", "PAIRS", "StreamTranslator", "TranslationError", "Translator",
           "translated_endpoints", "translator_for", "upstream_for"]
