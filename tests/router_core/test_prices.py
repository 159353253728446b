"""OneKey's bill equals the price package's own calculation, for every model the package knows."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_CEILING, Decimal

import pytest

from router_core.catalog import Catalog
from router_core.catalog_build import build
from router_core.prices import PriceBook
from router_core.usage import Usage, cost_micro_usd

BOOK = PriceBook()
# (input, output, cache read, cache write, reasoning): plain, cached, cache writes, reasoning,
# and prompts above the 100k, 128k, 200k and 272k tiers the providers use.
USAGES = [(1_000, 500, 0, 0, 0), (5_000, 800, 3_000, 0, 0), (9_000, 100, 0, 4_000, 0), (2_000, 3_000, 0, 0, 2_500),
          (150_000, 2_000, 50_000, 10_000, 300), (250_000, 4_000, 0, 0, 0), (300_000, 1_000, 100_000, 0, 0), (0, 0, 0, 0, 0)]


def package_micro_usd(found, inp, out, read, write, reasoning, at=None) -> int:
    usd = found.package_cost(inp, out, read, write, reasoning, at)
    return int((usd * 1_000_000).to_integral_value(rounding=ROUND_CEILING))


def test_every_catalog_model_is_billed_as_the_package_calculates():
    catalog = build(BOOK).catalog
    priced = [m for m in catalog.all() if m.priced_by is not None]
    assert len(priced) >= 40
    for m in priced:
        for inp, out, read, write, reasoning in USAGES:
            usage = Usage(inp, out, read, reasoning, cache_write_tokens=write)
            assert cost_micro_usd(m, usage) == package_micro_usd(m.priced_by, inp, out, read, write, reasoning), (m.id, usage)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "google", "xai"])
def test_every_model_the_package_knows_for_a_provider_is_billed_as_it_calculates(provider):
    package_provider = BOOK._providers[provider]
    checked = 0
    for info in package_provider.models:
        found = BOOK.find(provider, info.id)
        if found is None:
            continue  # not a text model (no output price)
        for usage in USAGES:
            assert found.cost_micro_usd(*usage) == package_micro_usd(found, *usage), (info.id, usage)
        checked += 1
    assert checked >= 15


def test_tiers_and_prices_by_date_follow_the_package():
    tiered = BOOK.find("anthropic", "claude-haiku-5-5")  # every token at 5x once the prompt is over 100k
    below, above = tiered.cost_micro_usd(100_000, 1_000), tiered.cost_micro_usd(100_001, 1_000)
    assert above > 4 * below
    dated = BOOK.find("anthropic", "claude-opus-4-6")  # a long-context tier that ended on 2026-03-13
    before, after = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC)
    assert dated.cost_micro_usd(300_000, 0, at=before) == package_micro_usd(dated, 300_000, 0, 0, 0, 0, before)
    assert dated.cost_micro_usd(300_000, 0, at=before) == 2 * dated.cost_micro_usd(300_000, 0, at=after)


def test_markup_multiplies_the_package_price_and_rounds_up(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text("[markup]\npercent = 10\n")
    plain, marked = build(BOOK).catalog.get("openai/gpt-4.1"), build(BOOK, str(path)).catalog.get("openai/gpt-4.1")
    usage = Usage(1_234, 567)
    assert marked.price_factor == Decimal("1.1")
    expected = (plain.priced_by.package_cost(1_234, 567) * Decimal("1.1") * 1_000_000).to_integral_value(ROUND_CEILING)
    assert cost_micro_usd(marked, usage) == int(expected)
    assert marked.input_price == 2_200_000


def test_an_operator_price_wins_and_is_billed_flat(tmp_path):
    path = tmp_path / "models.toml"
    path.write_text('[[models]]\nid = "openai/gpt-4.1"\ninput_price = 1_000_000\noutput_price = 2_000_000\n')
    m = build(BOOK, str(path)).catalog.get("openai/gpt-4.1")
    assert m.priced_by is None and m.price_source == "operator file"
    assert cost_micro_usd(m, Usage(1_000_000, 1_000_000)) == 3_000_000


def test_the_shipped_catalog_loads_with_package_prices():
    m = Catalog.load().get("anthropic/claude-opus-4-6")
    assert (m.input_price, m.output_price, m.cached_input_price, m.cache_write_input_price) == (
        5_000_000, 25_000_000, 500_000, 6_250_000)
