"""What a translator needs to know about the upstream model it writes a request for.

One rule, by the provider's model id, kept narrow on purpose: a model it does not name gets the
safe choice (the field left out), and a new model is added here when its provider documents it.
"""
from __future__ import annotations

import re

# Chat's `reasoning_effort` is taken by:
# - OpenAI's reasoning models: the o-series (o1, o3, o3-mini, o4-mini, ...) and GPT-5 and later
#   (gpt-5*, gpt-6*), except their `-chat` variants, which do not reason; gpt-4.1 and gpt-4o
#   answer 400 `unsupported_parameter`.
# - Gemini 2.5 and later (2.5 and 3.x think; the OpenAI-compatible endpoint maps the effort to a
#   thinking budget); Gemini 2.0 does not think.
# - xAI's grok-3-mini and grok-4.3 (docs.x.ai, "Reasoning": "Only grok-3-mini supports
#   reasoning_effort", later also grok-4.3); grok-3, grok-4 and grok-4-fast-reasoning refuse it
#   with an error (grok-4 always reasons, at its own effort).
# Anything else (Anthropic's compatible endpoint ignores it anyway) does not get it: effort asked
# of a model that does not take it is a no-op in Anthropic's own semantics, not a failure.
_REASONING_EFFORT = re.compile(
    r"(o\d+(-mini|-pro)?|gpt-[56](\.\d+)?(-(?!chat)[a-z0-9.-]*)?"
    r"|gemini-(2\.[5-9]|[3-9](\.\d+)?)(-[a-z0-9.-]*)?"
    r"|grok-3-mini(-[a-z0-9.-]*)?|grok-4\.3(-[a-z0-9.-]*)?)(-\d{4}-\d{2}-\d{2})?")


def takes_reasoning_effort(upstream_model: str) -> bool:
    """Whether a chat upstream's model takes `reasoning_effort` (see the rule above)."""
    name = upstream_model.lower().rsplit("/", 1)[-1]  # Gemini's `models/…` form, too
    return _REASONING_EFFORT.fullmatch(name) is not None
