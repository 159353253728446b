"""A translated request's `Wire`: the client's shape of answers over an upstream of another format.

The forwarder meters and reports failures through a Wire (router_core/providers/base.py). For a
request served through a translator, one TranslatedWire is made per request: usage is read from
the upstream's own answer (so a translated request is billed exactly as a native one), errors
and streams come back in the client's format, and the local token estimate reads the client's
body and the upstream's answer, each in its own format.
"""
from __future__ import annotations

import logging

from router_core.providers.base import OPENAI_WIRE, UpstreamFailure, Wire
from router_core.translate.base import StreamTranslator, Translator
from router_core.usage import Usage

logger = logging.getLogger(__name__)


class TranslatedStream:
    """A StreamReader (what the forwarder reads a stream through) over a StreamTranslator."""

    __slots__ = ("_inner", "failure_status")
    partial: Usage | None = None  # chat upstreams report usage only at the end

    def __init__(self, inner: StreamTranslator) -> None:
        self._inner = inner
        self.failure_status: int | None = None

    @property
    def usage(self) -> Usage | None:
        return self._inner.usage

    def feed(self, data: bytes) -> bytes:
        out = self._inner.feed(data)
        self._note_failure()
        return out

    def finish(self) -> bytes:
        out = self._inner.finish()
        self._note_failure()
        return out

    def error(self, message: str, code: str) -> bytes:
        return self._inner.error(message, code)

    def _note_failure(self) -> None:
        # A translator that saw the upstream end its stream with its own error event may say so.
        status = getattr(self._inner, "failure_status", None)
        if isinstance(status, int) and status:
            self.failure_status = status


class TranslatedWire:
    """The client endpoint's Wire for one translated request."""

    billable = True

    def __init__(self, translator: Translator, client_model: str, client_wire: Wire,
                 upstream_wire: Wire = OPENAI_WIRE) -> None:
        self.translator = translator
        self.client_model = client_model
        self._client = client_wire      # the client endpoint's native shape (token counts, fallbacks)
        self._upstream = upstream_wire  # the upstream endpoint's shape (usage, output text)
        self.last_event_lines = client_wire.last_event_lines  # what the client is sent is its own format
        self._stream: TranslatedStream | None = None

    def scanner(self, drop_usage_chunk: bool) -> TranslatedStream:
        self._stream = TranslatedStream(self.translator.stream(self.client_model))
        return self._stream

    def usage_of_body(self, body: bytes) -> Usage | None:
        """Usage of the upstream's whole answer, read before it is translated."""
        return self._upstream.usage_of_body(body)

    def response(self, body: bytes) -> bytes:
        """The upstream's whole answer in the client's format."""
        return self.translator.response(body, self.client_model)

    def failure(self, failure: UpstreamFailure) -> UpstreamFailure:
        """An OpenAI-shaped failure (as every provider module gives it) in the client's shape."""
        try:
            status, body = self.translator.error(failure.status, failure.body)
        except Exception as exc:  # a translator bug must not hide the failure itself
            logger.error("translator error mapping failed: %s", type(exc).__name__)
            return self._client.failure(failure)
        return UpstreamFailure(status, body, failure.retryable, failure.headers)

    def stream_error(self, message: str, code: str) -> bytes:
        if self._stream is not None:
            try:
                return self._stream.error(message, code)
            except Exception as exc:
                logger.error("translator stream error failed: %s", type(exc).__name__)
        return self._client.stream_error(message, code)

    def prompt_texts(self, body: dict) -> list[str]:
        return self._client.prompt_texts(body)  # the client's own body, in its own format

    def output_texts(self, chunks: list[bytes], stream: bool) -> list[str]:
        return self._upstream.output_texts(chunks, stream)  # the upstream's bytes, as they came
