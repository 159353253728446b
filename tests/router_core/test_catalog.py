from __future__ import annotations

import pytest

from router_core.catalog import Catalog
from router_core.errors import InvalidRequest, ModelNotFound

SEED = {
    "openai": 16, "anthropic": 6, "google": 6, "xai": 5,
}


def test_catalog_has_every_seed_model_with_prices_and_status():
    catalog = Catalog.load()
    seed = [m for m in catalog.all() if not m.is_test]
    assert len(seed) == 33
    for provider, count in SEED.items():
        assert len([m for m in seed if m.provider == provider]) == count
    for m in seed:
        assert isinstance(m.input_price, int) and m.input_price > 0
        assert isinstance(m.output_price, int) and m.output_price > 0
        assert m.context_window > 0 and m.endpoints
        assert m.status == ("preview" if m.provider == "xai" else "available")
        assert m.id == f"{m.provider}/{m.id.split('/', 1)[1]}"
    assert all(m.input_price == 0 and m.output_price == 0 for m in catalog.all() if m.is_test)


def test_resolution_by_canonical_short_and_upstream_id():
    catalog = Catalog.load()
    assert catalog.resolve("anthropic/claude-opus-4-6").upstream_id == "claude-opus-4-6"
    assert catalog.resolve("claude-opus-4-6").id == "anthropic/claude-opus-4-6"
    assert catalog.resolve("claude-sonnet-4-20250514").id == "anthropic/claude-sonnet-4"
    assert catalog.resolve("grok-4-1-fast-reasoning").id == "xai/grok-4.1-fast"
    with pytest.raises(ModelNotFound):
        catalog.resolve("openai/gpt-9")
    with pytest.raises(InvalidRequest) as info:
        catalog.resolve("openai/o3-pro", "chat/completions")
    assert info.value.code == "unsupported_endpoint"


def test_an_id_two_providers_share_must_be_canonical():
    base = Catalog.load().all()
    twin = next(m for m in base if m.id == "openai/gpt-4.1")
    from dataclasses import replace
    catalog = Catalog([*base, replace(twin, id="xai/gpt-4.1", provider="xai")])
    with pytest.raises(ModelNotFound) as info:
        catalog.resolve("gpt-4.1")
    assert "several providers" in info.value.message
    assert catalog.resolve("xai/gpt-4.1").provider == "xai"
