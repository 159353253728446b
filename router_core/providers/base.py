"""The one small interface every provider module implements, and what flows through it."""
from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from router_core.catalog import ModelInfo
from router_core.settings import ChannelSettings


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


class Provider(Protocol):
    """What the forwarder needs from a provider module."""

    name: str
    endpoints: frozenset[str]  # the OpenAI endpoints this provider serves

    def prepare(self, body: dict, endpoint: str) -> dict:
        """Apply the provider's wire quirks to a decoded request body (model already set)."""

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
