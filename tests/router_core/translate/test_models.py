"""Which upstream models take chat's `reasoning_effort`: the providers' documented lists."""
from __future__ import annotations

import pytest

from router_core.translate.models import takes_reasoning_effort


@pytest.mark.parametrize("model", [
    "o1", "o3", "o3-mini", "o3-pro", "o4-mini", "o4-mini-2025-04-16",
    "gpt-5", "gpt-5-mini-2025-08-07", "gpt-5.2", "gpt-5.3-codex", "gpt-5.5", "gpt-6-sol", "GPT-5",
    "gemini-2.5-flash", "gemini-2.5-flash-lite", "models/gemini-2.5-pro", "gemini-3-flash-preview",
    "gemini-3.1-pro-preview", "grok-3-mini", "grok-3-mini-fast", "grok-4.3"])
def test_reasoning_models_take_it(model: str) -> None:
    assert takes_reasoning_effort(model)


@pytest.mark.parametrize("model", [
    "gpt-4.1", "gpt-4.1-mini", "gpt-4o", "gpt-5-chat-latest", "gpt-5.2-chat-latest", "gemini-2.0-flash",
    # xAI: grok-3, grok-4 and grok-4-fast-reasoning refuse it (grok-4 reasons at its own effort).
    "grok-3", "grok-4", "grok-4-0709", "grok-4-1-fast-reasoning", "grok-code-fast-1", "grok-4.20",
    "claude-haiku-4-5", "claude-sonnet-4-5", "m", ""])
def test_other_models_do_not(model: str) -> None:
    assert not takes_reasoning_effort(model)
