"""What the edge needs of a routing core, and the gRPC way to reach one.

The edge knows only this interface: RouterService's four calls, proto messages in and out, and
one error type. The launcher plugs a core behind it: `GrpcCore` reaches core replicas on any
host; where an edge and a core share a process, the launcher gives the edge a core that answers
in the same event loop, with no network hop. Either way the answers and errors are the same.
"""
from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

import grpc

from onekey.v1 import router_pb2, router_pb2_grpc


class CoreCallError(Exception):
    """A core call that ended with a status instead of an answer.

    `code()` is RouterService's status (a grpc.StatusCode, whatever carried the call);
    `trailing_metadata()` holds the core's details: onekey-error-code, onekey-error-param and
    onekey-header-<name> for headers the client should get. A transport failure (no core
    reachable) is UNAVAILABLE without an onekey-error-code.
    """

    def __init__(self, code: grpc.StatusCode, details: str = "",
                 trailing: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(code.name)
        self._code = code
        self._details = details
        self._trailing = tuple(trailing)

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._trailing


class Core(Protocol):
    """RouterService as the edge calls it. Every call raises CoreCallError when it fails."""

    async def validate_key(self, request: router_pb2.ValidateKeyRequest,
                           timeout: float) -> router_pb2.ValidateKeyResponse: ...

    async def resolve_model(self, request: router_pb2.ResolveModelRequest,
                            timeout: float) -> router_pb2.ResolveModelResponse: ...

    async def list_models(self, request: router_pb2.ListModelsRequest,
                          timeout: float) -> router_pb2.ListModelsResponse: ...

    def forward(self, request: router_pb2.ForwardRequest,
                timeout: float) -> AsyncIterator[router_pb2.ForwardResponse]:
        """The answer's messages as they come; closing the iterator (aclose) cancels the call."""
        ...

    async def ready(self, wait: float) -> str:
        """"ready" when a call can be made now (waiting up to `wait` seconds), else what it is."""
        ...

    async def readiness(self, timeout: float) -> router_pb2.ReadinessResponse:
        """The core's own state: its store, its usage backlog, its rate-limit store."""
        ...


def channel_options(max_body_bytes: int) -> list[tuple[str, object]]:
    """gRPC caps above the 4 MiB default, and round robin over several core replicas."""
    cap = max(max_body_bytes * 2, 64 * 1024 * 1024)
    return [
        ("grpc.max_receive_message_length", cap),
        ("grpc.max_send_message_length", cap),
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.enable_retries", 0),   # the edge retries itself, knowing when nothing reached the client
        # A core replica that went away is dialled again within seconds of coming back.
        ("grpc.initial_reconnect_backoff_ms", 500),
        ("grpc.max_reconnect_backoff_ms", 5_000),
        ("grpc.dns_min_time_between_resolutions_ms", 5_000),
    ]


def _error(err: grpc.aio.AioRpcError) -> CoreCallError:
    return CoreCallError(err.code(), err.details() or "", err.trailing_metadata() or ())


async def _unary(method, request, timeout: float):
    try:
        return await method(request, timeout=timeout)
    except grpc.aio.AioRpcError as err:
        raise _error(err) from None


class GrpcCore:
    """Core replicas over gRPC: one channel (round robin over every address of `target`)."""

    def __init__(self, target: str, max_body_bytes: int) -> None:
        self._channel = grpc.aio.insecure_channel(target, options=channel_options(max_body_bytes))
        self._stub = router_pb2_grpc.RouterServiceStub(self._channel)

    async def close(self) -> None:
        await self._channel.close()

    async def validate_key(self, request: router_pb2.ValidateKeyRequest,
                           timeout: float) -> router_pb2.ValidateKeyResponse:
        return await _unary(self._stub.ValidateKey, request, timeout)

    async def resolve_model(self, request: router_pb2.ResolveModelRequest,
                            timeout: float) -> router_pb2.ResolveModelResponse:
        return await _unary(self._stub.ResolveModel, request, timeout)

    async def list_models(self, request: router_pb2.ListModelsRequest,
                          timeout: float) -> router_pb2.ListModelsResponse:
        return await _unary(self._stub.ListModels, request, timeout)

    async def forward(self, request: router_pb2.ForwardRequest,
                      timeout: float) -> AsyncIterator[router_pb2.ForwardResponse]:
        call = self._stub.Forward(request, timeout=timeout)
        try:
            async for message in call:
                yield message
        except grpc.aio.AioRpcError as err:
            raise _error(err) from None
        finally:
            if not call.done():
                call.cancel()  # the client left, or the edge gave up: the core stops the provider call

    async def readiness(self, timeout: float) -> router_pb2.ReadinessResponse:
        return await _unary(self._stub.Readiness, router_pb2.ReadinessRequest(), timeout)

    async def ready(self, wait: float) -> str:
        channel = self._channel
        if channel.get_state(try_to_connect=True) != grpc.ChannelConnectivity.READY:
            try:
                await asyncio.wait_for(channel.channel_ready(), wait)
            except TimeoutError:
                pass
        return channel.get_state().name.lower()
