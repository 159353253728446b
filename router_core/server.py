"""The core's server factory and its run loop."""
from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from onekey.v1 import admin_pb2_grpc, metering_pb2_grpc, router_pb2_grpc
from router_core.admin import AdminService
from router_core.auth import ServiceTokenInterceptor
from router_core.catalog import Catalog
from router_core.catalog_build import build
from router_core.channels import ChannelPool, check_channel_models
from router_core.credits import Credits
from router_core.db import create_engine, session_factory
from router_core.forward import Forwarder
from router_core.key_spend import KeySpend
from router_core.keys import KeyValidator
from router_core.journal import Journal, folder_for as journal_folder
from router_core.metering import UsageRecorder, replay_orphans
from router_core.migrations import prepare_engine
from router_core.model_sync import ModelSync
from router_core.prices import PriceBook
from router_core.providers import Provider, registry
from router_core.providers.http import HttpClient
from router_core.ratelimit import RateLimiter, create_store
from router_core.readiness import Readiness
from router_core.response_owners import ResponseOwners
from router_core.store_guard import StoreGuard
from router_core.stored_responses import StoredResponses
from router_core.servicers.admin import AdminServicer
from router_core.servicers.metering import MeteringServicer
from router_core.servicers.router import RouterServicer
from router_core.settings import ChannelSettings, ConfigError, CoreSettings, Secret
from router_core.tokens import TokenCounter
from router_core.usage_reports import UsageReports

if TYPE_CHECKING:
    from aiohttp import web

logger = logging.getLogger(__name__)

SANDBOX_CHANNEL = ChannelSettings(name="sandbox", provider="sandbox", base_url="", api_key=Secret(""))


def grpc_options(max_body_bytes: int) -> list[tuple[str, int]]:
    """Message caps above gRPC's 4 MiB default: a body at the configured limit must fit."""
    cap = max(max_body_bytes * 2, 64 * 1024 * 1024)
    return [
        ("grpc.max_receive_message_length", cap),
        ("grpc.max_send_message_length", cap),
        ("grpc.so_reuseport", 0),
    ]


@dataclass
class CoreServer:
    """A started core: the grpc.aio server, its port and what must be closed after it."""

    server: grpc.aio.Server
    port: int
    engine: AsyncEngine
    http: HttpClient
    recorder: UsageRecorder
    credits: Credits
    settings: CoreSettings
    owners: ResponseOwners | None = None
    pool: ChannelPool | None = None
    metrics: web.AppRunner | None = None  # the channel-health /metrics endpoint, if configured
    metrics_port: int = 0
    limiter: RateLimiter | None = None
    router: RouterServicer | None = None  # for an edge in this process (the launcher wires it)
    sync: ModelSync | None = None  # the live catalog's keeper
    guard: StoreGuard | None = None  # whether the routing store answers

    async def reload(self) -> None:
        """SIGHUP: re-read the catalog file and channels; a bad file is logged and changes nothing."""
        if self.sync is None:
            return
        try:
            await self.sync.reload()
        except ConfigError as exc:
            logger.error("reload refused, the catalog and channels are unchanged: %s", exc)

    async def stop(self, grace: float | None = None) -> None:
        """Drain in-flight calls, write every usage event and charge, give leases back."""
        await self.server.stop(self.settings.shutdown_grace if grace is None else grace)
        if self.sync is not None:
            await self.sync.stop()
        if self.owners is not None:
            await self.owners.stop()
        if self.metrics is not None:
            await self.metrics.cleanup()
        await self.recorder.stop()
        if self.limiter is not None:
            await self.limiter.close()
        await self.credits.close()
        await self.http.close()
        await self.engine.dispose()


async def create_server(settings: CoreSettings, *, providers: Mapping[str, Provider] | None = None,
                        catalog: Catalog | None = None,
                        reload_settings: Callable[[], CoreSettings] | None = None) -> CoreServer:
    """Build and start the core on settings.listen (port 0 picks a free port).

    `catalog`, when given, is served as it is (no model lists read); otherwise the catalog is
    the live one: the shipped file and the channels' model lists, priced by the package, the
    operator's file on top, kept current by a ModelSync. `reload_settings` re-reads the
    configuration for SIGHUP and the Reload RPC.
    """
    providers = providers if providers is not None else registry()
    engine = create_engine(settings.database_url, settings.store_timeout)
    try:
        await prepare_engine(engine)  # SQLite: upgraded here; PostgreSQL: refused unless at head
    except BaseException:
        await engine.dispose()
        raise
    sessions = session_factory(engine)
    fixed_catalog = catalog is not None
    book = PriceBook()
    catalog = catalog or build(book, settings.catalog_file or None).catalog
    channels = list(settings.channels)
    if settings.sandbox and not any(c.provider == "sandbox" for c in channels):
        channels.append(SANDBOX_CHANNEL)
    check_channel_models(channels, catalog, book.knows)
    pool = ChannelPool(channels, breaker=settings.breaker)
    guard = StoreGuard(settings.store_timeout)
    owners = ResponseOwners(sessions, guard=guard)
    owners.start()
    keys = KeyValidator(sessions, ttl=settings.key_cache_ttl, guard=guard)
    http = HttpClient(settings.timeouts)
    await http.start()
    sync = ModelSync(catalog, pool, providers, http, book, settings, channels, reload_settings)
    if not fixed_catalog:
        await sync.sync()  # bounded by models_sync_timeout: a silent provider keeps the shipped statuses
        sync.start()
    credits = Credits(sessions, renew_every=settings.lease_renew_interval, stale_after=settings.lease_stale_after,
                      guard=guard)
    tokens = TokenCounter()  # its encoding is loaded by the first estimate that needs it
    spend = KeySpend(sessions, credits.holder, renew_every=settings.lease_renew_interval,
                     stale_after=settings.lease_stale_after, guard=guard)
    journal = None
    if settings.journal_dir:
        # Charges a killed core left in its journal are written before this one serves.
        folder = journal_folder(settings.journal_dir, settings.database_url)
        await replay_orphans(sessions, folder)
        journal = Journal(folder, credits.holder, fsync_each=settings.journal_fsync == "always")
        journal.open()
    recorder = UsageRecorder(sessions, keys, credits, interval=settings.usage_flush_interval, spend=spend,
                             journal=journal, guard=guard, max_backlog=settings.usage_backlog_max)
    credits.flush_soon = spend.flush_soon = recorder.flush_soon
    recorder.start()
    limiter = RateLimiter(create_store(settings.redis_url.reveal(), settings.redis_timeout), settings.rate_limit_rpm)
    forwarder = Forwarder(catalog, pool, keys, http, recorder, credits, tokens, providers, settings.max_attempts,
                          owners=owners, max_retry_wait=settings.max_retry_wait, limiter=limiter, spend=spend,
                          durable_charges=settings.durable_charges, durable_wait=settings.store_timeout,
                          on_model_gone=sync.mark_gone)

    server = grpc.aio.server(
        interceptors=[ServiceTokenInterceptor(settings.service_token)],
        options=grpc_options(settings.max_body_bytes),
    )
    readiness = Readiness(guard, recorder, limiter)
    router = RouterServicer(forwarder, catalog, keys, pool,
                            StoredResponses(keys, owners, pool, providers, http, limiter), settings.max_in_flight,
                            readiness)
    router_pb2_grpc.add_RouterServiceServicer_to_server(router, server)
    admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(AdminService(sessions, keys), pool, sync), server)
    metering_pb2_grpc.add_MeteringServiceServicer_to_server(
        MeteringServicer(UsageReports(sessions, recorder)), server)
    port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise OSError(f"could not listen on {settings.listen}")
    await server.start()
    if not settings.service_token:
        logger.warning("no service token configured: AdminService and MeteringService refuse every call")
    metrics, metrics_port = None, 0
    if settings.metrics_listen:
        # aiohttp (and prometheus_client) only in a core that serves /metrics: a core on its
        # own talks gRPC and speaks HTTP to providers through its own client.
        from router_core.metrics import start_metrics
        metrics, metrics_port = await start_metrics(pool, settings.metrics_listen, limiter, credits, recorder,
                                                     spend, readiness)
    return CoreServer(server, port, engine, http, recorder, credits, settings, owners, pool, metrics, metrics_port,
                      limiter=limiter, router=router, sync=sync, guard=guard)


async def serve(settings: CoreSettings, reload_settings: Callable[[], CoreSettings] | None = None) -> None:
    """Run the core until SIGTERM or SIGINT, then drain and exit; SIGHUP reloads the catalog and channels."""
    core = await create_server(settings, reload_settings=reload_settings)
    # Start-up objects (modules, protos, the catalog) live as long as the process: keep them
    # out of the collector, or each full collection walks them all while every call waits.
    gc.freeze()
    host = settings.listen.rsplit(":", 1)[0]
    logger.info("core listening: address=%s:%d channels=%d", host, core.port, len(settings.channels))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, lambda: loop.create_task(core.reload()))
    await stop.wait()
    logger.info("core stopping: draining in-flight calls (grace %.0fs)", settings.shutdown_grace)
    await core.stop()
    logger.info("core stopped")
