"""Building the live catalog from the shipped file, the channels' lists and the operator's file."""
from __future__ import annotations

from router_core.catalog_build import build, default_endpoints, is_text_model
from router_core.prices import PriceBook
from router_core.settings import ChannelSettings, Secret

BOOK = PriceBook()


def channel(name: str, provider: str) -> ChannelSettings:
    return ChannelSettings(name=name, provider=provider, base_url="http://127.0.0.1:9", api_key=Secret("k"))


def test_dated_snapshots_and_latest_aliases_name_the_catalog_model():
    ids = ["claude-haiku-4-5-20251001", "claude-3-5-haiku-20241022", "claude-opus-4-6"]
    built = build(BOOK, listings={"a": ids}, channels=[channel("a", "anthropic")])
    catalog = built.catalog
    assert catalog.resolve("claude-haiku-4-5-20251001").id == "anthropic/claude-haiku-4-5"
    assert catalog.get("anthropic/claude-haiku-4-5").status == "available"
    assert catalog.get("anthropic/claude-3-5-haiku").status == "available"  # claude-3-5-haiku-latest
    assert catalog.get("anthropic/claude-opus-4-5").status == "retired"      # not listed any more
    assert "anthropic/claude-haiku-4-5-20251001" not in {m.id for m in catalog.all()}, "no duplicate entry"
    assert built.listed_by["anthropic/claude-opus-4-6"] == frozenset({"a"})


def test_only_text_models_are_taken_from_a_list():
    for other in ("text-embedding-3-large", "tts-1-hd", "whisper-1", "dall-e-3", "gpt-image-1", "omni-moderation-latest",
                  "gpt-4o-realtime-preview", "gpt-4o-audio-preview", "gpt-4o-transcribe", "sora-2", "imagen-4.0",
                  "veo-3.0-generate-001", "gemini-embedding-001", "grok-2-image-1212", "babbage-002"):
        assert not is_text_model(other), other
    for text in ("gpt-5.5", "o4-mini", "claude-opus-5-5", "gemini-3.1-pro-preview", "grok-4.20"):
        assert is_text_model(text), text
    built = build(BOOK, listings={"o": ["gpt-4.1", "text-embedding-3-large", "gpt-image-1"]},
                  channels=[channel("o", "openai")])
    assert not built.unpriced and not any("embedding" in m.id or "image" in m.id for m in built.catalog.all())


def test_a_provider_that_did_not_answer_keeps_the_shipped_statuses():
    built = build(BOOK, listings={"o": ["gpt-4.1"]}, channels=[channel("o", "openai"), channel("g", "google")])
    assert built.catalog.get("google/gemini-2.5-pro").status == "available"
    assert built.catalog.get("openai/gpt-5").status == "retired"
    assert "google/gemini-2.5-pro" not in built.listed_by


def test_a_channel_that_never_answered_may_serve_anything_and_retires_nothing():
    built = build(BOOK, listings={"a": ["gpt-4.1"]}, channels=[channel("a", "openai"), channel("dead", "openai")])
    assert built.listed_by["openai/gpt-5"] == frozenset({"dead"})
    assert built.catalog.get("openai/gpt-5").status == "available"


def test_each_channel_serves_what_its_own_list_names():
    built = build(BOOK, listings={"a": ["gpt-4.1", "gpt-5"], "b": ["gpt-4.1"]},
                  channels=[channel("a", "openai"), channel("b", "openai")])
    assert built.listed_by["openai/gpt-4.1"] == frozenset({"a", "b"})
    assert built.listed_by["openai/gpt-5"] == frozenset({"a"})


def test_new_models_get_the_providers_native_apis():
    assert default_endpoints("openai", "gpt-5.5-codex") == frozenset({"responses"})
    assert default_endpoints("openai", "gpt-6-sol-pro") == frozenset({"responses"})
    assert default_endpoints("openai", "gpt-6-sol") == frozenset({"chat/completions", "responses"})
    assert default_endpoints("anthropic", "claude-opus-5-5") == frozenset({"chat/completions", "messages"})
    built = build(BOOK, listings={"a": ["claude-opus-5-5"]}, channels=[channel("a", "anthropic")])
    opus = built.catalog.get("anthropic/claude-opus-5-5")
    assert opus.display_name == "Claude Opus 5.5" and opus.context_window == 1_000_000
    assert (opus.input_price, opus.output_price) == (4_000_000, 20_000_000)


def test_what_the_provider_said_is_gone_is_retired_until_a_list_names_it():
    built = build(BOOK, gone={"openai/gpt-4.1": "Retired: gone."})
    assert built.catalog.get("openai/gpt-4.1").status == "retired"
    assert built.catalog.get("openai/gpt-4.1").status_note == "Retired: gone."
