"""The one small interface every format translator implements.

A translator serves a client that speaks one API format (`client`) on a model whose provider
is reached through another (`upstream`). It turns the client's request into the upstream's,
and the upstream's answers (whole, streamed, or failed) back into the client's format. It keeps
no content beyond the one request it translates, and writes none anywhere.
"""
from __future__ import annotations

from typing import Protocol

from router_core.usage import Usage


class TranslationError(Exception):
    """A request field that cannot be carried to the upstream format: a 400 naming the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class StreamTranslator(Protocol):
    """Turns one upstream SSE stream into the client's SSE stream, event by event."""

    usage: Usage | None  # the upstream's usage once seen (for metering)

    def feed(self, data: bytes) -> bytes:
        """Upstream bytes (split anywhere) in; the client's events that are complete, out."""

    def finish(self) -> bytes:
        """At the upstream's end: the closing events the client's grammar requires, if not yet sent."""

    def error(self, message: str, code: str) -> bytes:
        """The event that ends the client's stream on a failure after its first byte."""


class Translator(Protocol):
    """One pair of formats: `client` (e.g. "messages") served through `upstream` ("chat/completions")."""

    client: str
    upstream: str

    def request(self, body: dict, upstream_model: str) -> dict:
        """The upstream request for the client's decoded body; TranslationError for what can't go."""

    def response(self, body: bytes, client_model: str) -> bytes:
        """A whole upstream answer (success) as the client's whole answer."""

    def stream(self, client_model: str) -> StreamTranslator:
        """A translator for one streamed answer."""

    def error(self, status: int, body: bytes) -> tuple[int, bytes]:
        """An upstream error answer (OpenAI-shaped) as the client's status and error body."""
