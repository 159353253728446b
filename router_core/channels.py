"""Channel selection: lowest priority value first, weighted random among equals, with health."""
from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from router_core.breaker import Breaker, BreakerSettings
from router_core.catalog import Catalog, ModelInfo
from router_core.settings import ChannelSettings, ConfigError


class ChannelPool:
    """The configured channels, grouped by provider, ordered for each request.

    Each channel has a Breaker; the forwarder asks it before an attempt and tells it the
    outcome after. `candidates` only orders: skipping open circuits happens per attempt, so a
    half-open channel gets exactly one probe however many requests list it.
    """

    def __init__(self, channels: Sequence[ChannelSettings], rng: random.Random | None = None,
                 breaker: BreakerSettings | None = None) -> None:
        self._by_provider: dict[str, list[ChannelSettings]] = {}
        for channel in channels:
            self._by_provider.setdefault(channel.provider, []).append(channel)
        self._rng = rng or random.Random()
        self._breaker = breaker or BreakerSettings()
        self._health = {c.name: Breaker(self._breaker) for c in channels}
        # model id -> the channels whose own model list names it (providers whose lists are known)
        self._listed: dict[str, frozenset[str]] = {}

    def replace(self, channels: Sequence[ChannelSettings]) -> None:
        """Serve these channels from now on (a reload); a channel kept by name keeps its breaker."""
        by_provider: dict[str, list[ChannelSettings]] = {}
        for channel in channels:
            by_provider.setdefault(channel.provider, []).append(channel)
        self._health = {c.name: self._health.get(c.name) or Breaker(self._breaker) for c in channels}
        self._by_provider = by_provider

    def set_listed(self, listed: dict[str, frozenset[str]]) -> None:
        """Which channels list which models: a channel serves only what its provider lists for its key."""
        self._listed = listed

    @property
    def channels(self) -> list[ChannelSettings]:
        return [c for group in self._by_provider.values() for c in group]

    def providers(self) -> set[str]:
        return set(self._by_provider)

    def health(self, channel: ChannelSettings) -> Breaker:
        """The breaker of a configured channel."""
        return self._health[channel.name]

    def has_provider(self, provider: str) -> bool:
        return provider in self._by_provider

    def serving(self, model: ModelInfo) -> list[ChannelSettings]:
        """The channels that may serve this model: its provider's, within their `models` subset."""
        listed = self._listed.get(model.id)
        return [
            c for c in self._by_provider.get(model.provider, ())
            if (not c.models or model.id in c.models or model.upstream_id in c.models)
            and (listed is None or c.name in listed)
        ]

    def candidates(self, model: ModelInfo, prefer: str | None = None) -> list[ChannelSettings]:
        """The channels to try for this model, in order; `prefer` (a channel name) goes first."""
        usable = self.serving(model)
        if len(usable) > 1:
            ordered: list[ChannelSettings] = []
            for priority in sorted({c.priority for c in usable}):
                ordered += self._weighted_order([c for c in usable if c.priority == priority])
            usable = ordered
        if prefer:
            usable.sort(key=lambda c: c.name != prefer)  # stable: the rest keep their order
        return usable

    def _weighted_order(self, group: list[ChannelSettings]) -> list[ChannelSettings]:
        """A weighted random permutation (each next pick proportional to weight)."""
        # Efraimidis–Spirakis: sort by u^(1/w); one pass, no repeated draws.
        return sorted(group, key=lambda c: self._rng.random() ** (1.0 / c.weight), reverse=True)


def check_channel_models(channels: list[ChannelSettings], catalog: Catalog,
                         priced: Callable[[str, str], bool] | None = None) -> None:
    """A channel's model subset must name catalog models of its own provider, or models the price
    package knows for it (`priced(provider, upstream_id)`): served once the channel lists them."""
    for index, channel in enumerate(channels):
        for name in channel.models:
            model = catalog.get(name) or next(
                (m for m in catalog.all() if m.provider == channel.provider and m.upstream_id == name), None)
            upstream = name.removeprefix(f"{channel.provider}/")
            if model is None and priced is not None and "/" not in upstream and priced(channel.provider, upstream):
                continue
            if model is None or model.provider != channel.provider:
                raise ConfigError(f"channel {channel.name!r} (channels[{index}]): models lists {name!r}, "
                                  f"which is not a {channel.provider} model of the catalog", channel_index=index)
