"""Channel selection: lowest priority value first, weighted random among equals."""
from __future__ import annotations

import random
from collections.abc import Sequence

from router_core.catalog import ModelInfo
from router_core.settings import ChannelSettings


class ChannelPool:
    """The configured channels, grouped by provider, ordered for each request."""

    def __init__(self, channels: Sequence[ChannelSettings], rng: random.Random | None = None) -> None:
        self._by_provider: dict[str, list[ChannelSettings]] = {}
        for channel in channels:
            self._by_provider.setdefault(channel.provider, []).append(channel)
        self._rng = rng or random.Random()

    @property
    def channels(self) -> list[ChannelSettings]:
        return [c for group in self._by_provider.values() for c in group]

    def providers(self) -> set[str]:
        return set(self._by_provider)

    def candidates(self, model: ModelInfo) -> list[ChannelSettings]:
        """The channels to try for this model, in order."""
        usable = [
            c for c in self._by_provider.get(model.provider, ())
            if not c.models or model.id in c.models or model.upstream_id in c.models
        ]
        if len(usable) <= 1:
            return usable
        ordered: list[ChannelSettings] = []
        for priority in sorted({c.priority for c in usable}):
            ordered += self._weighted_order([c for c in usable if c.priority == priority])
        return ordered

    def _weighted_order(self, group: list[ChannelSettings]) -> list[ChannelSettings]:
        """A weighted random permutation (each next pick proportional to weight)."""
        # Efraimidis–Spirakis: sort by u^(1/w); one pass, no repeated draws.
        return sorted(group, key=lambda c: self._rng.random() ** (1.0 / c.weight), reverse=True)
