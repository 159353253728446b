"""Anthropic's Messages API at the edge: POST /v1/messages and /v1/messages/count_tokens.

The same one Forward call as the OpenAI routes; what differs is how the key comes (Anthropic's
clients send `x-api-key`, or `Authorization: Bearer` with an auth token) and the shape of every
error: `{"type": "error", "error": {"type", "message"}}` with the statuses Anthropic's SDKs map
to their exception classes (401 AuthenticationError, 402 PaymentRequiredError, 404
NotFoundError, 429 RateLimitError, 529 OverloadedError, ...).
"""
from __future__ import annotations

import json
import logging

import grpc
from aiohttp import web

from edge.body import BodyError
from edge.core import CoreCallError
from edge.errors import CORE_HEADER_PREFIX
from edge.handlers import OpenAIShape, bearer_token, clean_key, forward

logger = logging.getLogger(__name__)

# gRPC code -> (HTTP status, Anthropic error type). A OneKey project out of credit is Anthropic's
# own 402 billing_error (the SDK raises PaymentRequiredError), not a 403: the key is allowed, the
# balance is not enough.
STATUS_TABLE: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "authentication_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (402, "billing_error"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "not_found_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error"),
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "rate_limit_error"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "api_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "api_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "timeout_error"),
}
INTERNAL = (500, "api_error")


def error_body(type_: str, message: str) -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


def error_type(status: int) -> str:
    """Anthropic's error type for an HTTP status."""
    known = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
             403: "permission_error", 404: "not_found_error", 413: "request_too_large",
             429: "rate_limit_error", 504: "timeout_error", 529: "overloaded_error"}
    return known.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def error_response(status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """An Anthropic-shaped JSON error."""
    return web.Response(status=status, body=error_body(type_, message), content_type="application/json",
                        headers=headers)


class AnthropicShape(OpenAIShape):
    """The key from `x-api-key` or a Bearer token; every error Anthropic-shaped."""

    def key(self, request: web.Request) -> str | None:
        value = request.headers.get("x-api-key", "").strip()
        return clean_key(value) if value else bearer_token(request)

    def no_key(self, request_id: str, key: str | None) -> web.Response:
        ids = {"x-onekey-request-id": request_id, "x-request-id": request_id}
        if key is None:
            logger.info("refused: request_id=%s code=invalid_api_key (malformed key)", request_id)
            return error_response(401, "authentication_error", "Incorrect API key provided: it is not a OneKey key.",
                                  ids)
        logger.info("refused: request_id=%s code=invalid_api_key (no key sent)", request_id)
        return error_response(401, "authentication_error",
                              "You didn't provide an API key. Send your OneKey key as `x-api-key: <key>` "
                              "or `Authorization: Bearer <key>`.", ids)

    def body_error(self, exc: BodyError, ids: dict[str, str]) -> web.Response:
        return error_response(exc.status, error_type(exc.status), exc.message, ids)

    def rpc_error(self, err: CoreCallError, ids: dict[str, str]) -> web.Response:
        code = err.code()
        trailing = {k: v for k, v in (err.trailing_metadata() or ())}
        if code == grpc.StatusCode.UNAVAILABLE and "onekey-error-code" not in trailing:
            return error_response(503, "api_error", "The OneKey routing core is unreachable; try again shortly.",
                                  ids)
        status, type_ = STATUS_TABLE.get(code, INTERNAL)
        # Headers the core asks the client to see (retry-after, x-ratelimit-*), as on the OpenAI routes.
        ids = {**ids, **{k[len(CORE_HEADER_PREFIX):]: v for k, v in trailing.items()
                         if k.startswith(CORE_HEADER_PREFIX)}}
        if trailing.get("onekey-error-code") == "server_overloaded":
            status, type_ = 529, "overloaded_error"  # OneKey's own in-flight bound, as Anthropic says it
        if trailing.get("onekey-error-code") in ("server_overloaded", "store_unavailable"):
            ids = {**ids, "retry-after": "1"}  # a passing state: worth a retry after a pause
        elif status >= 500 and trailing.get("onekey-error-code"):
            ids = {**ids, "x-should-retry": "false"}  # the core's own verdict: a retry cannot help
        message = (err.details() or "request failed") if (status, type_) != INTERNAL else "internal error"
        return error_response(status, type_, message, ids)

    def empty_answer(self, ids: dict[str, str]) -> web.Response:
        return error_response(502, "api_error", "The routing core ended the call without an answer.", ids)

    def stream_broken(self) -> bytes:
        # Anthropic's SDKs raise on an `error` event, the way Anthropic ends a failed stream.
        return b"event: error\ndata: " + error_body("api_error", "The stream was interrupted.") + b"\n\n"


ANTHROPIC = AnthropicShape()


def is_anthropic_path(path: str) -> bool:
    """Whether a URL belongs to the Messages API (its errors are Anthropic-shaped)."""
    return path.startswith(("/v1/messages", "/messages", "/v1/v1/messages"))


async def messages(request: web.Request) -> web.StreamResponse:
    """POST /v1/messages, streaming or not, for the catalog's Anthropic models."""
    return await forward(request, "messages", shape=ANTHROPIC)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """POST /v1/messages/count_tokens: free, answered by the provider."""
    return await forward(request, "messages/count_tokens", shape=ANTHROPIC)
