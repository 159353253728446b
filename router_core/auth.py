"""The service credential that AdminService and MeteringService demand of their callers."""
from __future__ import annotations

import hmac
import logging

import grpc

from router_core.settings import Secret

logger = logging.getLogger(__name__)

PROTECTED = ("/onekey.v1.AdminService/", "/onekey.v1.MeteringService/")


class ServiceTokenInterceptor(grpc.aio.ServerInterceptor):
    """Refuses admin and metering calls without `authorization: Bearer <service token>`.

    RouterService is left alone: its callers authenticate with a project's API key per call.
    With no token configured, the protected services refuse everyone.
    """

    def __init__(self, token: Secret) -> None:
        self._expected = f"Bearer {token.reveal()}".encode() if token else None

    async def intercept_service(self, continuation, details):
        if not details.method.startswith(PROTECTED):
            return await continuation(details)
        presented = next((v for k, v in details.invocation_metadata or () if k == "authorization"), "")
        if self._expected is not None and hmac.compare_digest(str(presented).encode(), self._expected):
            return await continuation(details)
        logger.warning("refused %s: missing or wrong service credential", details.method)
        handler = await continuation(details)
        return _refusal(handler)


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def deny_unary(request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, "a valid service credential is required")

    return grpc.unary_unary_rpc_method_handler(
        deny_unary,
        request_deserializer=handler.request_deserializer if handler else None,
        response_serializer=handler.response_serializer if handler else None,
    )
