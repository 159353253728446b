"""Model prices and facts from a maintained data package: pydantic's genai-prices.

The package is pinned in pyproject.toml: upgrading the pin is how prices move. Its own
`calc_price` takes about a quarter of a millisecond (Decimal units, registry checks), more
than the rest of a request's work in the core, so a model's price is compiled once per price
period into a few per-token Decimal rates, read off the package's own calculation: its cost
is linear in each count within a tier band (its units are leaves of one subtraction tree), so
probing it with one count at a time finds the rates, and a test holds the compiled price
equal to `calc_price` for every model it knows. Costs are rounded up to whole micro-dollars.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the package (and pydantic under it) loads with the first PriceBook: only cores need it
    from genai_prices import types as gp

# OneKey's provider names -> the package's provider ids.
PACKAGE_PROVIDERS = {"openai": "openai", "anthropic": "anthropic", "google": "google", "xai": "x-ai"}
PACKAGE = f"genai-prices {importlib.metadata.version('genai-prices')}"
_MICRO = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Rates:
    """Per-token prices in USD for one tier band: input (uncached), cache read, cache write, output."""

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    reasoning: Decimal


@dataclass(frozen=True, slots=True)
class CompiledPrice:
    """One price period of one model: a fixed per-request part and rates by tier band."""

    per_request: Decimal
    bands: tuple[tuple[int, Rates], ...]  # (tier start, rates), highest start first; the last starts at -1

    def rates(self, input_tokens: int) -> Rates:
        for start, rates in self.bands:
            if input_tokens > start:
                return rates
        return self.bands[-1][1]


class PackageModel:
    """A model as the package knows it: facts, and its price at a moment."""

    __slots__ = ("info", "provider", "_compiled")

    def __init__(self, info: gp.ModelInfo, provider: gp.Provider) -> None:
        self.info = info
        self.provider = provider
        self._compiled: dict[int, CompiledPrice] = {}  # id(ModelPrice) -> its compiled form

    @property
    def name(self) -> str:
        return self.info.name or self.info.id

    @property
    def context_window(self) -> int:
        return self.info.context_window or 0

    @property
    def deprecated(self) -> bool:
        return bool(self.info.deprecated)

    def price_at(self, at: datetime | None = None) -> gp.ModelPrice:
        return self.info.get_prices(at or datetime.now(tz=UTC))

    def compiled(self, at: datetime | None = None) -> CompiledPrice:
        price = self.price_at(at)
        found = self._compiled.get(id(price))
        if found is None:
            found = self._compiled[id(price)] = _compile(price)
        return found

    def package_cost(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0,
                     reasoning: int = 0, at: datetime | None = None) -> Decimal:
        """The package's own calculation, in USD (slow: for tests and checks, not per request)."""
        from genai_prices import types as gp

        usage = gp.Usage(input_tokens=input_tokens, output_tokens=output_tokens, cache_read_tokens=cache_read,
                         cache_write_tokens=cache_write, output_reasoning_tokens=reasoning)
        return self.info.calc_price(usage, self.provider, genai_request_timestamp=at).total_price

    def cost_micro_usd(self, input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0,
                       reasoning: int = 0, factor: Decimal = Decimal(1), at: datetime | None = None) -> int:
        """The cost in whole micro-USD (rounded up), times `factor` (the operator's markup)."""
        price = self.compiled(at)
        r = price.rates(input_tokens)
        usd = (price.per_request + r.input * (input_tokens - cache_read - cache_write) + r.cache_read * cache_read
               + r.cache_write * cache_write + r.output * (output_tokens - reasoning) + r.reasoning * reasoning)
        return int((usd * factor * _MICRO).to_integral_value(rounding=ROUND_CEILING))

    def list_prices(self, at: datetime | None = None) -> tuple[int, int, int, int]:
        """(input, output, cache read, cache write) in micro-USD per 1M tokens, at the base tier."""
        r = self.compiled(at).bands[-1][1]
        return tuple(int((rate * _MICRO * _MICRO).to_integral_value(rounding=ROUND_CEILING))  # type: ignore[return-value]
                     for rate in (r.input, r.output, r.cache_read, r.cache_write))


def _compile(price: gp.ModelPrice) -> CompiledPrice:
    """Read the per-token rates off the package's calculation, one tier band at a time."""
    from genai_prices import types as gp

    def cost(**counts: int) -> Decimal:
        return price.calc_price(gp.Usage(**counts))["total_price"]

    starts = sorted({tier.start for value in price.__dict__.values() if isinstance(value, gp.TieredPrices)
                     for tier in value.tiers})
    fixed = cost()
    bands = []
    for start in [-1, *starts]:
        x = start + 1 if start >= 0 else 1
        base = cost(input_tokens=x)
        bands.append((start, Rates(
            input=(base - fixed) / x,
            cache_read=(cost(input_tokens=x, cache_read_tokens=x) - fixed) / x,
            cache_write=(cost(input_tokens=x, cache_write_tokens=x) - fixed) / x,
            output=(cost(input_tokens=x, output_tokens=x) - base) / x,
            reasoning=(cost(input_tokens=x, output_tokens=x, output_reasoning_tokens=x) - base) / x,
        )))
    return CompiledPrice(fixed, tuple(reversed(bands)))


class PriceBook:
    """The package's models of the four providers, found as the package matches ids."""

    def __init__(self) -> None:
        from genai_prices import data_snapshot

        providers = {p.id: p for p in data_snapshot.get_snapshot().providers}
        self._providers = {ours: providers[theirs] for ours, theirs in PACKAGE_PROVIDERS.items() if theirs in providers}
        self._found: dict[tuple[str, str], PackageModel | None] = {}
        self._wrapped: dict[int, PackageModel] = {}

    def knows(self, provider: str, upstream_id: str) -> bool:
        """Whether the package prices this id as a text model of the provider."""
        return self.find(provider, upstream_id) is not None

    def find(self, provider: str, upstream_id: str) -> PackageModel | None:
        """The package's model for a provider's id (dated ids and aliases as the package matches them)."""
        key = (provider, upstream_id)
        if key not in self._found:
            package_provider = self._providers.get(provider)
            info = package_provider.find_model(upstream_id) if package_provider else None
            if info is None or not _priced(info):
                self._found[key] = None
            else:  # one PackageModel per package model, so its compiled prices are shared
                self._found[key] = self._wrapped.setdefault(id(info), PackageModel(info, package_provider))
        return self._found[key]


def _priced(info: gp.ModelInfo) -> bool:
    """A text model has input and output prices; embeddings and the like have no output price."""
    from genai_prices import types as gp

    prices = info.prices if isinstance(info.prices, gp.ModelPrice) else (info.prices[-1].prices if info.prices else None)
    return prices is not None and prices.input_mtok is not None and prices.output_mtok is not None
