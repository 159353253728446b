"""The one table from gRPC status to HTTP status and OpenAI error type, and error responses."""
from __future__ import annotations

import json

import grpc
from aiohttp import web

from edge.core import CoreCallError

# gRPC code -> (HTTP status, OpenAI error type). The core's domain errors each carry one code.
STATUS_TABLE: dict[grpc.StatusCode, tuple[int, str]] = {
    grpc.StatusCode.INVALID_ARGUMENT: (400, "invalid_request_error"),
    grpc.StatusCode.UNAUTHENTICATED: (401, "invalid_request_error"),
    grpc.StatusCode.FAILED_PRECONDITION: (402, "insufficient_quota"),
    grpc.StatusCode.PERMISSION_DENIED: (403, "permission_error"),
    grpc.StatusCode.NOT_FOUND: (404, "invalid_request_error"),
    grpc.StatusCode.ALREADY_EXISTS: (409, "invalid_request_error"),
    # The core's request rate limit; OpenAI types a requests-per-minute refusal "requests".
    grpc.StatusCode.RESOURCE_EXHAUSTED: (429, "requests"),
    grpc.StatusCode.UNIMPLEMENTED: (501, "api_error"),
    grpc.StatusCode.UNAVAILABLE: (503, "api_error"),
    grpc.StatusCode.DEADLINE_EXCEEDED: (504, "api_error"),
}
INTERNAL = (500, "api_error")
# Trailing metadata `onekey-header-<name>: value` is a header the core wants the client to get
# (retry-after, x-ratelimit-*): passed on as it is, the edge decides nothing about it.
CORE_HEADER_PREFIX = "onekey-header-"


def error_body(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": param, "code": code}}).encode()


def error_response(status: int, message: str, type_: str, code: str | None = None,
                   param: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    """An OpenAI-shaped JSON error."""
    return web.Response(status=status, body=error_body(message, type_, code, param),
                        content_type="application/json", headers=headers)


def from_rpc_error(err: CoreCallError, headers: dict[str, str]) -> web.Response:
    """The HTTP answer for a failed core call."""
    code = err.code()
    trailing = {k: v for k, v in (err.trailing_metadata() or ())}
    if code == grpc.StatusCode.UNAVAILABLE and "onekey-error-code" not in trailing:
        return error_response(503, "The OneKey routing core is unreachable; try again shortly.",
                              "api_error", "core_unavailable", headers=headers)
    status, type_ = STATUS_TABLE.get(code, INTERNAL)
    headers = {**headers, **{k[len(CORE_HEADER_PREFIX):]: v for k, v in trailing.items()
                             if k.startswith(CORE_HEADER_PREFIX)}}
    if trailing.get("onekey-error-code") in ("server_overloaded", "store_unavailable"):
        # The core is at its in-flight bound, or its store did not answer: a passing state,
        # worth a retry after a pause.
        headers = {**headers, "retry-after": "1"}
    elif status >= 500 and trailing.get("onekey-error-code"):
        # The core's own verdict (e.g. no channel for the provider): an SDK retry cannot help.
        headers = {**headers, "x-should-retry": "false"}
    message = (err.details() or "request failed") if (status, type_) != INTERNAL else "internal error"
    return error_response(status, message, type_, trailing.get("onekey-error-code") or None,
                          trailing.get("onekey-error-param") or None, headers=headers)
