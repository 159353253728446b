"""Keeping the catalog current without a restart: the channels' model lists, read at start,
every `models_sync_interval` seconds and on demand (`onekey models sync`), and the operator's
catalog file and channels, re-read on SIGHUP or `onekey reload`.

Every change is built whole first and then swapped in at once: a bad file or a provider that
does not answer leaves the catalog that was serving as it was.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from router_core.catalog import Catalog, ModelInfo
from router_core.catalog_build import Built, build
from router_core.channels import ChannelPool, check_channel_models
from router_core.prices import PriceBook
from router_core.providers.base import Provider, UpstreamError
from router_core.providers.http import HttpClient
from router_core.settings import ChannelSettings, ConfigError, CoreSettings

logger = logging.getLogger(__name__)


@dataclass
class SyncReport:
    """What one sync found: per channel, how many ids it listed or why it could not say."""

    listed: dict[str, int] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    unpriced: dict[str, list[str]] = field(default_factory=dict)
    servable: dict[str, int] = field(default_factory=dict)  # provider -> models servable now


class ModelSync:
    """Owns the live catalog: rebuilds it from the lists, the package and the operator's file."""

    def __init__(self, catalog: Catalog, pool: ChannelPool, providers: Mapping[str, Provider], http: HttpClient,
                 book: PriceBook, settings: CoreSettings, channels: Sequence[ChannelSettings],
                 reload_settings: Callable[[], CoreSettings] | None = None) -> None:
        self.catalog = catalog
        self._pool = pool
        self._providers = providers
        self._http = http
        self._book = book
        self._operator_file = settings.catalog_file or None
        self._interval = settings.models_sync_interval
        self._timeout = settings.models_sync_timeout
        self._channels = list(channels)
        self._reload_settings = reload_settings
        self._listings: dict[str, list[str]] = {}  # channel -> its last list (kept while it fails)
        self._listed_at = time.time()
        self._gone: dict[str, str] = {}             # model id -> why the provider said it is gone
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.last = SyncReport()
        self.unpriced: dict[str, list[str]] = {}

    def start(self) -> None:
        if self._interval > 0:
            self._task = asyncio.get_running_loop().create_task(self._every_interval())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.sync()
            except Exception:  # a sync that fails leaves the catalog as it was; the next one tries again
                logger.exception("model sync failed")

    async def sync(self) -> SyncReport:
        """Ask every channel for its models (at most `models_sync_timeout` s) and rebuild the catalog."""
        async with self._lock:
            report = SyncReport()
            answers = await asyncio.gather(*(self._list(c) for c in self._channels))
            for channel, (ids, error) in zip(self._channels, answers):
                if error:
                    report.errors[channel.name] = error
                    logger.warning("model list failed: channel=%s error=%s", channel.name, error)
                else:
                    self._listings[channel.name] = ids
                    report.listed[channel.name] = len(ids)
            self._gone.clear()  # what the providers list now is the newer word
            self._listed_at = time.time()
            built = self._build(self._operator_file, self._channels)
            self._swap(built)
            report.unpriced = built.unpriced
            report.servable = self.servable_counts()
            self.last = report
            logger.info("models synced: channels=%d failed=%d servable=%s unpriced=%d", len(report.listed),
                        len(report.errors), report.servable, sum(len(v) for v in report.unpriced.values()))
            return report

    async def reload(self) -> SyncReport:
        """Re-read the operator's catalog file and the channels; a bad file changes nothing (ConfigError)."""
        if self._reload_settings is None:
            raise ConfigError("this core was not started from a configuration file it can re-read")
        settings = self._reload_settings()  # raises ConfigError naming the file and line
        channels = [c for c in settings.channels if c.provider in self._providers]
        if any(c.provider == "sandbox" for c in self._channels) and not any(c.provider == "sandbox" for c in channels):
            channels.append(next(c for c in self._channels if c.provider == "sandbox"))
        async with self._lock:
            built = self._build(settings.catalog_file or None, channels)  # refuses a bad file before any change
            check_channel_models(channels, built.catalog, self._book.knows)
            self._operator_file = settings.catalog_file or None
            self._channels = channels
            self._pool.replace(channels)
            self._swap(built)
        logger.info("configuration reloaded: channels=%d catalog_file=%s", len(channels), self._operator_file or "-")
        return await self.sync()

    def mark_gone(self, model: ModelInfo, why: str) -> None:
        """The provider answered that this model does not exist: stop serving it until a list says otherwise."""
        if model.id in self._gone or model.is_test:
            return
        logger.warning("provider says model is gone: model=%s", model.id)
        self._gone[model.id] = why
        try:
            self._swap(self._build(self._operator_file, self._channels))
        except ConfigError:  # the file changed on disk since: the next reload says how
            logger.exception("catalog rebuild failed")

    def servable_counts(self) -> dict[str, int]:
        from router_core.availability import availability
        counts: dict[str, int] = {}
        for m in self.catalog.all():
            if availability(m, self._pool).servable:
                counts[m.provider] = counts.get(m.provider, 0) + 1
        return counts

    async def _list(self, channel: ChannelSettings) -> tuple[list[str], str]:
        provider = self._providers.get(channel.provider)
        if provider is None:
            return [], "no provider module"
        try:
            return await asyncio.wait_for(provider.list_models(self._http, channel), self._timeout), ""
        except UpstreamError as exc:
            return [], exc.message
        except (TimeoutError, asyncio.TimeoutError):
            return [], f"no answer within {self._timeout:g} s"
        except OSError as exc:
            return [], f"{type(exc).__name__}"

    def _build(self, operator_file: str | None, channels: Sequence[ChannelSettings]) -> Built:
        listings = {c.name: self._listings[c.name] for c in channels if c.name in self._listings}
        return build(self._book, operator_file, listings, channels, self._gone, self._listed_at)

    def _swap(self, built: Built) -> None:
        self.catalog.replace_with(built.catalog)
        self._pool.set_listed(built.listed_by)
        self.unpriced = built.unpriced
