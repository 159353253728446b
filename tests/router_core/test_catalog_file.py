"""The operator's catalog file: adds, overrides, hides, marks up; every mistake names its line."""
from __future__ import annotations

import textwrap

import pytest

from router_core.catalog import Catalog
from router_core.catalog_file import CatalogError
from router_core.usage import Usage, cost_micro_usd

NEW_MODEL = """
[[models]]
id = "openai/gpt-9-preview"
provider = "openai"
upstream_id = "gpt-9-preview-2026-12-01"
display_name = "GPT-9 Preview"
input_price = 3_000_000
output_price = 12_000_000
context_window = 500_000
endpoints = ["chat/completions"]
status = "preview"
"""


def load(tmp_path, text: str) -> Catalog:
    path = tmp_path / "models.toml"
    path.write_text(textwrap.dedent(text))
    return Catalog.load(str(path))


def error_of(tmp_path, text: str) -> str:
    with pytest.raises(CatalogError) as info:
        load(tmp_path, text)
    return str(info.value)


def test_adds_overrides_hides_and_marks_up(tmp_path):
    shipped = Catalog.load()
    catalog = load(tmp_path, NEW_MODEL + """
    [markup]
    percent = 10
    anthropic = 12.5

    [[models]]
    id = "openai/gpt-4.1"
    input_price = 2_100_000
    display_name = "GPT-4.1 (house price)"
    context_window = 1_000_000

    [[models]]
    id = "openai/o3-mini"
    hidden = true

    [[models]]
    id = "google/gemini-2.0-flash"
    status = "retired"
    status_note = "Retired here on 2026-12-01; use google/gemini-2.5-flash."

    [[models]]
    id = "openai/gpt-5-nano"
    markup_percent = 0

    [[models]]
    id = "anthropic/claude-sonnet-4-5"
    status = "available"
    """)
    added = catalog.resolve("gpt-9-preview-2026-12-01")
    assert (added.id, added.status, added.context_window) == ("openai/gpt-9-preview", "preview", 500_000)
    assert (added.input_price, added.output_price) == (3_300_000, 13_200_000)  # +10 %
    gpt41 = catalog.get("openai/gpt-4.1")
    assert (gpt41.input_price, gpt41.display_name, gpt41.context_window) == (2_310_000, "GPT-4.1 (house price)", 1_000_000)
    assert gpt41.output_price == shipped.get("openai/gpt-4.1").output_price * 110 // 100  # untouched field, marked up
    assert catalog.get("openai/o3-mini") is None
    with pytest.raises(Exception):
        catalog.resolve("o3-mini")
    haiku = shipped.get("anthropic/claude-haiku-4-5")
    assert catalog.get("anthropic/claude-haiku-4-5").input_price == haiku.input_price * 1125 // 1000  # per provider
    retired = catalog.get("google/gemini-2.0-flash")
    assert retired.status == "retired" and "2026-12-01" in retired.status_note
    assert catalog.get("openai/gpt-5-nano").input_price == shipped.get("openai/gpt-5-nano").input_price
    assert catalog.get("sandbox/echo").input_price == 0
    unretired = catalog.get("anthropic/claude-sonnet-4-5")  # shipped as retired, with a note
    assert (unretired.status, unretired.status_note) == ("available", "")
    assert len(catalog.all()) == len(shipped.all())  # one added, one hidden


def test_a_markup_is_rounded_up_to_a_whole_micro_dollar_and_costs_follow_it(tmp_path):
    catalog = load(tmp_path, """
    [markup]
    percent = 7.5

    [[models]]
    id = "openai/gpt-5-nano"
    input_price = 50_001
    output_price = 400_000
    cached_input_price = 5_000
    """)
    nano = catalog.get("openai/gpt-5-nano")
    # 50_001 * 1.075 = 53_751.075 -> 53_752; 400_000 * 1.075 = 430_000; 5_000 * 1.075 = 5_375
    assert (nano.input_price, nano.output_price, nano.cached_input_price) == (53_752, 430_000, 5_375)
    usage = Usage(input_tokens=1_000_000, output_tokens=2_000_000, cached_input_tokens=200_000)
    # 0.8 M x 53_752 + 0.2 M x 5_375 + 2 M x 430_000 = 43_001.6 + 1_075 + 860_000, rounded up
    assert cost_micro_usd(nano, usage) == 904_077


@pytest.mark.parametrize("text, line, words", [
    ("[[models]]\nid = \"openai/gpt-4.1\"\ninput_prise = 5\n", 3, "unknown key in [[models]] `openai/gpt-4.1`: input_prise"),
    ("\n\n[[models]]\nid = \"openai/gpt-4.1\"\n\n[[models]]\nid = \"openai/o3\"\ninput_price = 2.5\n", 8,
     "input_price must be a whole number"),
    ("[[models]]\nid = \"openai/brand-new\"\nprovider = \"openai\"\n", 1, "not a model of the shipped catalog"),
    (NEW_MODEL.replace('status = "preview"', 'status = "beta"'), 11, "status must be one of"),
    (NEW_MODEL.replace("context_window = 500_000\n", ""), 2, "as a new model it lacks context_window"),
    (NEW_MODEL.replace('provider = "openai"', 'provider = "mistral"'), 4, "provider must be one of"),
    ("[[models]]\nid = \"openai/gpt-4.1\"\nhidden = \"yes\"\n", 3, "hidden must be true or false"),
    ("[[models]]\nid = \"openai/gpt-4.1\"\n[[models]]\nid = \"openai/gpt-4.1\"\n", 3, "listed twice (first at line 1)"),
    ("[markup]\npercent = 10\nmistral = 5\n", 3, "unknown key in [markup]: mistral"),
    ("# my file\n[markup]\npercent = -3\n", 3, "percent must be a percentage"),
    ("modles = []\n", 1, "unknown key: modles"),
    ("[[models]]\nid = \"openai/gpt-4.1\"\ninput_price = \n", 3, "Invalid value"),
])
def test_a_mistake_names_its_line(tmp_path, text, line, words):
    message = error_of(tmp_path, text)
    assert f"models.toml, line {line}" in message or f"(at line {line}" in message, message
    assert words in message, message


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(CatalogError) as info:
        Catalog.load(str(tmp_path / "nowhere.toml"))
    assert "nowhere.toml" in str(info.value)
