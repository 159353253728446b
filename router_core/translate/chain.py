"""Two translators in a row, for a pair with no module of its own: a client format served on an
upstream reached only through a third (Messages on OpenAI's Responses-only models goes
Messages -> chat completions -> Responses). Each step is the tested translator of its pair; the
chain only passes the request down and the answers up, and keeps no more than they do.
"""
from __future__ import annotations

from router_core.translate.base import StreamTranslator, Translator
from router_core.translate.chat_responses import ChatToResponses
from router_core.translate.messages_chat import MessagesToChat
from router_core.usage import Usage


class ChainedStream:
    """The upstream's events through the inner step, then through the outer one."""

    def __init__(self, outer: StreamTranslator, inner: StreamTranslator) -> None:
        self._outer, self._inner = outer, inner

    @property
    def usage(self) -> Usage | None:
        return self._inner.usage  # the upstream's own usage: what metering bills

    @property
    def failure_status(self) -> int | None:
        return getattr(self._inner, "failure_status", None) or getattr(self._outer, "failure_status", None)

    def feed(self, data: bytes) -> bytes:
        return self._outer.feed(self._inner.feed(data))

    def finish(self) -> bytes:
        return self._outer.feed(self._inner.finish()) + self._outer.finish()

    def error(self, message: str, code: str) -> bytes:
        return self._outer.error(message, code)


class Chain:
    """`outer` (client -> middle format) after `inner` (middle -> upstream)."""

    def __init__(self, outer: Translator, inner: Translator) -> None:
        self._outer, self._inner = outer, inner
        self.client, self.upstream = outer.client, inner.upstream

    def request(self, body: dict, upstream_model: str) -> dict:
        return self._inner.request(self._outer.request(body, upstream_model), upstream_model)

    def response(self, body: bytes, client_model: str) -> bytes:
        return self._outer.response(self._inner.response(body, client_model), client_model)

    def stream(self, client_model: str) -> ChainedStream:
        return ChainedStream(self._outer.stream(client_model), self._inner.stream(client_model))

    def error(self, status: int, body: bytes) -> tuple[int, bytes]:
        return self._outer.error(*self._inner.error(status, body))


class MessagesToResponses(Chain):
    """Anthropic Messages clients on OpenAI's Responses-only models (GPT-5.x Codex and Pro, o3 Pro)."""

    def __init__(self) -> None:
        super().__init__(MessagesToChat(), ChatToResponses())
