"""The assistant's one call: chat completions on OneKey's own edge, with the system key."""
from __future__ import annotations

import logging

import requests

from account.settings import Secret

logger = logging.getLogger(__name__)


class AssistantUnavailable(Exception):
    """No answer this time; the message is safe to show."""


def ask(base_url: str, key: Secret, model: str, system: str, question: str, timeout: float) -> str:
    """The model's answer to the question, given the system prompt. Raises AssistantUnavailable."""
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
        logger.warning("assistant: the engine answered HTTP %d", response.status_code)
        if response.status_code in (401, 402, 403) or (response.status_code == 429 and _quota(response)):
            logger.error("assistant: the system key was refused or is out of credit; top up its project")
            raise AssistantUnavailable("The assistant is not available right now (its budget is used up). "
                                       "The operator has been told.")
        raise AssistantUnavailable("The assistant's model provider is not available right now. "
                                   "Try again in a minute.")
    try:
        return response.json()["choices"][0]["message"]["content"] or ""
    except (ValueError, KeyError, IndexError, TypeError):
        logger.warning("assistant: the engine's answer was not a chat completion")
        raise AssistantUnavailable("The assistant gave no usable answer. Try again.") from None


def _quota(response: requests.Response) -> bool:
    try:
        return response.json()["error"]["code"] == "insufficient_quota"
    except (ValueError, KeyError, TypeError):
        return False
