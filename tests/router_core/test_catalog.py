from __future__ import annotations

import re
from importlib import resources

import pytest

from router_core.catalog import Catalog
from router_core.errors import InvalidRequest, ModelNotFound

SEED = {
    "openai": {"gpt-5.3-codex", "gpt-5.2", "gpt-5.2-pro", "gpt-5.2-codex", "gpt-5.1", "gpt-5.1-codex", "gpt-5",
               "gpt-5-mini", "gpt-5-nano", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o3-pro", "o3-mini",
               "o4-mini"},
    "anthropic": {"claude-opus-4-6", "claude-opus-4-5", "claude-sonnet-4-5", "claude-sonnet-4", "claude-haiku-4-5",
                  "claude-3-5-haiku"},
    "google": {"gemini-3-pro", "gemini-3-flash", "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite",
               "gemini-2.0-flash"},
    "xai": {"grok-4", "grok-4.1-fast", "grok-code-fast", "grok-3", "grok-3-mini"},
}


def test_catalog_has_every_seed_model_and_40_more_that_are_served_with_prices_and_status():
    catalog = Catalog.load()
    models = [m for m in catalog.all() if not m.is_test]
    for provider, names in SEED.items():
        assert names <= {m.id.split("/", 1)[1] for m in models if m.provider == provider}
    assert len([m for m in models if m.status != "retired"]) >= 40
    for m in models:
        assert isinstance(m.input_price, int) and m.input_price > 0
        assert isinstance(m.output_price, int) and m.output_price > 0
        assert 0 <= m.cached_input_price <= m.input_price
        assert m.context_window > 0 and m.endpoints
        assert m.status in (("preview", "retired") if m.provider == "xai" else ("available", "retired"))
        assert m.status != "retired" or m.status_note, "a retired model says why"
        assert m.id == f"{m.provider}/{m.id.split('/', 1)[1]}"
    assert all(m.input_price == 0 and m.output_price == 0 for m in catalog.all() if m.is_test)


def test_every_shipped_model_is_priced_by_the_package_and_types_no_price_of_its_own():
    text = resources.files("router_core").joinpath("catalog/models.toml").read_text()
    for block in text.split("[[models]]")[1:]:
        if 'provider = "sandbox"' not in block:
            assert not re.search(r"^(input|output|cached_input|cache_write_input)_price", block, re.M), block
    for m in Catalog.load().all():
        assert m.is_test or (m.priced_by is not None and m.price_source.startswith("genai-prices ")), m.id


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
