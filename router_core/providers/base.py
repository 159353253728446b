"""The one small interface every provider module implements, and what flows through it."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from router_core.catalog import ModelInfo
from router_core.settings import ChannelSettings
from router_core.usage import StreamScanner, Usage, output_texts, prompt_texts, usage_of_body


class UpstreamError(Exception):
    """The provider could not be reached or did not answer in time, before any byte came back.

    Always worth trying the next channel. `status` is what the client sees if none is left.
    """

    def __init__(self, message: str, status: int = 502, code: str = "upstream_unreachable") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(slots=True)
class UpstreamFailure:
    """A provider's answer that is not a success, as the client would see it.

    `retryable`: the provider's own trouble (rate limit, overload, outage, exhausted provider
    credit, a rejected channel key): worth another channel, and a failure for the breaker.
    Otherwise it is the client's request at fault (400-class) and goes back as it is.
    """

    status: int
    body: bytes
    retryable: bool
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(slots=True)
class UpstreamCall:
    """One request to send to a provider: the body already carries the upstream model id."""

    endpoint: str
    body: bytes
    model: ModelInfo
    stream: bool
    headers: Mapping[str, str] = field(default_factory=dict)
    parsed: dict | None = None  # the decoded body, for providers that need to read it
    method: str = "POST"        # GET / DELETE for a stored response (then body is empty)


class UpstreamResponse(Protocol):
    """A provider's answer: status and headers known, body readable once."""

    status: int
    headers: Mapping[str, str]

    def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives (for streams)."""

    async def read(self) -> bytes:
        """The whole body."""

    def close(self) -> None:
        """Release the connection (cancels an unfinished body)."""


class StreamReader(Protocol):
    """Reads usage out of an SSE answer on its way to the client."""

    usage: Usage | None    # the answer's whole usage, once known
    partial: Usage | None  # what is known before the end (input side), for a cut stream
    failure_status: int | None  # the provider ended the stream with its own error event

    def feed(self, data: bytes) -> bytes:
        """What to pass on to the client for this read (may be empty)."""

    def finish(self) -> bytes:
        """What is left to pass on when the stream ends."""


class Wire(Protocol):
    """The client API's shape of answers: where usage is, what an error looks like.

    The forwarder meters and reports failures through it, so one API's quirks (OpenAI's
    chat/Responses, Anthropic's Messages) stay in the module that owns that API.
    """

    billable: bool  # False: the endpoint is free (e.g. counting tokens): no reservation, no cost
    # Lines that only a stream's last event starts with: a piece ending with one ends the answer,
    # so its charge goes on record (the journal) before the piece leaves (Forwarder._stream).
    last_event_lines: tuple[bytes, ...]

    def scanner(self, drop_usage_chunk: bool) -> StreamReader:
        """A reader for one streamed answer."""

    def usage_of_body(self, body: bytes) -> Usage | None:
        """Usage of a whole (non-stream) answer; None when missing or unbelievable."""

    def failure(self, failure: UpstreamFailure) -> UpstreamFailure:
        """An OpenAI-shaped failure in this API's shape and statuses."""

    def stream_error(self, message: str, code: str) -> bytes:
        """The event that ends a stream broken after its first byte."""

    def prompt_texts(self, body: dict) -> list[str]:
        """The request's text, for a local token count."""

    def output_texts(self, chunks: list[bytes], stream: bool) -> list[str]:
        """The answer's text (or as much as arrived), for a local token count."""


class OpenAIWire:
    """OpenAI's chat completions and Responses API: the shape the gateway speaks by default."""

    billable = True
    last_event_lines = (b"data: [DONE]", b"event: response.completed", b"event: response.incomplete",
                        b"event: response.failed")

    def scanner(self, drop_usage_chunk: bool) -> StreamScanner:
        return StreamScanner(drop_usage_chunk)

    def usage_of_body(self, body: bytes) -> Usage | None:
        return usage_of_body(body)

    def failure(self, failure: UpstreamFailure) -> UpstreamFailure:
        return failure

    def stream_error(self, message: str, code: str) -> bytes:
        # The OpenAI SDKs raise on a `data:` event whose JSON has an `error` key.
        return b"data: " + openai_error(message, "api_error", code) + b"\n\n"

    def prompt_texts(self, body: dict) -> list[str]:
        return prompt_texts(body)

    def output_texts(self, chunks: list[bytes], stream: bool) -> list[str]:
        return output_texts(chunks, stream)


OPENAI_WIRE = OpenAIWire()


def ends_stream(piece: bytes, lines: tuple[bytes, ...]) -> bool:
    """Whether a piece of a stream ends with its last event: the event after the piece's last
    blank line begins with one of `lines`. A line of JSON data cannot (a newline inside a string
    is escaped), so content never looks like an end. Two C calls per piece."""
    cut = piece.rfind(b"\n\n", 0, len(piece) - 2)
    return piece.startswith(lines, cut + 2 if cut >= 0 else 0)


class Provider(Protocol):
    """What the forwarder needs from a provider module."""

    name: str
    endpoints: frozenset[str]  # the client API endpoints this provider serves

    def wire(self, endpoint: str) -> Wire:
        """The shape of answers on this endpoint (OPENAI_WIRE unless the provider's native API)."""

    def prepare(self, body: dict, endpoint: str) -> dict:
        """Apply the provider's wire quirks to a decoded request body (model already set).

        A field it changes gets a new value (never a nested value changed in place): when no
        top-level value changed, the forwarder sends the client's own bytes with `model` spliced in.
        """

    async def send(self, http: object, channel: ChannelSettings, call: UpstreamCall) -> UpstreamResponse:
        """Send the call on the channel; raise UpstreamError when nothing came back."""

    def error(self, status: int, raw: bytes, channel: ChannelSettings, model: ModelInfo) -> UpstreamFailure:
        """Turn the provider's error answer into an OpenAI-shaped one, with secrets scrubbed."""

    async def list_models(self, http: object, channel: ChannelSettings) -> list[str]:
        """The upstream ids the provider lists for the channel's key; UpstreamError if it cannot say."""


def openai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    """An OpenAI-shaped error body."""
    return json.dumps(
        {"error": {"message": message, "type": type_, "param": param, "code": code}}
    ).encode()
