"""Domain errors of the core: one class per failure, each carrying its gRPC status code.

The servicers turn them into a gRPC status with trailing metadata `onekey-error-code` (the
OpenAI `code`), `onekey-error-param` and, for headers the client must see (`retry-after`,
`x-ratelimit-*`), `onekey-header-<name>`; the edge owns the one table from gRPC code to HTTP.
`http_status` is what that table makes of the class, kept here only so a refused request's
usage event can say what the client got (a test holds the two together).
"""
from __future__ import annotations


class _StatusCode:
    """An error class's grpc.StatusCode, from the name in its `grpc_status`, looked up on use: the
    launcher reads the catalog (which raises these errors) without loading gRPC for it."""

    def __get__(self, obj, owner):
        import grpc

        return getattr(grpc.StatusCode, owner.grpc_status)


class CoreError(Exception):
    """Base of the errors a client may see. The message must never hold a secret or content."""

    grpc_status = "INTERNAL"
    grpc_code = _StatusCode()
    http_status = 500
    code = "internal_error"

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 headers: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.headers = headers or []  # HTTP headers for the client's answer (lower-case names)
        if code is not None:
            self.code = code


class InvalidRequest(CoreError):
    grpc_status = "INVALID_ARGUMENT"
    http_status = 400
    code = "invalid_request"


class InvalidApiKey(CoreError):
    grpc_status = "UNAUTHENTICATED"
    http_status = 401
    code = "invalid_api_key"

    def __init__(self, message: str, *, code: str | None = None, identity: object | None = None) -> None:
        super().__init__(message, code=code)
        self.identity = identity  # the key's project and id, when the key is known (revoked, expired)


class PermissionDenied(CoreError):
    grpc_status = "PERMISSION_DENIED"
    http_status = 403
    code = "permission_denied"


class ModelNotFound(CoreError):
    grpc_status = "NOT_FOUND"
    http_status = 404
    code = "model_not_found"


class NotFound(CoreError):
    grpc_status = "NOT_FOUND"
    http_status = 404
    code = "not_found"


class InsufficientQuota(CoreError):
    grpc_status = "FAILED_PRECONDITION"
    http_status = 402
    code = "insufficient_quota"


class SpendLimitReached(InsufficientQuota):
    code = "key_spend_limit_reached"


class ProjectClosed(CoreError):
    """AdminService only (CreateKey in a closed project): never answered through the edge."""

    grpc_status = "FAILED_PRECONDITION"
    http_status = 402  # the edge's table for FAILED_PRECONDITION, which this error never reaches
    code = "project_closed"


class RateLimited(CoreError):
    grpc_status = "RESOURCE_EXHAUSTED"
    http_status = 429
    code = "rate_limit_exceeded"


class ProviderUnavailable(CoreError):
    grpc_status = "UNAVAILABLE"
    http_status = 503
    code = "provider_unavailable"


class StoreUnavailable(CoreError):
    """The routing store did not answer what memory cannot decide (a key's spend-limit hold):
    refused at once, a passing state worth a retry after a pause."""

    grpc_status = "UNAVAILABLE"
    http_status = 503
    code = "store_unavailable"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers=[("retry-after", "1")])


class AlreadyExists(CoreError):
    grpc_status = "ALREADY_EXISTS"
    http_status = 409
    code = "already_exists"


class Overloaded(CoreError):
    """More Forward calls in flight than the core's bound: refused at once, nothing billed."""

    grpc_status = "UNAVAILABLE"
    http_status = 503
    code = "server_overloaded"
