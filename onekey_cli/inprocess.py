"""`onekey router`: the edge and a core in one process, the edge calling the core in-process.

What `onekey up` runs on one machine. The edge knows only its own interface (edge.core.Core);
this module, part of the launcher, is the one place that knows both sides and plugs the core's
RouterService behind that interface: the same servicer, the same messages and the same errors
as over gRPC, without the network hop, the serialisation or gRPC's thread hand-offs. The core's
gRPC port stays open for the account app, the operator commands and edges on other hosts.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, AsyncIterator, Sequence

import grpc

from edge.app import start as start_edge
from edge.core import CoreCallError
from edge.settings import EdgeSettings
from onekey.v1 import router_pb2
from router_core.server import create_server
from router_core.servicers.router import RouterServicer
from router_core.settings import CoreSettings

logger = logging.getLogger(__name__)


class _Context:
    """What RouterService's methods use of a grpc.aio.ServicerContext, for a call in this process."""

    __slots__ = ("_trailing",)

    def __init__(self) -> None:
        self._trailing: Sequence[tuple[str, str]] = ()

    def set_trailing_metadata(self, metadata: Sequence[tuple[str, str]]) -> None:
        self._trailing = tuple(metadata)

    async def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        raise CoreCallError(code, details, self._trailing)


class InProcessCore:
    """edge.core.Core answered by a RouterServicer in this process's event loop."""

    def __init__(self, servicer: RouterServicer) -> None:
        self._servicer = servicer

    async def validate_key(self, request: router_pb2.ValidateKeyRequest,
                           timeout: float) -> router_pb2.ValidateKeyResponse:
        return await self._servicer.ValidateKey(request, _Context())

    async def resolve_model(self, request: router_pb2.ResolveModelRequest,
                            timeout: float) -> router_pb2.ResolveModelResponse:
        return await self._servicer.ResolveModel(request, _Context())

    async def list_models(self, request: router_pb2.ListModelsRequest,
                          timeout: float) -> router_pb2.ListModelsResponse:
        return await self._servicer.ListModels(request, _Context())

    def forward(self, request: router_pb2.ForwardRequest,
                timeout: float) -> AsyncIterator[router_pb2.ForwardResponse]:
        # The servicer's own generator, not one wrapping it: a layer would cost every message
        # a hop. The edge bounds the whole call by its own core_timeout; closing this iterator
        # closes every generator of the chain, the provider's response with them.
        return self._servicer.answer(request, _Context(), coalesce=False)

    async def ready(self, wait: float) -> str:
        return "ready"  # the core is this process: when the edge answers, so can it

    async def readiness(self, timeout: float) -> router_pb2.ReadinessResponse:
        return await self._servicer.Readiness(router_pb2.ReadinessRequest(), _Context())


async def serve(core_settings: CoreSettings, edge_settings: EdgeSettings,
                reload_settings: Callable[[], CoreSettings] | None = None) -> None:
    """Run a core and an edge wired in-process until SIGTERM or SIGINT (SIGHUP: reload); then drain both."""
    from edge.app import create_app

    core = await create_server(core_settings, reload_settings=reload_settings)
    try:
        app = create_app(edge_settings, core=InProcessCore(core.router))
        runner, port = await start_edge(edge_settings, app)
    except BaseException:
        await core.stop(grace=0)
        raise
    # Start-up objects (modules, protos, the catalog) live as long as the process: keep them
    # out of the collector, or each full collection walks them all while every call waits.
    gc.freeze()
    host = core_settings.listen.rsplit(":", 1)[0]
    logger.info("router listening: edge port=%d core address=%s:%d channels=%d", port, host, core.port,
                len(core_settings.channels))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(core.reload()))
    await stop.wait()
    # The edge first: it stops taking requests and drains its open ones (their core calls run
    # here); then the core drains calls from elsewhere, writes usage and gives leases back.
    logger.info("router stopping: draining (up to %.0fs)", edge_settings.shutdown_timeout)
    await runner.cleanup()
    logger.info("edge stopped")
    await core.stop()
    logger.info("core stopped")
