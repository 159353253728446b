"""Comparing the catalog with what each channel's provider says it serves.

Each provider module lists its models (`GET /models` on OpenAI, xAI and Gemini's compatible
endpoint; Anthropic's own `/v1/models`). A catalog model the provider no longer lists will
fail when called; a provider model the catalog lacks is one the operator may want to add.
A dated snapshot (`gpt-4.1-2025-04-14`, `claude-opus-4-5-20251101`) of a catalog model, or
the model a `-latest` alias names, counts as that model.
"""
from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from router_core.catalog import Catalog, ModelInfo
from router_core.catalog_build import is_text_model
from router_core.prices import PriceBook
from router_core.providers.base import Provider, UpstreamError
from router_core.settings import ChannelSettings

_SNAPSHOT = r"-(\d{8}|\d{4}-\d{2}-\d{2})"


@dataclass
class ChannelCheck:
    """One channel's verdict: what the catalog has that its provider no longer lists, and the reverse."""

    channel: str
    provider: str
    listed: int = 0
    missing: list[str] = field(default_factory=list)   # canonical ids of catalog models not listed
    unknown: list[str] = field(default_factory=list)   # provider ids the shipped catalog lacks (served if priced)
    unpriced: list[str] = field(default_factory=list)  # listed text models no price is known for: not served
    error: str = ""                                      # the provider could not be asked

    @property
    def differs(self) -> bool:
        return bool(self.missing or self.unpriced or self.error)


def _same(upstream: str, listed: str) -> bool:
    base = upstream.removesuffix("-latest")
    return listed == upstream or re.fullmatch(re.escape(base) + _SNAPSHOT, listed) is not None


def compare(models: Sequence[ModelInfo], listed: Sequence[str]) -> tuple[list[str], list[str]]:
    """(catalog models not in `listed`, listed ids no catalog model covers); retired models are not expected."""
    missing = sorted(m.id for m in models if m.status != "retired" and not any(_same(m.upstream_id, i) for i in listed))
    unknown = sorted({i for i in listed if not any(_same(m.upstream_id, i) for m in models)})
    return missing, unknown


async def check_channel(catalog: Catalog, channel: ChannelSettings, provider: Provider, http: object,
                        book: PriceBook | None = None) -> ChannelCheck:
    book = book or PriceBook()
    result = ChannelCheck(channel.name, channel.provider)
    try:
        listed = await provider.list_models(http, channel)
    except UpstreamError as exc:
        result.error = exc.message
        return result
    result.listed = len(listed)
    own = [m for m in catalog.all() if m.provider == channel.provider]
    served = [m for m in own if not channel.models or m.id in channel.models or m.upstream_id in channel.models]
    result.missing, _ = compare(served, listed)
    _, unknown = compare(own, listed)
    result.unknown = [i for i in unknown if is_text_model(i)]
    result.unpriced = sorted(i for i in result.unknown if book.find(channel.provider, i) is None)
    return result


async def check_channels(catalog: Catalog, channels: Sequence[ChannelSettings], providers: Mapping[str, Provider],
                         http: object) -> list[ChannelCheck]:
    """Ask every channel's provider at once; one channel's failure is its own line, not the end."""
    book = PriceBook()
    return list(await asyncio.gather(*(check_channel(catalog, c, providers[c.provider], http, book)
                                       for c in channels)))
