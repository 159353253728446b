"""The assistant's one call: chat completions on OneKey's own edge, with the system key."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from account.settings import Secret

if TYPE_CHECKING:
    import requests

logger = logging.getLogger(__name__)


class AssistantUnavailable(Exception):
    """No answer this time (briefly unavailable, unless a subclass says more); the message is safe to show."""


class AssistantNotConfigured(AssistantUnavailable):
    """This install cannot run the assistant as configured (its model has no channel here, its key is
    refused): retrying will not help until the operator changes something."""


class AssistantOutOfBudget(AssistantUnavailable):
    """The assistant's system project has no credit left."""


def ask(base_url: str, key: Secret, model: str, system: str, question: str, timeout: float) -> str:
    """The model's answer to the question, given the system prompt. Raises AssistantUnavailable."""
    import requests  # ~5 MiB with its dependencies: loaded by the assistant's first question

    body = {"model": model, "max_tokens": 800, "temperature": 0.2,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": question}]}
    try:
        response = requests.post(f"{base_url}/chat/completions", json=body, timeout=(5, timeout),
                                 headers={"Authorization": f"Bearer {key.reveal()}"})
    except requests.RequestException as exc:
        logger.warning("assistant: the OneKey engine is not reachable: %s", type(exc).__name__)
        raise AssistantUnavailable("The assistant cannot reach the OneKey engine right now. "
                                   "Try again in a minute.") from None
    if response.status_code != 200:
        status, code = response.status_code, _code(response)
        logger.warning("assistant: the engine answered HTTP %d code=%s", status, code)
        if status == 402 or code == "insufficient_quota":
            logger.error("assistant: the system key is out of credit; top up its project")
            raise AssistantOutOfBudget("The assistant is not available: its budget is used up. The operator has "
                                       "been told; your own account and keys are not affected.")
        if status == 404 or code in ("model_not_found", "model_not_available"):
            logger.error("assistant: its model %s is not served here; set assistant_model or add a channel", model)
            raise AssistantNotConfigured(f"The assistant is not set up on this OneKey: its model ({model}) is not "
                                         "offered here. The operator can choose another model or add a provider.")
        if status in (401, 403):
            logger.error("assistant: the engine refused the assistant's key")
            raise AssistantNotConfigured("The assistant is not set up correctly on this OneKey (its key is "
                                         "refused). The operator has been told.")
        raise AssistantUnavailable("The assistant's model provider is briefly unavailable. "
                                   "Try again in a minute.")
    try:
        return response.json()["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        logger.warning("assistant: the engine's answer was not a chat completion")
        raise AssistantUnavailable("The assistant gave no usable answer. Try again.") from None


def _code(response: requests.Response) -> str:
    try:
        return str(response.json()["error"]["code"] or "")
    except (ValueError, KeyError, TypeError):
        return ""
